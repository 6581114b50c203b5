"""What a client of the relationship API sees, story by story, on each store and graph engine."""

from __future__ import annotations

import asyncio
import re

import pytest
from substrate_api import API, body, create, named, problem, relate

from butterflyfx.kernel import Relationship

RELATIONSHIPS = f"{API}/relationships"
STACKS = [
    pytest.param("storage.memory,graph.memory", id="memory"),
    pytest.param("storage.sqlite,graph.sql", id="sqlite"),
]


@pytest.fixture(params=STACKS)
def serve(request, serve):
    """Every story runs on both built-in stores, each with a graph engine."""
    return lambda scenario, **server: serve(scenario, f"{request.param},http", **server)


def test_relate_two_substrates_read_the_relationship_and_delete_it(serve):
    async def story(client):
        ids = await named(client, "parser", "lexer")
        sent = {
            "source_id": ids["parser"], "target_id": ids["lexer"],
            "relationship_type": "Dependency", "weight": 2.5, "metadata": {"since": "v1"},
        }  # fmt: skip
        created = await client.post(RELATIONSHIPS, json=sent)
        assert created.status_code == 201
        made = await body(created)
        relationship_id = made["relationship_id"]
        assert created.headers["Location"] == f"{RELATIONSHIPS}/{relationship_id}"
        assert made == {
            "relationship_id": relationship_id,
            "source_id": ids["parser"], "target_id": ids["lexer"],
            "relationship_type": "dependency", "bidirectional": False, "weight": 2.5,
            "metadata": {"since": "v1"}, "created_at": made["created_at"],
        }  # fmt: skip
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", made["created_at"])
        kernel = Relationship.create(int(ids["parser"], 16), int(ids["lexer"], 16), "dependency")
        assert relationship_id == kernel.relationship_id

        again = await client.post(RELATIONSHIPS, json={**sent, "weight": 7, "metadata": {}})
        assert again.status_code == 200 and "Location" not in again.headers
        assert await body(again) == made

        fetched = await client.get(f"{RELATIONSHIPS}/{relationship_id.lower()}")
        assert fetched.status_code == 200 and await body(fetched) == made

        deleted = await client.delete(f"{RELATIONSHIPS}/{relationship_id}")
        assert deleted.status_code == 204 and await deleted.get_data() == b""
        gone = await problem(await client.get(f"{RELATIONSHIPS}/{relationship_id}"), 404)
        assert gone["field"] == "relationship_id"
        await problem(await client.delete(f"{RELATIONSHIPS}/{relationship_id}"), 404)
        # the substrates stay
        assert (await client.get(f"{API}/substrates/{ids['lexer']}")).status_code == 200

    serve(story)


def test_a_missing_end_is_a_404_naming_it(serve):
    async def story(client):
        (real,) = (await named(client, "real")).values()
        ghost = "0x00000000000000AB"
        for sent, field in (
            ({"source_id": ghost, "target_id": real}, "source_id"),
            ({"source_id": real, "target_id": ghost}, "target_id"),
        ):
            response = await client.post(
                RELATIONSHIPS, json={**sent, "relationship_type": "lineage"}
            )
            found = await problem(response, 404)
            assert found["field"] == field and ghost in found["detail"]

    serve(story)


def test_outgoing_and_incoming_lists_with_type_filter_and_pages(serve):
    async def story(client):
        ids = await named(client, "hub", *(f"leaf{i}" for i in range(12)))
        for i in range(12):
            await relate(client, ids["hub"], ids[f"leaf{i}"], "containment" if i % 3 else "sibling",
                         bidirectional=i == 0)  # fmt: skip
        out = f"{RELATIONSHIPS}/outgoing/{ids['hub']}"

        seen, cursor = [], None
        while True:
            query = {"limit": "5", **({"cursor": cursor} if cursor else {})}
            page = await body(await client.get(out, query_string=query))
            assert len(page["items"]) <= 5
            seen += [r["relationship_id"] for r in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert len(seen) == 12 and seen == sorted(set(seen), key=lambda i: int(i, 16))

        siblings = await body(await client.get(out, query_string={"type": "SIBLING"}))
        assert {r["target_id"] for r in siblings["items"]} == {
            ids[f"leaf{i}"] for i in (0, 3, 6, 9)
        }
        both = await body(await client.get(out, query_string={"type": "sibling,containment"}))
        assert len(both["items"]) == 12

        # leaf0's sibling relationship runs both ways: it is in both of its lists
        leaf0_out = await body(await client.get(f"{RELATIONSHIPS}/outgoing/{ids['leaf0']}"))
        leaf0_in = await body(await client.get(f"{RELATIONSHIPS}/incoming/{ids['leaf0']}"))
        assert leaf0_out["items"] == leaf0_in["items"]
        assert leaf0_in["items"][0]["bidirectional"] is True
        leaf1_out = await body(await client.get(f"{RELATIONSHIPS}/outgoing/{ids['leaf1']}"))
        assert leaf1_out == {"items": [], "next_cursor": None}

        unknown = await client.get(f"{RELATIONSHIPS}/incoming/0x0000000000000001")
        assert (await problem(unknown, 404))["field"] == "substrate_id"

    serve(story)


def test_deleting_a_substrate_takes_its_relationships_with_it(serve):
    async def story(client):
        ids = await named(client, "a", "b", "c")
        ab = await relate(client, ids["a"], ids["b"])
        bc = await relate(client, ids["b"], ids["c"], "sibling", bidirectional=True)
        ac = await relate(client, ids["a"], ids["c"])
        assert (await client.delete(f"{API}/substrates/{ids['b']}")).status_code == 204

        for gone in (ab, bc):
            await problem(await client.get(f"{RELATIONSHIPS}/{gone['relationship_id']}"), 404)
        a_out = await body(await client.get(f"{RELATIONSHIPS}/outgoing/{ids['a']}"))
        c_in = await body(await client.get(f"{RELATIONSHIPS}/incoming/{ids['c']}"))
        assert a_out["items"] == c_in["items"] == [ac]
        graph = await body(
            await client.get(f"{RELATIONSHIPS}/graph", query_string={"root": ids["a"]})
        )
        assert {n["substrate_id"] for n in graph["nodes"]} == {ids["a"], ids["c"]}
        assert [e["relationship_id"] for e in graph["edges"]] == [ac["relationship_id"]]
        stats = await body(await client.get(f"{API}/query/stats"))
        assert stats["relationships"] == {"total": 1, "by_type": {"dependency": 1}}

    serve(story)


def test_concurrent_creates_and_deletes_never_leave_a_dangling_relationship(serve):
    async def story(client):
        ids = await named(client, "keeper", *(f"doomed{i}" for i in range(8)))
        keeper = ids.pop("keeper")
        doomed = list(ids.values())

        async def relate_both_ways(other):
            results = []
            for source, target in ((keeper, other), (other, keeper)):
                response = await client.post(
                    RELATIONSHIPS,
                    json={"source_id": source, "target_id": target, "relationship_type": "lineage"},
                )
                results.append(response.status_code)
            return results

        async def delete(other):
            return (await client.delete(f"{API}/substrates/{other}")).status_code

        outcomes = await asyncio.gather(
            *(call(other) for other in doomed for call in (relate_both_ways, delete))
        )
        # each create either won (201) or found its end already gone (404), never anything else
        statuses = {s for result in outcomes[0::2] for s in result}
        assert statuses <= {201, 404}, outcomes
        assert set(outcomes[1::2]) == {204}

        for direction in ("outgoing", "incoming"):
            page = await body(await client.get(f"{RELATIONSHIPS}/{direction}/{keeper}"))
            assert page["items"] == [], page
        stats = await body(await client.get(f"{API}/query/stats"))
        assert stats["substrates"] == 1
        assert stats["relationships"] == {"total": 0, "by_type": {}}

    serve(story)


def test_self_loops_only_by_recursion_or_cycle(serve):
    async def story(client):
        (me,) = (await named(client, "me")).values()
        refused = await client.post(
            RELATIONSHIPS, json={"source_id": me, "target_id": me, "relationship_type": "sibling"}
        )
        assert (await problem(refused, 422))["field"] == "target_id"
        loop = await relate(client, me, me, "RECURSION")
        assert loop["relationship_type"] == "recursion"
        out = await body(await client.get(f"{RELATIONSHIPS}/outgoing/{me}"))
        into = await body(await client.get(f"{RELATIONSHIPS}/incoming/{me}"))
        assert out["items"] == into["items"] == [loop]

    serve(story)


def test_types_added_in_the_config_are_accepted_and_listed_when_refusing(serve):
    async def story(client):
        ids = await named(client, "app", "db")
        uses = await relate(client, ids["app"], ids["db"], "Uses")
        refused = await problem(
            await client.post(
                RELATIONSHIPS,
                json={"source_id": ids["app"], "target_id": ids["db"], "relationship_type": "x"},
            ),
            422,
        )
        return uses, refused

    uses, refused = serve(story, relationship_types=["uses", "Calls"])
    assert uses["relationship_type"] == "uses"
    assert refused["type"].endswith("/unknown-relationship-type")
    assert refused["known_types"][-2:] == ["uses", "calls"] and len(refused["known_types"]) == 17


def test_divide_shows_the_substrates_relationships_in_its_area_dimension(serve):
    async def story(client):
        ids = await named(client, "a", "b", "c")
        await relate(client, ids["a"], ids["b"], "dependency")
        await relate(client, ids["c"], ids["a"], "extraction")
        division = await body(await client.post(f"{API}/substrates/{ids['a']}/divide"))
        area = {d["name"]: d["content"] for d in division["dimensions"]}["Area"]
        return ids, area

    ids, area = serve(story)
    assert area["available"] is True
    assert (area["outgoing"], area["incoming"]) == (1, 1)
    assert area["by_type"] == {
        "dependency": {"outgoing": 1, "incoming": 0},
        "extraction": {"outgoing": 0, "incoming": 1},
    }
    assert sorted((n["substrate_id"], n["direction"]) for n in area["neighbours"]) == sorted(
        [(ids["b"], "outgoing"), (ids["c"], "incoming")]
    )


def test_the_graph_around_a_substrate_gives_whole_substrates_and_edges(serve):
    async def story(client):
        ids = await named(client, "root", "child", "grandchild", "great", "cousin")
        await relate(client, ids["root"], ids["child"], "whole_to_part")
        await relate(client, ids["child"], ids["grandchild"], "whole_to_part")
        await relate(client, ids["grandchild"], ids["great"], "whole_to_part")
        await relate(client, ids["cousin"], ids["root"], "sibling", bidirectional=True)
        graph = f"{RELATIONSHIPS}/graph"

        default = await body(await client.get(graph, query_string={"root": ids["root"]}))
        assert set(default) == {
            "root", "depth", "max_nodes", "relationship_types", "nodes", "edges", "truncated",
        }  # fmt: skip
        assert (default["root"], default["depth"], default["max_nodes"]) == (ids["root"], 2, 1000)
        assert sorted(n["metadata"]["name"] for n in default["nodes"]) == [
            "child", "cousin", "grandchild", "root",
        ]  # fmt: skip
        node = next(n for n in default["nodes"] if n["substrate_id"] == ids["child"])
        assert node == await body(await client.get(f"{API}/substrates/{ids['child']}"))
        assert len(default["edges"]) == 3 and default["truncated"] is False

        deeper = await body(
            await client.get(graph, query_string={"root": ids["root"], "depth": "3"})
        )
        assert len(deeper["nodes"]) == 5 and len(deeper["edges"]) == 4

        typed = await body(
            await client.get(
                graph, query_string={"root": ids["root"], "depth": "3", "types": "whole_to_part"}
            )
        )
        assert typed["relationship_types"] == ["whole_to_part"]
        assert "cousin" not in {n["metadata"]["name"] for n in typed["nodes"]}

        capped = await body(
            await client.get(graph, query_string={"root": ids["root"], "max_nodes": "2"})
        )
        assert capped["truncated"] is True and len(capped["nodes"]) == 2
        shown = {n["substrate_id"] for n in capped["nodes"]}
        assert all({e["source_id"], e["target_id"]} <= shown for e in capped["edges"])

        alone = await body(
            await client.get(graph, query_string={"root": ids["root"], "depth": "0"})
        )
        assert [n["substrate_id"] for n in alone["nodes"]] == [ids["root"]]
        assert alone["edges"] == []

    serve(story)


def test_fixed_paths_are_not_taken_for_relationship_ids(serve):
    async def story(client):
        (a,) = (await named(client, "a")).values()
        graph = await client.get(f"{RELATIONSHIPS}/graph", query_string={"root": a})
        assert graph.status_code == 200 and "nodes" in await body(graph)
        for direction in ("outgoing", "incoming"):
            listed = await client.get(f"{RELATIONSHIPS}/{direction}/{a}")
            assert listed.status_code == 200 and "items" in await body(listed)
        # "graph" is no relationship id: without root it is the graph endpoint asking for one
        asked = await problem(await client.get(f"{RELATIONSHIPS}/graph"), 400)
        assert asked["field"] == "root"
        # the graph is read-only: deleting it is a method the resource does not allow
        for method in (client.delete, client.put, client.patch):
            refused = await method(f"{RELATIONSHIPS}/graph")
            await problem(refused, 405)
            assert set(refused.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "HEAD"}
        assert (
            await client.get(f"{RELATIONSHIPS}/graph", query_string={"root": a})
        ).status_code == 200

    serve(story)


def test_a_substrate_created_twice_keeps_its_relationships(serve):
    async def story(client):
        ids = await named(client, "a", "b")
        made = await relate(client, ids["a"], ids["b"])
        again = await create(client, "lambda **kw: kw.get('a', 0)", metadata={"name": "a"})
        assert again["substrate_id"] == ids["a"]
        out = await body(await client.get(f"{RELATIONSHIPS}/outgoing/{ids['a']}"))
        assert out["items"] == [made]

    serve(story)
