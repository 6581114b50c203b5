"""storage.redis keeps the storage contract (the suite the SQL stores pass) on a real
Redis, shows operators its durability settings, and a Redis that does not answer stops
the start with a message naming the server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from butterflyfx.core.config import read_config
from butterflyfx.core.context import ServerContext
from butterflyfx.core.plugins import PluginError
from butterflyfx.plugins import storage_redis
from butterflyfx.plugins.storage_redis import RedisStore, RedisStoreError
from butterflyfx.testing.services import REDIS_URL, redis_prefix
from butterflyfx.testing.storage import StoreConformance, StoreFactory, make_substrate


@pytest.fixture
def prefix() -> Iterator[str]:
    with redis_prefix() as name:
        yield name


class TestRedisStore(StoreConformance):
    @pytest.fixture
    def substrate_store_factory(self, prefix: str) -> StoreFactory:
        return StoreFactory(lambda: RedisStore(REDIS_URL, prefix=prefix), persistent=True)


def _server(folder: Path, url: str, prefix: str) -> ServerContext:
    path = folder / "butterflyfx.toml"
    path.write_text(
        'plugins = ["storage.redis"]\n'
        f'[server]\ndata_dir = "{folder}"\n'
        f'[storage.redis]\nurl = "{url}"\nprefix = "{prefix}"\n',
        encoding="utf-8",
    )
    return ServerContext.build(read_config(path), {"storage.redis": storage_redis})


def test_a_server_configured_for_redis_stores_there_and_reports_durability(
    tmp_path: Path, prefix: str
) -> None:
    async def main() -> None:
        ctx = _server(tmp_path, REDIS_URL, prefix)
        await ctx.start()
        try:
            store = ctx.store
            assert isinstance(store, RedisStore) and store.prefix == prefix
            substrate = make_substrate(3)
            await store.put_substrate("acme", substrate)
            health = await store.health()
            assert health["prefix"] == prefix
            assert health["appendonly"] in ("yes", "no")
            assert health["appendfsync"] in ("always", "everysec", "no", "unknown")
        finally:
            await ctx.stop()
        other = RedisStore(REDIS_URL, prefix=prefix)  # another server on the same Redis
        await other.open()
        try:
            assert await other.get_substrate("acme", substrate.identity) == substrate
        finally:
            await other.close()

    asyncio.run(main())


def test_tenants_with_colons_in_their_names_do_not_share_keys(prefix: str) -> None:
    async def main() -> None:
        store = RedisStore(REDIS_URL, prefix=prefix)
        await store.open()
        try:
            substrate = make_substrate(5)
            await store.put_substrate("a:s", substrate)
            assert await store.count_substrates("a") == 0
            assert await store.get_substrate("a", substrate.identity) is None
            assert await store.count_substrates("a:s") == 1
        finally:
            await store.close()

    asyncio.run(main())


def test_an_unreachable_redis_stops_the_start_naming_the_server(tmp_path: Path) -> None:
    url = "redis://:hunter2@127.0.0.1:1/0"
    ctx = _server(tmp_path, url, "butterflyfx")
    with pytest.raises(PluginError) as raised:
        asyncio.run(ctx.start())
    message = str(raised.value)
    assert "storage.redis" in message
    assert "127.0.0.1:1/0" in message
    assert "hunter2" not in message
    with pytest.raises(RedisStoreError, match="127.0.0.1:1") as direct:
        asyncio.run(RedisStore(url, connect_timeout=3).open())
    assert "hunter2" not in str(direct.value)
