"""The PostgreSQL schema as numbered steps, applied under an advisory lock at start.

The tables, columns and keys are ``storage.sqlite``'s (graph.sql reads both alike):
``identity_key`` holds ``identity - 2**63`` as BIGINT, metadata is JSON text and times
are ISO 8601 text in UTC. Timestamp columns are ``COLLATE "C"`` so text order is time
order whatever the database's collation. Steps are only ever appended. The tables are plain
or hash-partitioned by tenant as ``[storage.postgres] partitions`` says (:mod:`.layout`).
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from butterflyfx.core.sql import quoted

from .layout import PLAIN, SETTINGS_TABLE, Layout, check_layout

Migration = tuple[str, ...]

SUBSTRATES = """
    tenant          TEXT NOT NULL,
    identity_key    BIGINT NOT NULL,
    expression_type TEXT NOT NULL,
    expression_code TEXT NOT NULL,
    metadata        TEXT NOT NULL,
    created_at      TEXT COLLATE "C",
    updated_at      TEXT COLLATE "C",
    version         BIGINT NOT NULL,
    PRIMARY KEY (tenant, identity_key)
"""
INVOCATION_TOTALS = """
    tenant          TEXT NOT NULL,
    identity_key    BIGINT NOT NULL,
    invocations     BIGINT NOT NULL,
    errors          BIGINT NOT NULL,
    total_ms        DOUBLE PRECISION NOT NULL,
    last_invoked_at TEXT COLLATE "C",
    PRIMARY KEY (tenant, identity_key),
    FOREIGN KEY (tenant, identity_key)
        REFERENCES substrates (tenant, identity_key) ON DELETE CASCADE
"""
RELATIONSHIPS = """
    tenant            TEXT NOT NULL,
    identity_key      BIGINT NOT NULL,
    source_key        BIGINT NOT NULL,
    target_key        BIGINT NOT NULL,
    relationship_type TEXT NOT NULL,
    bidirectional     SMALLINT NOT NULL,
    weight            DOUBLE PRECISION,
    metadata          TEXT NOT NULL,
    created_at        TEXT COLLATE "C",
    PRIMARY KEY (tenant, identity_key),
    FOREIGN KEY (tenant, source_key)
        REFERENCES substrates (tenant, identity_key) ON DELETE CASCADE,
    FOREIGN KEY (tenant, target_key)
        REFERENCES substrates (tenant, identity_key) ON DELETE CASCADE
"""


def migrations_for(layout: Layout = PLAIN) -> tuple[Migration, ...]:
    """The steps for tables laid out as ``layout`` (the same steps, partitioned or not)."""
    return (
        # 1: substrates per tenant, and the invocation totals the Frequency dimension reports.
        (
            *layout.table("substrates", SUBSTRATES),
            *layout.table("invocation_totals", INVOCATION_TOTALS),
        ),
        # 2: relationships; each end a foreign key, one index per side of a graph walk.
        (
            *layout.table("relationships", RELATIONSHIPS),
            "CREATE INDEX relationships_by_source "
            "ON relationships (tenant, source_key, relationship_type)",
            "CREATE INDEX relationships_by_target "
            "ON relationships (tenant, target_key, relationship_type)",
        ),
        # 3: the settings the schema was made with (its layout), checked at every start.
        SETTINGS_TABLE,
    )


MIGRATIONS: tuple[Migration, ...] = migrations_for(PLAIN)
LAYOUT_RECORDED_FROM = 3  # the version that made schema_settings

# The first key of pg_advisory_xact_lock(int, int); the second is the schema's hash, so
# servers migrating different schemas of one database do not wait for each other.
LOCK_CLASS = 0x42FF


class SchemaTooNew(Exception):
    """The schema was migrated by a newer ButterflyFX than this one."""


async def schema_version(db: asyncpg.Connection) -> int:
    value = await db.fetchval("SELECT version FROM schema_version")
    return int(value or 0)


async def migrate(
    db: asyncpg.Connection,
    schema: str,
    migrations: Sequence[Migration] = MIGRATIONS,
    layout: Layout = PLAIN,
) -> int:
    """Create the schema if missing, apply the steps it lacks, check that its tables are
    laid out as ``layout`` says (:class:`~.layout.LayoutMismatch` if not), return its
    version. ``migrations`` should be ``migrations_for(layout)``: a new schema is made
    with them.

    Everything runs in one transaction holding a transaction-level advisory lock, so
    when several processes start at once one migrates and the others, once it commits,
    find the work done; a refusal leaves the schema as it was.
    """
    target = len(migrations)
    async with db.transaction():
        await db.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", LOCK_CLASS, schema)
        await db.execute(f"CREATE SCHEMA IF NOT EXISTS {quoted(schema)}")
        await db.execute(f"SET LOCAL search_path TO {quoted(schema)}")
        await db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        current = await schema_version(db)
        if current > target:
            raise SchemaTooNew(
                f"the schema {schema} is version {current} but this ButterflyFX knows only "
                f"{target}; upgrade ButterflyFX"
            )
        for statements in migrations[current:]:
            for statement in statements:
                await db.execute(statement)
        if current < target:
            await db.execute("DELETE FROM schema_version")
            await db.execute("INSERT INTO schema_version (version) VALUES ($1)", target)
        if target >= LAYOUT_RECORDED_FROM:
            await check_layout(db, schema, layout)
    return target
