"""storage.postgres keeps the storage contract (the suite SQLite passes), graph.sql runs
its recursive queries on it, and a database that does not answer stops the start with a
message naming the server; one that goes away while it runs makes every call raise
StoreUnavailable (a lost connection, a busy pool, a statement past its timeout), and the
store serves again once it is back."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
from postgres_service import POSTGRES_DSN, postgres_schema
from ratelimit_proxy import CuttableLink

from butterflyfx.core.config import read_config
from butterflyfx.core.context import ServerContext
from butterflyfx.core.plugins import PluginError
from butterflyfx.core.store import CONTRACT_METHODS, StoreUnavailable, SubstrateQuery
from butterflyfx.kernel import InvocationStats
from butterflyfx.plugins import storage_postgres
from butterflyfx.plugins.storage_postgres import PostgresStore, PostgresStoreError
from butterflyfx.testing.graph import GraphConformance, graph_server
from butterflyfx.testing.storage import (
    StoreConformance,
    StoreFactory,
    make_relationship,
    make_substrate,
)

POSTGRES_PORT = urlsplit(POSTGRES_DSN).port or 5432


@pytest.fixture
def schema() -> Iterator[str]:
    with postgres_schema() as name:
        yield name


class TestPostgresStore(StoreConformance):
    @pytest.fixture
    def substrate_store_factory(self, schema: str) -> StoreFactory:
        return StoreFactory(
            lambda: PostgresStore(POSTGRES_DSN, schema=schema, max_pool=4), persistent=True
        )


class TestSqlGraphOnPostgres(GraphConformance):
    @pytest.fixture
    def graph_server_factory(self, tmp_path: Path, schema: str):
        section = f'\n[storage.postgres]\ndsn = "{POSTGRES_DSN}"\nschema = "{schema}"\n'
        return graph_server(
            tmp_path,
            ["storage.postgres", "graph.sql"],
            {"storage.postgres": storage_postgres},
            server=section,
        )


def test_servers_starting_together_migrate_the_schema_once(schema: str) -> None:
    async def main() -> list[int | None]:
        stores = [PostgresStore(POSTGRES_DSN, schema=schema) for _ in range(4)]
        await asyncio.gather(*(store.open() for store in stores))
        try:
            substrate = make_substrate(7)
            assert (await stores[0].put_substrate("acme", substrate))[1] is True
            assert await stores[3].get_substrate("acme", substrate.identity) == substrate
            return [store.schema_version for store in stores]
        finally:
            await asyncio.gather(*(store.close() for store in stores))

    versions = asyncio.run(main())
    assert len(set(versions)) == 1 and versions[0]


def test_graph_sql_reads_are_read_only(schema: str) -> None:
    async def main() -> None:
        store = PostgresStore(POSTGRES_DSN, schema=schema)
        await store.open()
        try:
            assert await store.sql_fetch("SELECT ?::int + ?::int", [2, 3]) == [(5,)]
            with pytest.raises(Exception, match="read-only"):
                await store.sql_fetch("DELETE FROM substrates WHERE tenant = ?", ["acme"])
        finally:
            await store.close()

    asyncio.run(main())


def _server(folder: Path, schema: str, dsn: str = POSTGRES_DSN) -> ServerContext:
    path = folder / "butterflyfx.toml"
    path.write_text(
        'plugins = ["storage.postgres", "graph.sql"]\n'
        f'[server]\ndata_dir = "{folder}"\n'
        f'[storage.postgres]\ndsn = "{dsn}"\nschema = "{schema}"\n',
        encoding="utf-8",
    )
    return ServerContext.build(read_config(path), {"storage.postgres": storage_postgres})


def test_a_server_configured_for_postgres_serves_graph_sql_from_it(
    tmp_path: Path, schema: str
) -> None:
    async def main() -> None:
        ctx = _server(tmp_path, schema)
        await ctx.start()
        try:
            assert isinstance(ctx.store, PostgresStore)
            assert ctx.store.schema == schema
            assert ctx.graph_plugin == "graph.sql"
        finally:
            await ctx.stop()

    asyncio.run(main())


def test_an_unreachable_database_stops_the_start_naming_the_server(tmp_path: Path) -> None:
    dsn = "postgresql://postgres:hunter2@127.0.0.1:1/test"
    ctx = _server(tmp_path, "butterflyfx", dsn)
    with pytest.raises(PluginError) as raised:
        asyncio.run(ctx.start())
    message = str(raised.value)
    assert "storage.postgres" in message
    assert "127.0.0.1:1/test" in message
    assert "hunter2" not in message
    store = PostgresStore(dsn, connect_timeout=3)
    with pytest.raises(PostgresStoreError, match="127.0.0.1:1"):
        asyncio.run(store.open())


# -- a database that goes away while the store is open ---------------------------------

WAIT = 30.0  # only keeps a broken run from hanging; nothing here is timed


def contract_calls(store: Any) -> dict[str, Callable[[], Awaitable[Any]]]:
    """One call of each method of the storage contract that reaches the database."""
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
        "sql_fetch": lambda: store.sql_fetch("SELECT ?::int", [1]),
    }


def test_the_outage_story_calls_every_method_of_the_contract_that_reaches_the_database() -> None:
    assert set(contract_calls(None)) == set(CONTRACT_METHODS)


async def _started_through(link: CuttableLink, schema: str, **options: Any) -> PostgresStore:
    port = await link.open()
    store = PostgresStore(f"postgresql://postgres@127.0.0.1:{port}/test", schema=schema, **options)
    await store.open()
    return store


def test_a_database_that_goes_away_makes_every_call_store_unavailable_until_it_is_back(
    schema: str,
) -> None:
    async def main() -> tuple[dict[str, BaseException | None], Any, Any]:
        link = CuttableLink("127.0.0.1", POSTGRES_PORT)
        store = await _started_through(link, schema)
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
        name: StoreUnavailable for name in CONTRACT_METHODS
    }
    unavailable = failures["get_substrate"]
    assert isinstance(unavailable, StoreUnavailable)
    assert unavailable.store == "storage.postgres" and unavailable.retry_after == 5
    assert "127.0.0.1:" in unavailable.reason  # where, for the log; never the password
    assert back == first  # the pool reconnected by itself, and the data is there


def test_a_connection_lost_in_the_middle_of_a_query_is_store_unavailable(schema: str) -> None:
    async def main() -> BaseException:
        link = CuttableLink("127.0.0.1", POSTGRES_PORT)
        store = await _started_through(link, schema)
        try:
            marker = f"outage_{schema}"
            running = asyncio.create_task(
                store.sql_fetch(f"SELECT pg_sleep(30) AS {marker}")  # longer than any wait
            )
            await asyncio.wait_for(_statement_running(marker), WAIT)
            await link.cut()
            with pytest.raises(StoreUnavailable) as lost:
                await asyncio.wait_for(running, WAIT)
            return lost.value
        finally:
            await store.close()
            await link.cut()

    lost = asyncio.run(main())
    assert "ConnectionDoesNotExistError" in lost.reason or "closed" in lost.reason


async def _statement_running(marker: str) -> None:
    """Return once PostgreSQL runs a statement containing ``marker``."""
    db = await asyncpg.connect(POSTGRES_DSN, timeout=5)
    try:
        while not await db.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE $1 AND pid <> pg_backend_pid()",
            f"%{marker}%",
        ):
            await asyncio.sleep(0.05)
    finally:
        await db.close()


def test_a_request_waits_for_a_busy_pool_only_acquire_timeout_then_hears_unavailable(
    schema: str,
) -> None:
    async def main() -> BaseException:
        link = CuttableLink("127.0.0.1", POSTGRES_PORT)
        store = await _started_through(link, schema, min_pool=1, max_pool=1, acquire_timeout=0.2)
        busy = asyncio.create_task(store.sql_fetch(f"SELECT pg_sleep(30) AS busy_{schema}"))
        try:
            await asyncio.wait_for(_statement_running(f"busy_{schema}"), WAIT)
            with pytest.raises(StoreUnavailable) as waited:
                await asyncio.wait_for(store.count_substrates("acme"), WAIT)
            return waited.value
        finally:
            busy.cancel()
            with contextlib.suppress(asyncio.CancelledError, StoreUnavailable):
                await asyncio.wait_for(busy, WAIT)
            await store.close()
            await link.cut()

    waited = asyncio.run(main())
    assert "TimeoutError" in waited.reason


def test_a_statement_that_outlasts_command_timeout_is_store_unavailable(schema: str) -> None:
    async def main() -> BaseException:
        link = CuttableLink("127.0.0.1", POSTGRES_PORT)
        store = await _started_through(link, schema, command_timeout=0.2)
        try:
            with pytest.raises(StoreUnavailable) as timed_out:
                await asyncio.wait_for(store.sql_fetch("SELECT pg_sleep(30)"), WAIT)
            assert await store.count_substrates("acme") == 0  # the pool still serves
            return timed_out.value
        finally:
            await store.close()
            await link.cut()

    assert "TimeoutError" in asyncio.run(main()).reason


def test_a_bug_is_not_mistaken_for_an_outage(schema: str) -> None:
    async def main() -> None:
        store = PostgresStore(POSTGRES_DSN, schema=schema)
        await store.open()
        try:
            with pytest.raises(asyncpg.PostgresSyntaxError):
                await store.sql_fetch("SELEC 1")
        finally:
            await store.close()

    asyncio.run(main())


def test_a_database_that_never_answers_stops_the_start_saying_it_did_not_answer(
    schema: str,
) -> None:
    async def main() -> str:
        link = CuttableLink("127.0.0.1", POSTGRES_PORT)
        port = await link.open()
        link.silence()  # connections are accepted; nothing ever comes back
        store = PostgresStore(
            f"postgresql://postgres@127.0.0.1:{port}/test", schema=schema, connect_timeout=0.3
        )
        try:
            with pytest.raises(PostgresStoreError) as refused:
                await asyncio.wait_for(store.open(), WAIT)
            return str(refused.value)
        finally:
            await link.cut()

    assert "TimeoutError: no answer within 0.3 s" in asyncio.run(main())
