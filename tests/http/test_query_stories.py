"""What a client of the query API sees: traversals, paths, searches and statistics."""

from __future__ import annotations

import asyncio

import pytest
from conftest import build_app
from substrate_api import API, body, create, named, problem, relate

QUERY = f"{API}/query"
STACKS = [
    pytest.param("storage.memory,graph.memory", id="memory"),
    pytest.param("storage.sqlite,graph.sql", id="sqlite"),
]


@pytest.fixture(params=STACKS)
def serve(request, serve):
    """Every story runs on both built-in stores, each with a graph engine."""
    return lambda scenario, **server: serve(scenario, f"{request.param},http", **server)


async def org_chart(client):
    """ceo -> cto -> dev1, dev2; ceo -> cfo; dev2 -> ceo closes a cycle; pm <-> cto both ways."""
    ids = await named(client, "ceo", "cto", "cfo", "dev1", "dev2", "pm", "loner")
    for source, target in (("ceo", "cto"), ("ceo", "cfo"), ("cto", "dev1"), ("cto", "dev2")):
        await relate(client, ids[source], ids[target], "whole_to_part")
    await relate(client, ids["dev2"], ids["ceo"], "cycle")
    await relate(client, ids["pm"], ids["cto"], "sibling", bidirectional=True)
    return ids


def test_traversal_lists_each_substrate_once_with_depth_and_path_and_echoes_limits(serve):
    async def story(client):
        ids = await org_chart(client)
        name = {v: k for k, v in ids.items()}
        response = await client.post(f"{QUERY}/traverse", json={"start_id": ids["ceo"]})
        assert response.status_code == 200
        walk = await body(response)
        assert {k: walk[k] for k in walk if k != "results"} == {
            "start_id": ids["ceo"], "direction": "out", "max_depth": 3,
            "relationship_types": None, "limit": 1000, "node_budget": 100_000,
            "truncated": False,
        }  # fmt: skip
        results = walk["results"]
        assert results[0] == {"substrate_id": ids["ceo"], "depth": 0, "path": [ids["ceo"]]}
        depths = {name[r["substrate_id"]]: r["depth"] for r in results}
        assert depths == {"ceo": 0, "cto": 1, "cfo": 1, "dev1": 2, "dev2": 2, "pm": 2}
        assert len(results) == len(depths)  # the cycle back to ceo adds nobody twice
        assert [r["depth"] for r in results] == sorted(r["depth"] for r in results)
        for r in results:
            assert r["path"][0] == ids["ceo"] and r["path"][-1] == r["substrate_id"]
            assert len(r["path"]) == r["depth"] + 1
        assert [name[i] for i in next(r for r in results if r["depth"] == 2
                                      and name[r["substrate_id"]] == "pm")["path"]] == [
            "ceo", "cto", "pm"]  # fmt: skip

        upward = await body(
            await client.post(
                f"{QUERY}/traverse",
                json={"start_id": ids["dev1"], "direction": "in", "max_depth": 2,
                      "relationship_types": ["Whole_To_Part"], "limit": 10},
            )
        )  # fmt: skip
        assert [name[r["substrate_id"]] for r in upward["results"]] == ["dev1", "cto", "ceo"]
        assert (upward["relationship_types"], upward["limit"], upward["max_depth"]) == (
            ["whole_to_part"], 10, 2,
        )  # fmt: skip

        around = await body(
            await client.post(
                f"{QUERY}/traverse",
                json={"start_id": ids["cfo"], "direction": "both", "max_depth": 1},
            )
        )
        assert {name[r["substrate_id"]] for r in around["results"]} == {"cfo", "ceo"}

        lonely = await body(await client.post(f"{QUERY}/traverse",
                                              json={"start_id": ids["loner"]}))  # fmt: skip
        assert [r["substrate_id"] for r in lonely["results"]] == [ids["loner"]]

    serve(story)


def test_a_traversal_over_its_limit_or_budget_stops_truncated(serve):
    async def story(client):
        ids = await named(client, *(f"n{i}" for i in range(40)))
        for i in range(1, 40):
            await relate(client, ids["n0"], ids[f"n{i}"], "containment")
        walk = await body(
            await client.post(f"{QUERY}/traverse", json={"start_id": ids["n0"], "limit": 7})
        )
        assert walk["truncated"] is True and len(walk["results"]) == 7
        assert walk["results"][0]["substrate_id"] == ids["n0"]
        return ids["n0"]

    serve(story)

    async def budgeted(client):
        ids = await named(client, *(f"m{i}" for i in range(40)))
        for i in range(1, 40):
            await relate(client, ids["m0"], ids[f"m{i}"], "containment")
        walk = await body(await client.post(f"{QUERY}/traverse", json={"start_id": ids["m0"]}))
        assert walk["node_budget"] == 10 and walk["truncated"] is True
        assert 1 <= len(walk["results"]) <= 10

    serve(budgeted, graph_node_budget=10)


def test_over_the_ceiling_is_a_422_naming_the_ceiling(serve):
    async def story(client):
        (a,) = (await named(client, "a")).values()
        cases = [
            ("post", f"{QUERY}/traverse", {"json": {"start_id": a, "max_depth": 5}}, "max_depth"),
            ("post", f"{QUERY}/traverse", {"json": {"start_id": a, "limit": 101}}, "limit"),
            ("post", f"{QUERY}/path", {"json": {"source_id": a, "target_id": a,
                                                "max_depth": 9}}, "max_depth"),
            ("get", f"{API}/relationships/graph", {"query_string": {"root": a, "depth": "5"}},
             "depth"),
            ("get", f"{API}/relationships/graph",
             {"query_string": {"root": a, "max_nodes": "1000"}}, "max_nodes"),
        ]  # fmt: skip
        for method, url, sent, field in cases:
            found = await problem(await getattr(client, method)(url, **sent), 422)
            assert found["field"] == field
            assert found["ceiling"] == (4 if "depth" in field else 100)
            assert found["setting"].startswith("server.graph_max_")
        # the defaults (depth 3, 1000 nodes) shrink to ceilings below them instead of failing
        walk = await body(await client.post(f"{QUERY}/traverse", json={"start_id": a}))
        assert (walk["max_depth"], walk["limit"]) == (3, 100)
        graph = await body(await client.get(f"{API}/relationships/graph",
                                            query_string={"root": a}))  # fmt: skip
        assert (graph["depth"], graph["max_nodes"]) == (2, 100)

    serve(story, graph_max_depth=4, graph_max_nodes=100)


def test_the_shortest_path_by_hops_and_by_weight(serve):
    async def story(client):
        ids = await named(client, "home", "highway", "lane1", "lane2", "office", "moon")
        await relate(client, ids["home"], ids["highway"], "adjacency", weight=5)
        await relate(client, ids["highway"], ids["office"], "adjacency", weight=5)
        await relate(client, ids["home"], ids["lane1"], "adjacency", weight=1)
        await relate(client, ids["lane1"], ids["lane2"], "adjacency", weight=1)
        await relate(client, ids["lane2"], ids["office"], "adjacency", weight=1)
        name = {v: k for k, v in ids.items()}
        ask = {"source_id": ids["home"], "target_id": ids["office"]}

        fewest = await body(await client.post(f"{QUERY}/path", json=ask))
        assert [name[n] for n in fewest["nodes"]] == ["home", "highway", "office"]
        assert (fewest["hops"], fewest["total_weight"], fewest["weighted"]) == (2, 10.0, False)
        assert [(e["source_id"], e["target_id"]) for e in fewest["edges"]] == [
            (ids["home"], ids["highway"]), (ids["highway"], ids["office"]),
        ]  # fmt: skip
        assert set(fewest) == {
            "source_id", "target_id", "weighted", "direction", "max_depth",
            "relationship_types", "nodes", "edges", "hops", "total_weight",
        }  # fmt: skip

        lightest = await body(await client.post(f"{QUERY}/path", json={**ask, "weighted": True}))
        assert [name[n] for n in lightest["nodes"]] == ["home", "lane1", "lane2", "office"]
        assert (lightest["hops"], lightest["total_weight"]) == (3, 3.0)

        short = await client.post(f"{QUERY}/path", json={**ask, "weighted": True, "max_depth": 2})
        assert [name[n] for n in (await body(short))["nodes"]] == ["home", "highway", "office"]

        none = await problem(
            await client.post(f"{QUERY}/path", json={**ask, "target_id": ids["moon"]}), 404
        )
        assert none["type"].endswith("/no-path") and ids["moon"] in none["detail"]
        backwards = {"source_id": ids["office"], "target_id": ids["home"]}
        await problem(await client.post(f"{QUERY}/path", json=backwards), 404)
        reverse = await body(
            await client.post(f"{QUERY}/path", json={**backwards, "direction": "in"})
        )
        assert reverse["hops"] == 2

        still = await body(
            await client.post(f"{QUERY}/path", json={**ask, "target_id": ids["home"]})
        )
        assert (still["nodes"], still["edges"], still["hops"]) == ([ids["home"]], [], 0)

        missing = await problem(
            await client.post(f"{QUERY}/path", json={**ask, "source_id": "0x1"}), 404
        )
        assert missing["field"] == "source_id"

    serve(story)


def test_search_by_each_filter_in_a_stable_order(serve):
    async def story(client):
        made = []
        for n in range(9):
            made.append(
                await create(
                    client, f"lambda **kw: kw.get('x', 0) + {n}",
                    metadata={"name": f"{'add' if n % 2 else 'plus'}_{n}", "tier": n % 3},
                )
            )  # fmt: skip
        constant = await body(
            await client.post(
                f"{API}/substrates",
                json={"expression_type": "constant", "expression_code": "42",
                      "metadata": {"name": "answer", "tier": "0"}},
            )
        )  # fmt: skip
        await relate(client, made[0]["substrate_id"], made[1]["substrate_id"], "attribute")

        async def search(**filters):
            response = await client.post(f"{QUERY}/search", json=filters)
            assert response.status_code == 200, await response.get_data()
            page = await body(response)
            identities = [s["identity"] for s in page["items"]]
            assert identities == sorted(identities)
            return page

        def names(page):
            return sorted(s["metadata"]["name"] for s in page["items"])

        assert names(await search(name_prefix="add_")) == ["add_1", "add_3", "add_5", "add_7"]
        assert names(await search(metadata={"tier": 0})) == ["add_3", "plus_0", "plus_6"]
        assert names(await search(metadata={"tier": "0"})) == ["answer"]
        assert names(await search(expression_type="constant")) == ["answer"]
        assert names(await search(code_contains="+ 8")) == ["plus_8"]
        assert names(await search(has_relationship_type="ATTRIBUTE")) == ["add_1", "plus_0"]
        assert names(await search(name_prefix="plus", metadata={"tier": 2})) == ["plus_2", "plus_8"]
        created = constant["created_at"]
        assert names(await search(created_after=created, expression_type="constant")) == ["answer"]
        assert (await search(created_before="2000-01-01"))["items"] == []
        assert len((await search(created_after="2000-01-01T00:00:00+01:00"))["items"]) == 10

        pages, cursor = [], None
        while True:
            page = await search(limit=3, **({"cursor": cursor} if cursor else {}))
            pages.append(page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert [len(p) for p in pages] == [3, 3, 3, 1]
        assert sorted(s["substrate_id"] for p in pages for s in p) == sorted(
            [m["substrate_id"] for m in made] + [constant["substrate_id"]]
        )
        assert pages[0][0] == await body(
            await client.get(f"{API}/substrates/{pages[0][0]['substrate_id']}")
        )

    serve(story)


def test_stats_count_what_the_tenant_has_and_name_the_plugins(serve, request):
    async def story(client):
        ids = await named(client, "a", "b", "c")
        await relate(client, ids["a"], ids["b"], "dependency")
        await relate(client, ids["b"], ids["c"], "dependency")
        await relate(client, ids["c"], ids["a"], "cycle")
        for x in range(4):
            await client.post(f"{API}/substrates/{ids['a']}/invoke", json={"parameters": {"a": x}})
        response = await client.get(f"{QUERY}/stats")
        assert response.status_code == 200
        assert response.headers["Cache-Control"] == "no-store"
        return await body(response)

    stats = serve(story)
    stack = request.node.callspec.id
    assert stats["substrates"] == 3
    assert stats["relationships"] == {"total": 3, "by_type": {"cycle": 1, "dependency": 2}}
    calls = stats["invocations"]
    assert (calls["count"], calls["errors"]) == (4, 0)
    assert calls["mean_ms"] == pytest.approx(calls["total_ms"] / 4, abs=1e-5)
    assert calls["last_invoked_at"].endswith("Z")
    assert (stats["storage"], stats["graph_engine"]) == {
        "memory": ("storage.memory", "graph.memory"),
        "sqlite": ("storage.sqlite", "graph.sql"),
    }[stack]
    assert stats["uptime_seconds"] >= 0


def test_without_a_graph_engine_graph_queries_are_503_and_the_rest_works(tmp_path):
    async def story():
        app = build_app(tmp_path, "storage.memory,http")
        async with app.test_app() as running:
            client = running.test_client()
            ids = await named(client, "a", "b")
            await relate(client, ids["a"], ids["b"])
            for response in (
                await client.post(f"{QUERY}/traverse", json={"start_id": ids["a"]}),
                await client.post(
                    f"{QUERY}/path", json={"source_id": ids["a"], "target_id": ids["b"]}
                ),
                await client.get(f"{API}/relationships/graph", query_string={"root": ids["a"]}),
            ):
                found = await problem(response, 503)
                assert found["type"].endswith("/graph-engine-unavailable")
                assert "graph.sql" in found["detail"]
            stats = await body(await client.get(f"{QUERY}/stats"))
            assert stats["graph_engine"] is None and stats["relationships"]["total"] == 1
            listed = await body(await client.get(f"{API}/relationships/outgoing/{ids['a']}"))
            assert len(listed["items"]) == 1

    asyncio.run(story())
