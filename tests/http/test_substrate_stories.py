"""What a client of the substrate API sees, story by story (seed 000's formats)."""

from __future__ import annotations

import re

import pytest
from substrate_api import API, SEED_SUBSTRATE, body, create, problem


@pytest.fixture(params=["storage.memory", "storage.sqlite"])
def serve(request, serve):
    """Every story runs on both built-in stores."""
    return lambda scenario, **server: serve(scenario, f"{request.param},http", **server)


def test_the_seed_walk_through_from_create_to_delete(serve):
    async def story(client):
        created = await client.post(f"{API}/substrates", json=SEED_SUBSTRATE)
        assert created.status_code == 201
        substrate = await body(created)
        substrate_id = substrate["substrate_id"]
        assert re.fullmatch(r"0x[0-9A-F]{16}", substrate_id)
        assert substrate["identity"] == int(substrate_id, 16)
        assert created.headers["Location"] == f"{API}/substrates/{substrate_id}"
        assert set(substrate) == {
            "substrate_id", "identity", "created_at", "expression_type", "expression_code",
            "metadata", "updated_at", "version",
        }  # fmt: skip
        assert substrate["expression_type"] == "lambda"
        assert substrate["metadata"] == SEED_SUBSTRATE["metadata"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", substrate["created_at"])
        assert substrate["version"] == 1

        fetched = await client.get(f"{API}/substrates/{substrate_id}")
        assert fetched.status_code == 200
        assert await body(fetched) == substrate

        divided = await client.post(f"{API}/substrates/{substrate_id}/divide", json={})
        assert divided.status_code == 200
        division = await body(divided)
        assert division["substrate_id"] == substrate_id
        assert division["fibonacci_sequence"] == [0, 1, 1, 2, 3, 5, 8, 13, 21]
        assert [(d["level"], d["name"]) for d in division["dimensions"]] == [
            (0, "Void"), (1, "Identity"), (1, "Domain"), (2, "Length"), (3, "Area"),
            (5, "Volume"), (8, "Frequency"), (13, "System"), (21, "Complete"),
        ]  # fmt: skip
        assert all(
            set(d) == {"level", "name", "description", "content"} for d in division["dimensions"]
        )

        invoked = await client.post(
            f"{API}/substrates/{substrate_id}/invoke", json={"parameters": {"x": 5, "y": 7}}
        )
        assert invoked.status_code == 200
        invocation = await body(invoked)
        assert invocation["substrate_id"] == substrate_id
        assert invocation["result"] == 35
        assert isinstance(invocation["invocation_time_ms"], float)

        rebuilt = await client.post(
            f"{API}/substrates/multiply", json={"dimensions": division["dimensions"]}
        )
        assert rebuilt.status_code == 200  # the tenant already has it: same identity
        assert (await body(rebuilt))["substrate_id"] == substrate_id

        other = await create(client, "lambda **kw: kw.get('x', 0) + 1")
        product = await client.post(
            f"{API}/substrates/multiply",
            json={"substrate_ids": [substrate_id, other["substrate_id"]]},
        )
        assert product.status_code == 201
        made = await body(product)
        assert made["substrate_id"] not in (substrate_id, other["substrate_id"])
        assert product.headers["Location"] == f"{API}/substrates/{made['substrate_id']}"
        x_times_y_times_x_plus_1 = await client.post(
            f"{API}/substrates/{made['substrate_id']}/invoke",
            json={"parameters": {"x": 2, "y": 3}},
        )
        assert (await body(x_times_y_times_x_plus_1))["result"] == 18

        deleted = await client.delete(f"{API}/substrates/{substrate_id}")
        assert deleted.status_code == 204
        assert await deleted.get_data() == b""
        gone = await problem(await client.get(f"{API}/substrates/{substrate_id}"), 404)
        assert gone["field"] == "substrate_id"
        await problem(await client.delete(f"{API}/substrates/{substrate_id}"), 404)

    serve(story)


def test_dividing_or_invoking_needs_no_body_at_all(serve):
    async def story(client):
        substrate = await create(client, "lambda **kw: 42")
        divided = await client.post(f"{API}/substrates/{substrate['substrate_id']}/divide")
        assert divided.status_code == 200
        invoked = await client.post(f"{API}/substrates/{substrate['substrate_id']}/invoke")
        assert (await body(invoked))["result"] == 42

    serve(story)


def test_creating_the_same_expression_twice_returns_the_first_with_200(serve):
    async def story(client):
        first = await client.post(f"{API}/substrates", json=SEED_SUBSTRATE)
        again = await client.post(
            f"{API}/substrates", json={**SEED_SUBSTRATE, "metadata": {"name": "another"}}
        )
        assert (first.status_code, again.status_code) == (201, 200)
        assert "Location" not in again.headers
        assert await body(again) == await body(first)  # stored unchanged

    serve(story)


def test_the_identity_is_a_json_number_even_above_2_to_the_63(serve):
    async def story(client):
        seen = []
        for n in range(40):
            substrate = await create(client, f"lambda **kw: {n}")
            assert substrate["identity"] == int(substrate["substrate_id"], 16)
            seen.append(substrate["identity"])
        assert max(seen) >= 2**63  # 40 random 64-bit numbers: all below 2**63 is 1 in 2**40
        raw = await (await client.get(f"{API}/substrates?limit=100")).get_data()
        assert str(max(seen)).encode() in raw

    serve(story)


def test_a_client_revalidating_with_its_etag_gets_304_until_the_metadata_changes(serve):
    async def story(client):
        substrate = await create(client, metadata={"n": 1})
        url = f"{API}/substrates/{substrate['substrate_id']}"
        first = await client.get(url)
        etag = first.headers["ETag"]
        assert etag.startswith('"') and not etag.startswith("W/")

        cached = await client.get(url, headers={"If-None-Match": etag})
        assert cached.status_code == 304
        assert cached.headers["ETag"] == etag
        assert await cached.get_data() == b""
        listed = await client.get(url, headers={"If-None-Match": f'"other", W/{etag}'})
        assert listed.status_code == 304
        assert (await client.get(url, headers={"If-None-Match": '"other"'})).status_code == 200

        patched = await client.patch(url, json={"metadata": {"n": 2}})
        assert patched.headers["ETag"] != etag
        fresh = await client.get(url, headers={"If-None-Match": etag})
        assert fresh.status_code == 200
        assert (await body(fresh))["metadata"] == {"n": 2}

    serve(story)


def test_a_substrate_deleted_and_created_again_does_not_match_its_old_etag(serve):
    async def story(client):
        substrate = await create(client, metadata={"owner": "ann"})
        url = f"{API}/substrates/{substrate['substrate_id']}"
        old = (await client.get(url)).headers["ETag"]
        await client.delete(url)
        await create(client, metadata={"owner": "bob"})
        again = await client.get(url, headers={"If-None-Match": old})
        assert again.status_code == 200
        assert (await body(again))["metadata"] == {"owner": "bob"}

    serve(story)


def test_paging_through_25_substrates_ten_at_a_time_sees_each_exactly_once(serve):
    async def story(client):
        made = {(await create(client, f"lambda **kw: {n} * 3"))["substrate_id"] for n in range(25)}
        seen, pages, cursor = [], [], None
        while True:
            query = "limit=10" + (f"&cursor={cursor}" if cursor else "")
            page = await body(await client.get(f"{API}/substrates?{query}"))
            assert set(page) == {"items", "next_cursor"}
            pages.append(len(page["items"]))
            seen += [item["substrate_id"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert pages == [10, 10, 5]
        assert len(seen) == 25 and set(seen) == made
        assert seen == sorted(seen, key=lambda s: int(s, 16))

    serve(story)


def test_patch_merges_metadata_as_rfc_7396_says(serve):
    async def story(client):
        substrate = await create(
            client,
            metadata={"name": "m", "tags": {"a": 1, "b": 2}, "drop": True, "list": [1, 2]},
        )
        url = f"{API}/substrates/{substrate['substrate_id']}"
        patched = await client.patch(
            url,
            json={"metadata": {"tags": {"b": None, "c": 3}, "drop": None, "list": [3], "new": "x"}},
        )
        assert patched.status_code == 200
        updated = await body(patched)
        assert updated["metadata"] == {
            "name": "m",
            "tags": {"a": 1, "c": 3},
            "list": [3],
            "new": "x",
        }
        assert updated["version"] == 2
        assert updated["expression_code"] == substrate["expression_code"]
        assert await body(await client.get(url)) == updated

        as_merge_patch = await client.patch(
            url,
            data=b'{"metadata": {"name": "n"}}',
            headers={"Content-Type": "application/merge-patch+json"},
        )
        assert (await body(as_merge_patch))["metadata"]["name"] == "n"

        unchanged = await body(await client.patch(url, json={}))
        assert unchanged["version"] == 3  # an empty patch changes nothing

        cleared = await body(await client.patch(url, json={"metadata": None}))
        assert cleared["metadata"] == {} and cleared["version"] == 4

    serve(story)


def test_patching_or_invoking_a_missing_substrate_is_404(serve):
    async def story(client):
        missing = f"{API}/substrates/0x0000000000000001"
        for response in (
            await client.patch(missing, json={"metadata": {"a": 1}}),
            await client.post(f"{missing}/invoke", json={"parameters": {}}),
            await client.post(f"{missing}/divide", json={}),
        ):
            found = await problem(response, 404)
            assert found["type"].endswith("/not-found")
            assert found["field"] == "substrate_id"

    serve(story)


def test_ids_are_accepted_in_any_case_and_answered_in_canonical_form(serve):
    async def story(client):
        substrate = await create(client)
        lower = substrate["substrate_id"].lower()
        fetched = await body(await client.get(f"{API}/substrates/{lower}"))
        assert fetched["substrate_id"] == substrate["substrate_id"]

    serve(story)


def test_an_invocation_returning_a_huge_integer_is_still_json(serve):
    async def story(client):
        substrate = await create(client, "lambda **kw: 2 ** 200")
        invoked = await client.post(f"{API}/substrates/{substrate['substrate_id']}/invoke")
        assert invoked.status_code == 200
        assert (await body(invoked))["result"] == 2**200

    serve(story)


def test_results_are_never_nan_on_the_wire(serve):
    async def story(client):
        substrate = await create(client, "lambda **kw: [float('nan'), float('inf'), 1e308 * 10]")
        invoked = await client.post(f"{API}/substrates/{substrate['substrate_id']}/invoke")
        assert invoked.status_code == 200
        assert (await body(invoked))["result"] == ["NaN", "Infinity", "Infinity"]

    serve(story)
