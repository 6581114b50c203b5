"""Batch creates and the tenant's whole list of relationships, as an importer meets them:
one request for many items, each item answered on its own, the good ones stored even when
a neighbour is refused, and every relationship read back a page at a time."""

from __future__ import annotations

import asyncio
import types
from pathlib import Path

import pytest
from substrate_api import API, body, problem

from butterflyfx.core.config import read_config
from butterflyfx.core.context import ServerContext
from butterflyfx.core.hookspecs import hookimpl
from butterflyfx.kernel import Relationship, Substrate
from butterflyfx.plugins.auth_apikey import KeyStore
from butterflyfx.plugins.http.app import create_app

SUBSTRATES = f"{API}/substrates/batch"
RELATIONSHIPS = f"{API}/relationships/batch"
ALL_RELATIONSHIPS = f"{API}/relationships"
GHOST = "0x00000000000000AB"


@pytest.fixture(
    params=[
        pytest.param("storage.memory", id="memory"),
        pytest.param("storage.sqlite", id="sqlite"),
    ]
)
def serve(request, serve):
    """Every story runs on both built-in stores."""
    return lambda scenario, plugins="http", **server: serve(
        scenario, f"{request.param},{plugins}", **server
    )


def lam(code: str, **fields):
    return {"expression_type": "lambda", "expression_code": f"lambda **kw: {code}", **fields}


def sid(code: str) -> str:
    """The id the kernel gives a lambda substrate: the server must agree."""
    return Substrate.create("lambda", f"lambda **kw: {code}").substrate_id


async def make_substrates(client, *codes: str) -> list[str]:
    response = await client.post(SUBSTRATES, json={"substrates": [lam(c) for c in codes]})
    assert response.status_code == 200, await response.get_data()
    return [result["substrate"]["substrate_id"] for result in (await body(response))["results"]]


def test_a_mixed_batch_stores_the_good_items_and_answers_each_in_order(serve):
    async def story(client):
        sent = [
            lam("kw.get('x', 0) + 1", metadata={"name": "inc"}),
            lam("__import__('os')"),  # the safe evaluator refuses it
            lam("kw.get('x', 0) + 1"),  # the first item again: the same substrate
            {"expression_type": "lambda"},  # no code: the item model refuses it
            {"expression_type": "cobol", "expression_code": "ADD 1 TO X"},
            "not an object",
            lam("kw.get('x', 0) * 2"),
        ]
        response = await client.post(SUBSTRATES, json={"substrates": sent})
        assert response.status_code == 200
        answer = await body(response)
        results = answer["results"]
        assert [r["status"] for r in results] == [201, 422, 200, 422, 422, 422, 201]
        assert (answer["created"], answer["existing"], answer["failed"]) == (2, 1, 4)

        made = results[0]["substrate"]
        assert made["substrate_id"] == sid("kw.get('x', 0) + 1")
        assert made["metadata"] == {"name": "inc"} and made["version"] == 1
        assert results[2]["substrate"] == made  # the repeat answers the first, unchanged
        assert results[1]["problem"]["type"].endswith("/expression-rejected")
        assert results[1]["problem"]["field"] == "expression_code"
        assert "__import__" in results[1]["problem"]["detail"]
        assert results[3]["problem"]["field"] == "expression_code"
        assert results[3]["problem"]["detail"] == "expression_code is required"
        assert results[4]["problem"]["type"].endswith("/unknown-expression-type")
        assert results[5]["problem"]["detail"] == "must be a JSON object"
        for result in results:
            assert ("substrate" in result) != ("problem" in result)

        # What was answered was stored, and a single create agrees.
        listed = await body(await client.get(f"{API}/substrates"))
        assert sorted(s["substrate_id"] for s in listed["items"]) == sorted(
            [made["substrate_id"], results[6]["substrate"]["substrate_id"]]
        )
        single = await client.post(f"{API}/substrates", json=lam("kw.get('x', 0) * 2"))
        assert single.status_code == 200

    serve(story)


def test_relationships_in_a_batch_fail_alone_for_a_missing_end_or_a_bad_type(serve):
    async def story(client):
        a, b = await make_substrates(client, "kw.get('a', 0)", "kw.get('b', 0)")
        sent = [
            {"source_id": a, "target_id": b, "relationship_type": "Dependency", "weight": 2},
            {"source_id": a, "target_id": GHOST, "relationship_type": "dependency"},
            {"source_id": GHOST, "target_id": b, "relationship_type": "dependency"},
            {"source_id": a, "target_id": b, "relationship_type": "likes"},
            {"source_id": a, "target_id": a, "relationship_type": "sibling"},
            {"source_id": a, "target_id": a, "relationship_type": "recursion"},
            {"source_id": "zz", "target_id": b, "relationship_type": "sibling"},
            {"source_id": a, "target_id": b, "relationship_type": "dependency", "weight": -1},
            {"source_id": a, "target_id": b, "relationship_type": "dependency"},  # a repeat
            {"source_id": b, "target_id": a, "relationship_type": "sibling", "bidirectional": True},
        ]
        response = await client.post(RELATIONSHIPS, json={"relationships": sent})
        assert response.status_code == 200
        answer = await body(response)
        results = answer["results"]
        assert [r["status"] for r in results] == [201, 404, 404, 422, 422, 201, 400, 422, 200, 201]
        assert (answer["created"], answer["existing"], answer["failed"]) == (3, 1, 6)

        first = results[0]["relationship"]
        kernel = Relationship.create(int(a, 16), int(b, 16), "dependency")
        assert first["relationship_id"] == kernel.relationship_id
        assert first["relationship_type"] == "dependency" and first["weight"] == 2.0
        assert results[8]["relationship"] == first
        for index, field in ((1, "target_id"), (2, "source_id")):
            missing = results[index]["problem"]
            assert missing["type"].endswith("/not-found") and missing["field"] == field
            assert GHOST in missing["detail"]
        assert results[3]["problem"]["type"].endswith("/unknown-relationship-type")
        assert "dependency" in results[3]["problem"]["known_types"]
        assert results[4]["problem"]["field"] == "target_id"  # only recursion and cycle loop
        assert results[6]["problem"]["type"].endswith("/invalid-id")
        assert results[6]["problem"]["field"] == "source_id"
        assert results[7]["problem"]["field"] == "weight"

        listed = await body(await client.get(ALL_RELATIONSHIPS))
        stored = {r["relationship_id"] for r in listed["items"]}
        assert stored == {results[i]["relationship"]["relationship_id"] for i in (0, 5, 9)}

    serve(story)


def test_a_malformed_batch_is_refused_whole_naming_the_field(serve):
    async def story(client):
        too_many = {"substrates": [lam(f"{n}") for n in range(501)]}
        for path, sent, status, field in (
            (SUBSTRATES, too_many, 422, "substrates"),
            (SUBSTRATES, {"substrates": []}, 422, "substrates"),
            (SUBSTRATES, {}, 422, "substrates"),
            (SUBSTRATES, {"substrates": lam("1")}, 422, "substrates"),
            (SUBSTRATES, {"substrates": [lam("1")], "atomic": True}, 422, "atomic"),
            (RELATIONSHIPS, {"relationships": None}, 422, "relationships"),
            (RELATIONSHIPS, {"substrates": [lam("1")]}, 422, "relationships"),
        ):
            refused = await problem(await client.post(path, json=sent), status)
            assert refused["field"] == field, refused
        not_an_object = await problem(await client.post(SUBSTRATES, json=[lam("1")]), 422)
        assert not_an_object["detail"] == "the request body must be a JSON object, not an array"
        broken = await client.post(
            SUBSTRATES, data=b'{"substrates": [', headers={"Content-Type": "application/json"}
        )
        assert (await problem(broken, 400))["type"].endswith("/malformed-json")
        plain = await client.post(SUBSTRATES, data=b"x", headers={"Content-Type": "text/plain"})
        await problem(plain, 415)
        # Nothing of a refused batch was stored, the 501 items included.
        assert (await body(await client.get(f"{API}/substrates")))["items"] == []
        # The batch routes are POST only: reading one is a 405, not a malformed id.
        for method, path in (("GET", SUBSTRATES), ("DELETE", RELATIONSHIPS)):
            wrong = await problem(await client.open(path, method=method), 405)
            assert wrong["detail"].endswith("allowed: POST")

    serve(story)


def test_the_largest_batch_is_one_request(serve):
    async def story(client):
        codes = [f"kw.get('x', 0) + {n}" for n in range(500)]
        ids = await make_substrates(client, *codes)
        assert ids == [sid(code) for code in codes]
        chain = [
            {"source_id": ids[n], "target_id": ids[n + 1], "relationship_type": "lineage"}
            for n in range(499)
        ]
        answer = await body(await client.post(RELATIONSHIPS, json={"relationships": chain}))
        assert answer["created"] == 499 and answer["failed"] == 0

    serve(story)


def test_the_whole_list_pages_through_every_relationship_once(serve):
    async def story(client):
        ids = await make_substrates(client, *(f"kw.get('n', 0) + {n}" for n in range(6)))
        sent = [
            {"source_id": ids[n], "target_id": ids[n + 1],
             "relationship_type": "sibling" if n % 2 else "dependency", "bidirectional": n == 1}
            for n in range(5)
        ]  # fmt: skip
        created = await body(await client.post(RELATIONSHIPS, json={"relationships": sent}))
        made = sorted(r["relationship"]["relationship_id"] for r in created["results"])

        seen, cursor, pages = [], None, 0
        while True:
            query = {"limit": "2", **({"cursor": cursor} if cursor else {})}
            page = await body(await client.get(ALL_RELATIONSHIPS, query_string=query))
            assert len(page["items"]) <= 2
            seen += [r["relationship_id"] for r in page["items"]]
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == made and pages == 3  # each once (the bidirectional one too), in id order

        typed = await body(
            await client.get(ALL_RELATIONSHIPS, query_string={"type": "SIBLING", "limit": "1"})
        )
        assert [r["relationship_type"] for r in typed["items"]] == ["sibling"]
        rest = await body(
            await client.get(
                ALL_RELATIONSHIPS,
                query_string={"type": "sibling", "limit": "1", "cursor": typed["next_cursor"]},
            )
        )
        assert len(rest["items"]) == 1 and rest["next_cursor"] is None
        both = await body(
            await client.get(ALL_RELATIONSHIPS, query_string={"type": "sibling,dependency"})
        )
        assert sorted(r["relationship_id"] for r in both["items"]) == made

        for query, field, status in (
            ({"limit": "0"}, "limit", 400),
            ({"limit": "1001"}, "limit", 400),
            ({"limit": "ten"}, "limit", 400),
            ({"cursor": "forged"}, "cursor", 400),
            ({"type": "likes"}, "type", 422),
            ({"types": "sibling"}, "types", 400),
        ):
            response = await client.get(ALL_RELATIONSHIPS, query_string=query)
            assert (await problem(response, status))["field"] == field

    serve(story)


def test_a_tenant_batches_and_lists_only_its_own_and_needs_the_write_scope(serve, tmp_path):
    async def issue():
        keys = KeyStore(tmp_path / "auth-keys.sqlite3")
        await keys.open()
        try:
            made = [
                await keys.create(tenant, "pro", scopes)
                for tenant, scopes in (
                    ("acme", ("read", "write")),
                    ("globex", ("read", "write")),
                    ("acme", ("read",)),
                )
            ]
        finally:
            await keys.close()
        return [{"Authorization": f"Bearer {key.secret}"} for key in made]

    acme, globex, reader = asyncio.run(issue())

    async def story(client):
        sent = {"substrates": [lam("kw.get('t', 0)"), lam("kw.get('u', 0)")]}
        mine = await body(await client.post(SUBSTRATES, json=sent, headers=acme))
        a, b = (r["substrate"]["substrate_id"] for r in mine["results"])
        related = {
            "relationships": [{"source_id": a, "target_id": b, "relationship_type": "lineage"}]
        }
        assert (await body(await client.post(RELATIONSHIPS, json=related, headers=acme)))[
            "created"
        ] == 1

        # globex has the same expressions under the same ids, but not acme's rows:
        # its relationship between them finds no end until it creates them itself.
        theirs = await body(await client.post(RELATIONSHIPS, json=related, headers=globex))
        assert theirs["results"][0]["status"] == 404
        assert (await body(await client.get(ALL_RELATIONSHIPS, headers=globex)))["items"] == []
        again = await body(await client.post(SUBSTRATES, json=sent, headers=globex))
        assert [r["status"] for r in again["results"]] == [201, 201]
        listed = await body(await client.get(ALL_RELATIONSHIPS, headers=acme))
        assert [r["source_id"] for r in listed["items"]] == [a]

        refused = await problem(await client.post(SUBSTRATES, json=sent, headers=reader), 403)
        assert "write" in refused["detail"]
        assert (await client.get(ALL_RELATIONSHIPS, headers=reader)).status_code == 200

    serve(story, "http,auth.apikey")


def test_each_item_created_emits_its_event_and_repeats_emit_none(tmp_path: Path):
    heard = []

    def on_event(event, ctx):
        heard.append((event.kind, event.subject_id))

    listener = types.SimpleNamespace(__name__="listener", butterflyfx_on_event=hookimpl(on_event))
    config = read_config(
        None,
        env={"BUTTERFLYFX_PLUGINS": "storage.memory,http,listener"},
        overrides={"data_dir": tmp_path},
    )

    async def main():
        app = create_app(ServerContext.build(config, {"listener": listener}))
        async with app.test_app() as running:
            client = running.test_client()
            a, b = await make_substrates(client, "kw.get('e', 0)", "kw.get('f', 0)")
            await make_substrates(client, "kw.get('e', 0)")  # already there: no event
            sent = {"relationships": [
                {"source_id": a, "target_id": b, "relationship_type": "dependency"},
                {"source_id": a, "target_id": GHOST, "relationship_type": "dependency"},
            ]}  # fmt: skip
            answer = await body(await client.post(RELATIONSHIPS, json=sent))
            return a, b, answer["results"][0]["relationship"]["relationship_id"]

    a, b, relationship_id = asyncio.run(main())
    assert heard == [
        ("substrate.created", a),
        ("substrate.created", b),
        ("relationship.created", relationship_id),
    ]
