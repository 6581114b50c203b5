"""On SQLite, what a client wrote is there after the server restarts."""

from __future__ import annotations

from substrate_api import API, SEED_SUBSTRATE, body, named, relate


def test_substrates_patches_and_invocation_counts_survive_a_restart(serve):
    plugins = "storage.sqlite,http"

    async def first_life(client):
        created = await body(await client.post(f"{API}/substrates", json=SEED_SUBSTRATE))
        url = f"{API}/substrates/{created['substrate_id']}"
        await client.patch(url, json={"metadata": {"owner": "ann"}})
        for x in range(3):
            invoked = await client.post(f"{url}/invoke", json={"parameters": {"x": x, "y": 7}})
            assert invoked.status_code == 200
        return url, await body(await client.get(url))

    url, before = serve(first_life, plugins)

    async def second_life(client):
        after = await client.get(url)
        assert after.status_code == 200
        assert await body(after) == before
        assert before["identity"] >= 0 and before["version"] == 2
        division = await body(await client.post(f"{url}/divide"))
        frequency = next(d for d in division["dimensions"] if d["name"] == "Frequency")
        assert frequency["content"]["invocations"] == 3
        assert (await client.delete(url)).status_code == 204

    serve(second_life, plugins)

    async def third_life(client):
        assert (await client.get(url)).status_code == 404
        page = await body(await client.get(f"{API}/substrates"))
        assert page == {"items": [], "next_cursor": None}

    serve(third_life, plugins)


def test_relationships_survive_a_restart_and_the_graph_engine_finds_them(serve):
    plugins = "storage.sqlite,graph.sql,http"

    async def first_life(client):
        ids = await named(client, "a", "b")
        return ids, await relate(client, ids["a"], ids["b"], "embedding", weight=0.5)

    ids, made = serve(first_life, plugins)

    async def second_life(client):
        fetched = await client.get(f"{API}/relationships/{made['relationship_id']}")
        assert await body(fetched) == made
        walk = await client.post(
            f"{API}/query/traverse", json={"start_id": ids["a"], "max_depth": 1}
        )
        assert [r["substrate_id"] for r in (await body(walk))["results"]] == [ids["a"], ids["b"]]

    serve(second_life, plugins)
