"""storage.postgres keeps the storage contract (the suite SQLite passes), graph.sql runs
its recursive queries on it, and a database that does not answer stops the start with a
message naming the server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from postgres_service import POSTGRES_DSN, postgres_schema

from butterflyfx.core.config import read_config
from butterflyfx.core.context import ServerContext
from butterflyfx.core.plugins import PluginError
from butterflyfx.plugins import storage_postgres
from butterflyfx.plugins.storage_postgres import PostgresStore, PostgresStoreError
from butterflyfx.testing.graph import GraphConformance, graph_server
from butterflyfx.testing.storage import StoreConformance, StoreFactory, make_substrate


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
