"""Loading many substrates and relationships through the client in a few requests, and
reading every relationship of the tenant back lazily, with the sync and async clients."""

from __future__ import annotations

import asyncio

import pytest

from butterflyfx.interface.client import AsyncButterflyFX, ValidationFailed
from butterflyfx.interface.machine.models import (
    RelationshipBatchBody,
    RelationshipPage,
    SubstrateBatchBody,
)
from butterflyfx.kernel import Substrate

GHOST = "0x00000000000000AB"


def test_an_importer_loads_a_batch_and_learns_which_items_were_refused(client):
    items = [
        {"expression_type": "lambda", "expression_code": f"lambda **kw: kw.get('load', {n})",
         "metadata": {"name": f"load-{n}"}}
        for n in range(4)
    ]  # fmt: skip
    items.insert(1, {"expression_type": "lambda", "expression_code": "lambda **kw: open('x')"})

    loaded = client.create_substrates(items)

    assert isinstance(loaded, SubstrateBatchBody)
    assert [r.status for r in loaded.results] == [201, 422, 201, 201, 201]
    assert (loaded.created, loaded.existing, loaded.failed) == (4, 0, 1)
    refused = loaded.results[1].problem
    assert refused.type.endswith("/expression-rejected") and refused.field == "expression_code"
    ids = [r.substrate.substrate_id for r in loaded.results if r.substrate]
    assert ids[0] == Substrate.create("lambda", items[0]["expression_code"]).substrate_id
    assert client.get_substrate(ids[3]).metadata == {"name": "load-3"}

    again = client.create_substrates(items[:1])  # sent again, after a lost answer say
    assert again.results[0].status == 200 and again.existing == 1

    related = client.create_relationships(
        [
            {"source_id": ids[0], "target_id": ids[1], "relationship_type": "dependency"},
            {"source_id": ids[1], "target_id": GHOST, "relationship_type": "dependency"},
            {
                "source_id": ids[2],
                "target_id": ids[3],
                "relationship_type": "sibling",
                "bidirectional": True,
                "weight": 0.5,
            },
        ]  # fmt: skip
    )
    assert isinstance(related, RelationshipBatchBody)
    assert [r.status for r in related.results] == [201, 404, 201]
    assert related.results[1].problem.field == "target_id"
    assert related.results[2].relationship.weight == 0.5

    with pytest.raises(ValidationFailed) as too_many:
        client.create_substrates([items[0]] * 501)
    assert too_many.value.field == "substrates"


def test_every_relationship_of_the_tenant_is_listed_once_a_page_at_a_time(client):
    ids = [
        r.substrate.substrate_id
        for r in client.create_substrates(
            [
                {"expression_type": "lambda", "expression_code": f"lambda **kw: {n} - 1"}
                for n in range(5)
            ]  # fmt: skip
        ).results
    ]
    chain = [
        {"source_id": ids[n], "target_id": ids[n + 1],
         "relationship_type": "lineage" if n else "cycle", "bidirectional": n == 2}
        for n in range(4)
    ]  # fmt: skip
    made = {r.relationship.relationship_id for r in client.create_relationships(chain).results}

    listed = [r.relationship_id for r in client.list_relationships(page_size=2)]
    assert made <= set(listed) and len(listed) == len(set(listed)) == len(
        {r.relationship_id for r in client.list_relationships()}
    )
    assert listed == sorted(listed)
    cycles = [r.relationship_id for r in client.list_relationships(page_size=1, types=["CYCLE"])]
    assert len(cycles) == 1 and cycles[0] in made

    first = client.relationship_page(limit=1, types="lineage")
    assert isinstance(first, RelationshipPage) and first.next_cursor is not None
    second = client.relationship_page(limit=1, cursor=first.next_cursor, types="lineage")
    assert second.items[0].relationship_id > first.items[0].relationship_id


def test_the_async_client_batches_and_lists_too(server):
    async def story() -> tuple[list[int], list[str]]:
        async with AsyncButterflyFX(server.url, api_key=server.admin_key) as client:
            made = await client.create_substrates(
                [
                    {"expression_type": "lambda", "expression_code": f"lambda **kw: {n} * 3"}
                    for n in range(2)
                ]  # fmt: skip
            )
            a, b = (r.substrate.substrate_id for r in made.results)
            related = await client.create_relationships(
                [{"source_id": a, "target_id": b, "relationship_type": "embedding"}]
            )
            listed = [r.relationship_id async for r in client.list_relationships(types="embedding")]
            return [r.status for r in made.results + related.results], listed

    statuses, listed = asyncio.run(asyncio.wait_for(story(), 120))
    assert statuses == [201, 201, 201] and len(listed) == 1
