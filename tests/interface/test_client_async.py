"""The async client tells the same story: create, invoke, relate, list lazily, errors."""

from __future__ import annotations

import asyncio

import pytest

from butterflyfx.interface.client import AsyncButterflyFX, NotFound
from butterflyfx.interface.machine.models import InvocationBody, SubstrateBody


def test_the_async_client_creates_invokes_relates_and_lists_a_page_at_a_time(server):
    async def story() -> tuple[SubstrateBody, InvocationBody, list[str], list[str]]:
        async with AsyncButterflyFX(server.url, api_key=server.admin_key) as client:
            made = await client.create_substrate("lambda", "lambda **kw: kw.get('a', 0) - 1")
            other = await client.create_substrate("lambda", "lambda **kw: kw.get('a', 0) - 2")
            await client.create_relationship(made.substrate_id, other.substrate_id, "sibling")
            invoked = await client.invoke(made.substrate_id, {"a": 10})
            listed = [s.substrate_id async for s in client.list_substrates(page_size=1)]
            related = [r.target_id async for r in client.outgoing(made.substrate_id)]
            with pytest.raises(NotFound):
                await client.get_substrate("0x00000000DEADBEEF")
            return made, invoked, listed, related

    made, invoked, listed, related = asyncio.run(asyncio.wait_for(story(), 120))

    assert isinstance(made, SubstrateBody) and invoked.result == 9
    assert made.substrate_id in listed and len(listed) == len(set(listed))
    assert len(related) == 1
