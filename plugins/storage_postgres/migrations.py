"""The PostgreSQL schema as numbered steps, applied under an advisory lock at start.

The tables, columns and keys are ``storage.sqlite``'s (graph.sql reads both alike):
``identity_key`` holds ``identity - 2**63`` as BIGINT, metadata is JSON text and times
are ISO 8601 text in UTC. Timestamp columns are ``COLLATE "C"`` so text order is time
order whatever the database's collation. Steps are only ever appended.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

Migration = tuple[str, ...]

MIGRATIONS: tuple[Migration, ...] = (
    # 1: substrates per tenant, and the invocation totals the Frequency dimension reports.
    (
        """
        CREATE TABLE substrates (
            tenant          TEXT NOT NULL,
            identity_key    BIGINT NOT NULL,
            expression_type TEXT NOT NULL,
            expression_code TEXT NOT NULL,
            metadata        TEXT NOT NULL,
            created_at      TEXT COLLATE "C",
            updated_at      TEXT COLLATE "C",
            version         BIGINT NOT NULL,
            PRIMARY KEY (tenant, identity_key)
        )
        """,
        """
        CREATE TABLE invocation_totals (
            tenant          TEXT NOT NULL,
            identity_key    BIGINT NOT NULL,
            invocations     BIGINT NOT NULL,
            errors          BIGINT NOT NULL,
            total_ms        DOUBLE PRECISION NOT NULL,
            last_invoked_at TEXT COLLATE "C",
            PRIMARY KEY (tenant, identity_key),
            FOREIGN KEY (tenant, identity_key)
                REFERENCES substrates (tenant, identity_key) ON DELETE CASCADE
        )
        """,
    ),
    # 2: relationships; each end a foreign key, one index per side of a graph walk.
    (
        """
        CREATE TABLE relationships (
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
        )
        """,
        "CREATE INDEX relationships_by_source "
        "ON relationships (tenant, source_key, relationship_type)",
        "CREATE INDEX relationships_by_target "
        "ON relationships (tenant, target_key, relationship_type)",
    ),
)

# The first key of pg_advisory_xact_lock(int, int); the second is the schema's hash, so
# servers migrating different schemas of one database do not wait for each other.
LOCK_CLASS = 0x42FF


class SchemaTooNew(Exception):
    """The schema was migrated by a newer ButterflyFX than this one."""


def quoted(name: str) -> str:
    """A schema name as a PostgreSQL identifier (names are checked before they get here)."""
    return '"' + name.replace('"', '""') + '"'


async def schema_version(db: asyncpg.Connection) -> int:
    value = await db.fetchval("SELECT version FROM schema_version")
    return int(value or 0)


async def migrate(
    db: asyncpg.Connection, schema: str, migrations: Sequence[Migration] = MIGRATIONS
) -> int:
    """Create the schema if missing, apply the steps it lacks, return its version.

    Everything runs in one transaction holding a transaction-level advisory lock, so
    when several processes start at once one migrates and the others, once it commits,
    find the work done.
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
    return target
