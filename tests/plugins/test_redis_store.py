"""storage.redis keeps the storage contract (the suite the SQL stores pass) on a real
Redis, shows operators its durability settings, and a Redis that does not answer stops
the start with a message naming the server; one that goes away (or stops answering) while
it runs makes every call raise StoreUnavailable, and the store serves again once it is
back."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
import structlog
from ratelimit_proxy import CuttableLink
from redis.exceptions import ResponseError

from butterflyfx.core.config import read_config
from butterflyfx.core.context import ServerContext
from butterflyfx.core.plugins import PluginError
from butterflyfx.core.store import CONTRACT_METHODS, StoreUnavailable, SubstrateQuery
from butterflyfx.kernel import InvocationStats
from butterflyfx.plugins import storage_redis
from butterflyfx.plugins.storage_redis import RedisStore, RedisStoreError
from butterflyfx.testing.services import REDIS_URL, redis_prefix
from butterflyfx.testing.storage import (
    StoreConformance,
    StoreFactory,
    make_relationship,
    make_substrate,
)

REDIS_PORT = urlsplit(REDIS_URL).port or 6379


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


# -- a Redis that goes away while the store is open -------------------------------------

WAIT = 30.0  # only keeps a broken run from hanging; nothing here is timed


def contract_calls(store: Any) -> dict[str, Callable[[], Awaitable[Any]]]:
    """One call of each method of the storage contract (Redis has no SQL)."""
    first, second = make_substrate(1), make_substrate(2)
    link = make_relationship(first, second)
    return {
        "put_substrate": lambda: store.put_substrate("acme", make_substrate(3)),
        "put_substrates": lambda: store.put_substrates("acme", [make_substrate(4)]),
        "get_substrate": lambda: store.get_substrate("acme", first.identity),
        "get_substrates": lambda: store.get_substrates("acme", [first.identity]),
        "list_substrates": lambda: store.list_substrates("acme", limit=5),
        "update_metadata": lambda: store.update_metadata(
            "acme", first.identity, {"n": 9}, now=datetime.now(UTC)
        ),
        "delete_substrate": lambda: store.delete_substrate("acme", second.identity),
        "count_substrates": lambda: store.count_substrates("acme"),
        "add_invocations": lambda: store.add_invocations(
            "acme", {first.identity: InvocationStats(1, 0, 1.0, datetime.now(UTC))}
        ),
        "invocation_stats": lambda: store.invocation_stats("acme", first.identity),
        "invocation_totals": lambda: store.invocation_totals("acme"),
        "search_substrates": lambda: store.search_substrates("acme", SubstrateQuery(), limit=5),
        "put_relationship": lambda: store.put_relationship("acme", link),
        "put_relationships": lambda: store.put_relationships("acme", [link]),
        "get_relationship": lambda: store.get_relationship("acme", link.identity),
        "delete_relationship": lambda: store.delete_relationship("acme", link.identity),
        "list_relationships": lambda: store.list_relationships(
            "acme", first.identity, "outgoing", limit=5
        ),
        "all_relationships": lambda: store.all_relationships("acme", limit=5),
        "count_relationships": lambda: store.count_relationships("acme"),
        "health": lambda: store.health(),
        "tenants": lambda: store.tenants(),
    }


def test_the_outage_story_calls_every_method_of_the_contract_that_reaches_redis() -> None:
    assert set(contract_calls(None)) == set(CONTRACT_METHODS) - {"sql_fetch"}


async def _opened_through(link: CuttableLink, prefix: str, **options: Any) -> RedisStore:
    store = RedisStore(f"redis://127.0.0.1:{await link.open()}/0", prefix=prefix, **options)
    await store.open()
    return store


def test_a_redis_that_goes_away_makes_every_call_store_unavailable_until_it_is_back(
    prefix: str,
) -> None:
    async def main() -> tuple[dict[str, BaseException | None], Any, Any]:
        link = CuttableLink("127.0.0.1", REDIS_PORT)
        store = await _opened_through(link, prefix)
        try:
            first = make_substrate(1)
            await store.put_substrates("acme", [first, make_substrate(2)])
            await link.cut()
            failures: dict[str, BaseException | None] = {}
            for name, call in contract_calls(store).items():
                try:
                    await asyncio.wait_for(call(), WAIT)
                    failures[name] = None
                except Exception as error:
                    failures[name] = error
            await link.restore()
            back = await asyncio.wait_for(store.get_substrate("acme", first.identity), WAIT)
            return failures, back, first
        finally:
            await store.close()
            await link.cut()

    failures, back, first = asyncio.run(main())

    assert {name: type(error) for name, error in failures.items()} == {
        name: StoreUnavailable for name in contract_calls(None)
    }
    unavailable = failures["put_substrate"]
    assert isinstance(unavailable, StoreUnavailable)
    assert unavailable.store == "storage.redis" and unavailable.retry_after == 5
    assert "ConnectionError" in unavailable.reason
    assert back == first  # the client reconnected by itself, and the data is there


def test_a_redis_that_stops_answering_is_store_unavailable_after_command_timeout(
    prefix: str,
) -> None:
    async def main() -> BaseException:
        link = CuttableLink("127.0.0.1", REDIS_PORT)
        store = await _opened_through(link, prefix, command_timeout=0.2)
        try:
            link.silence()  # connections stay open; nothing comes back
            with pytest.raises(StoreUnavailable) as silent:
                await asyncio.wait_for(store.count_substrates("acme"), WAIT)
            return silent.value
        finally:
            await link.cut()
            await store.close()

    assert "TimeoutError" in asyncio.run(main()).reason


def test_a_redis_error_that_is_not_an_outage_stays_what_it_is(prefix: str) -> None:
    async def main() -> None:
        store = RedisStore(REDIS_URL, prefix=prefix)
        await store.open()
        try:
            client = redis.Redis.from_url(REDIS_URL)
            client.set(f"{prefix}:acme:substrates", "not a sorted set")  # someone else's key
            client.close()
            with pytest.raises(ResponseError, match="WRONGTYPE"):
                await store.count_substrates("acme")
        finally:
            await store.close()

    asyncio.run(main())


def test_a_redis_that_never_answers_stops_the_start_naming_the_timeout(prefix: str) -> None:
    async def main() -> str:
        link = CuttableLink("127.0.0.1", REDIS_PORT)
        port = await link.open()
        link.silence()  # connections are accepted; nothing ever comes back
        store = RedisStore(f"redis://127.0.0.1:{port}/0", prefix=prefix, command_timeout=0.2)
        try:
            with pytest.raises(RedisStoreError) as refused:
                await asyncio.wait_for(store.open(), WAIT)
            return str(refused.value)
        finally:
            await link.cut()

    assert "TimeoutError: Timeout reading from 127.0.0.1:" in asyncio.run(main())


def test_graph_memory_over_redis_warns_it_sees_only_this_instance(
    tmp_path: Path, prefix: str
) -> None:
    path = tmp_path / "butterflyfx.toml"
    path.write_text(
        'plugins = ["storage.redis", "graph.memory"]\n'
        f'[server]\ndata_dir = "{tmp_path}"\n'
        f'[storage.redis]\nurl = "{REDIS_URL}"\nprefix = "{prefix}"\n',
        encoding="utf-8",
    )

    async def main() -> list[dict[str, Any]]:
        ctx = ServerContext.build(read_config(path))
        with structlog.testing.capture_logs() as logs:
            await ctx.start()
        try:
            assert ctx.graph_plugin == "graph.memory"  # it still serves one instance
        finally:
            await ctx.stop()
        return [entry for entry in logs if entry["event"] == "graph_memory_sees_this_instance_only"]

    warnings = asyncio.run(main())
    assert [(w["log_level"], w["storage"]) for w in warnings] == [("warning", "storage.redis")]
    assert "graph.sql over storage.postgres" in warnings[0]["detail"]
