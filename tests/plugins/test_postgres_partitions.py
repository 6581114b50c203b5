"""``[storage.postgres] partitions = N``: the tables hash-partitioned by tenant keep the whole
storage contract and graph.sql's, a lookup by tenant and identity (and a graph walk) reads
one partition, and a schema made one way and configured the other stops the start."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from postgres_service import POSTGRES_DSN, postgres_schema

from butterflyfx.core.config import ConfigError, read_config
from butterflyfx.core.context import ServerContext
from butterflyfx.core.plugins import PluginError
from butterflyfx.core.relational import identity_key
from butterflyfx.plugins import storage_postgres
from butterflyfx.plugins.graph_sql import statements
from butterflyfx.plugins.storage_postgres import PostgresStore, PostgresStoreError
from butterflyfx.plugins.storage_postgres.layout import Layout
from butterflyfx.plugins.storage_postgres.migrations import MIGRATIONS
from butterflyfx.testing.graph import GraphConformance, graph_server
from butterflyfx.testing.storage import (
    StoreConformance,
    StoreFactory,
    make_relationship,
    make_substrate,
)

PARTITIONS = 4  # "acme" and "globex", the suite's two tenants, hash to different ones
TABLES = ("substrates", "invocation_totals", "relationships")


@pytest.fixture
def schema() -> Iterator[str]:
    with postgres_schema() as name:
        yield name


def partitioned(schema: str, partitions: int = PARTITIONS, **options: Any) -> PostgresStore:
    return PostgresStore(POSTGRES_DSN, schema=schema, layout=Layout(partitions), **options)


async def fetch(schema: str, sql: str, *parameters: Any) -> list[asyncpg.Record]:
    db = await asyncpg.connect(POSTGRES_DSN, server_settings={"search_path": schema})
    try:
        return list(await db.fetch(sql, *parameters))
    finally:
        await db.close()


def run_on(store: PostgresStore, story: Any) -> Any:
    async def main() -> Any:
        await store.open()
        try:
            return await story(store)
        finally:
            await store.close()

    return asyncio.run(main())


class TestPartitionedPostgresStore(StoreConformance):
    @pytest.fixture
    def substrate_store_factory(self, schema: str) -> StoreFactory:
        return StoreFactory(lambda: partitioned(schema, max_pool=4), persistent=True)


class TestSqlGraphOnPartitionedPostgres(GraphConformance):
    @pytest.fixture
    def graph_server_factory(self, tmp_path: Path, schema: str):
        section = (
            f'\n[storage.postgres]\ndsn = "{POSTGRES_DSN}"\nschema = "{schema}"\n'
            f"partitions = {PARTITIONS}\n"
        )
        return graph_server(
            tmp_path,
            ["storage.postgres", "graph.sql"],
            {"storage.postgres": storage_postgres},
            server=section,
        )


def test_each_table_has_its_partitions_and_a_tenants_rows_sit_in_one(schema: str) -> None:
    a, b = make_substrate(1), make_substrate(2)

    async def story(store: PostgresStore) -> None:
        for tenant in ("acme", "globex"):
            await store.put_substrates(tenant, [a, b])
            await store.put_relationship(tenant, make_relationship(a, b))

    run_on(partitioned(schema), story)
    for table in TABLES:
        parts = asyncio.run(
            fetch(
                schema,
                "SELECT c.relname FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = $1::regclass ORDER BY c.relname",
                table,
            )
        )
        assert [row[0] for row in parts] == [f"{table}_p{i}" for i in range(PARTITIONS)]
    where = asyncio.run(
        fetch(schema, "SELECT tenant, tableoid::regclass::text FROM substrates GROUP BY 1, 2")
    )
    homes = {tenant: home for tenant, home in where}
    assert sorted(homes) == ["acme", "globex"]  # one partition per tenant, not one per row
    assert homes["acme"] != homes["globex"]
    settings = asyncio.run(fetch(schema, "SELECT name, value FROM schema_settings ORDER BY name"))
    assert [tuple(row) for row in settings] == [
        ("partition_key", "tenant"),
        ("partitions", str(PARTITIONS)),
    ]


def scanned_partitions(plan: list[str], table: str) -> set[str]:
    """The partitions of ``table`` an EXPLAIN plan reads."""
    names = {f"{table}_p{i}" for i in range(PARTITIONS)}
    return {word for line in plan for word in line.replace("(", " ").split() if word in names}


def test_a_lookup_by_tenant_and_identity_reads_one_partition(schema: str) -> None:
    substrate = make_substrate(7)
    run_on(partitioned(schema), lambda store: store.put_substrate("acme", substrate))
    key = identity_key(substrate.identity)

    async def plans() -> tuple[list[str], list[str]]:
        db = await asyncpg.connect(POSTGRES_DSN, server_settings={"search_path": schema})
        try:
            literal = await db.fetch(
                "EXPLAIN (COSTS OFF) SELECT * FROM substrates "
                f"WHERE tenant = 'acme' AND identity_key = {key}"
            )
            # The store's statements are prepared: with a generic plan the partition is
            # chosen when the statement runs ("Subplans Removed").
            await db.execute("SET plan_cache_mode = force_generic_plan")
            await db.execute(
                "PREPARE lookup (text, bigint) AS "
                "SELECT * FROM substrates WHERE tenant = $1 AND identity_key = $2"
            )
            generic = await db.fetch(f"EXPLAIN (ANALYZE, COSTS OFF) EXECUTE lookup('acme', {key})")
            return [row[0] for row in literal], [row[0] for row in generic]
        finally:
            await db.close()

    literal, generic = asyncio.run(plans())
    assert len(scanned_partitions(literal, "substrates")) == 1, literal
    assert any("Index Scan" in line for line in literal), literal
    assert any(f"Subplans Removed: {PARTITIONS - 1}" in line for line in generic), generic
    assert len(scanned_partitions(generic, "substrates")) == 1, generic


def test_a_graph_walk_reads_one_partition_of_relationships(schema: str) -> None:
    a, b, c = make_substrate(1), make_substrate(2), make_substrate(3)

    async def story(store: PostgresStore) -> None:
        await store.put_substrates("acme", [a, b, c])
        await store.put_relationships("acme", [make_relationship(a, b), make_relationship(b, c)])

    run_on(partitioned(schema), story)
    walk = statements.reach("out", None, "postgresql")
    values = [identity_key(a.identity), "'acme'", "'acme'", 3, 100]
    pieces = walk.split("?")
    sql = pieces[0] + "".join(str(v) + piece for v, piece in zip(values, pieces[1:], strict=True))
    plan = [row[0] for row in asyncio.run(fetch(schema, f"EXPLAIN (COSTS OFF) {sql}"))]
    assert len(scanned_partitions(plan, "relationships")) == 1, plan
    rows = asyncio.run(fetch(schema, sql))
    assert sorted(row[1] for row in rows) == [0, 1, 2]  # a, then b, then c


def _server(folder: Path, schema: str, partitions: int | None) -> ServerContext:
    extra = "" if partitions is None else f"partitions = {partitions}\n"
    path = folder / "butterflyfx.toml"
    path.write_text(
        'plugins = ["storage.postgres", "graph.sql"]\n'
        f'[server]\ndata_dir = "{folder}"\n'
        f'[storage.postgres]\ndsn = "{POSTGRES_DSN}"\nschema = "{schema}"\n{extra}',
        encoding="utf-8",
    )
    return ServerContext.build(read_config(path), {"storage.postgres": storage_postgres})


def start_and_stop(ctx: ServerContext) -> None:
    async def main() -> None:
        await ctx.start()
        await ctx.stop()

    asyncio.run(main())


@pytest.mark.parametrize(
    ("made", "configured", "holds", "asks"),
    [
        (0, 8, "plain tables (partitions = 0)", "8 hash partitions by tenant (partitions = 8)"),
        (8, None, "8 hash partitions by tenant (partitions = 8)", "plain tables (partitions = 0)"),
        (8, 4, "8 hash partitions by tenant (partitions = 8)", "4 hash partitions"),
    ],
)
def test_a_schema_made_one_way_and_configured_another_stops_the_start(
    tmp_path: Path, schema: str, made: int, configured: int | None, holds: str, asks: str
) -> None:
    start_and_stop(_server(tmp_path, schema, made))
    before = asyncio.run(fetch(schema, "SELECT name, value FROM schema_settings ORDER BY name"))
    with pytest.raises(PluginError) as raised:
        start_and_stop(_server(tmp_path, schema, configured))
    message = str(raised.value)
    assert "storage.postgres" in message and f"schema {schema}" in message
    assert f"holds {holds}, but [storage.postgres] asks for {asks}" in message
    assert f"set partitions = {made} to use this schema" in message
    assert "butterflyfx copy" in message
    after = asyncio.run(fetch(schema, "SELECT name, value FROM schema_settings ORDER BY name"))
    assert after == before  # refused without a change
    start_and_stop(_server(tmp_path, schema, made))  # configured as made, it starts


def test_a_schema_from_before_the_settings_table_is_read_from_the_catalog(schema: str) -> None:
    """Version 2 schemas (plain tables, no schema_settings) record their layout on the
    first start that knows about layouts, and refuse a partitioned configuration."""
    substrate = make_substrate(5)
    old = PostgresStore(POSTGRES_DSN, schema=schema, migrations=MIGRATIONS[:2])
    run_on(old, lambda store: store.put_substrate("acme", substrate))
    with pytest.raises(PostgresStoreError, match="holds plain tables"):
        run_on(partitioned(schema), lambda store: store.count_substrates("acme"))
    plain = PostgresStore(POSTGRES_DSN, schema=schema)
    assert run_on(plain, lambda store: store.get_substrate("acme", substrate.identity)) == substrate
    assert plain.schema_version == len(MIGRATIONS)
    settings = asyncio.run(fetch(schema, "SELECT name, value FROM schema_settings ORDER BY name"))
    assert [tuple(row) for row in settings] == [("partition_key", ""), ("partitions", "0")]


def test_tables_partitioned_by_someone_else_are_refused_not_guessed(schema: str) -> None:
    async def made_by_hand() -> None:
        db = await asyncpg.connect(POSTGRES_DSN)
        try:
            await db.execute(f"CREATE SCHEMA {schema}")
            await db.execute(f"SET search_path TO {schema}")
            for statement in (*MIGRATIONS[0], *MIGRATIONS[1]):
                if statement.startswith("CREATE TABLE substrates"):
                    statement += " PARTITION BY HASH (identity_key)"
                await db.execute(statement)
            await db.execute(
                "CREATE TABLE substrates_all PARTITION OF substrates "
                "FOR VALUES WITH (MODULUS 1, REMAINDER 0)"
            )
            await db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
            await db.execute("INSERT INTO schema_version VALUES (2)")
        finally:
            await db.close()

    asyncio.run(made_by_hand())
    with pytest.raises(PostgresStoreError) as raised:
        run_on(PostgresStore(POSTGRES_DSN, schema=schema), lambda store: store.health())
    assert "partitioned in a way ButterflyFX did not make" in str(raised.value)
    assert "substrates: HASH (identity_key)" in str(raised.value)


@pytest.mark.parametrize("partitions", [1, -1, 257])
def test_a_partition_count_that_cannot_be_is_refused_naming_the_key(
    tmp_path: Path, partitions: int
) -> None:
    with pytest.raises(ConfigError) as raised:
        _server(tmp_path, "butterflyfx", partitions)
    assert "partitions" in str(raised.value)
    assert "storage.postgres" in str(raised.value)
