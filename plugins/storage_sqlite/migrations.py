"""The SQLite schema as numbered steps; ``PRAGMA user_version`` says how many are applied.

Each step is a tuple of statements run in one transaction. Steps are only ever appended:
a released step never changes, because files already carry it. The SQL sticks to what
PostgreSQL also accepts (BIGINT, TEXT, DOUBLE PRECISION, ON CONFLICT), so a PostgreSQL
store can run the same steps.

Identities are unsigned 64-bit, SQLite's INTEGER is signed: ``identity_key`` holds
``identity - 2**63``, which fits BIGINT and sorts exactly like the identity.
"""

from __future__ import annotations

from collections.abc import Sequence

import aiosqlite

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
            created_at      TEXT,
            updated_at      TEXT,
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
            last_invoked_at TEXT,
            PRIMARY KEY (tenant, identity_key),
            FOREIGN KEY (tenant, identity_key)
                REFERENCES substrates (tenant, identity_key) ON DELETE CASCADE
        )
        """,
    ),
    # 2: relationships between a tenant's substrates. Each end is a foreign key, so no
    # row can outlive its source or its target; the two indexes serve the outgoing and the
    # incoming side of a graph walk (and the cascades when a substrate is deleted).
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
            created_at        TEXT,
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


class SchemaTooNew(Exception):
    """The file was migrated by a newer ButterflyFX than this one."""


async def schema_version(db: aiosqlite.Connection) -> int:
    rows = list(await db.execute_fetchall("PRAGMA user_version"))
    return int(rows[0][0])


async def migrate(db: aiosqlite.Connection, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """Apply the steps the file lacks and return the schema version.

    ``db`` must be in autocommit mode (``isolation_level=None``). The version is read again
    under ``BEGIN IMMEDIATE`` (the write lock), so when several processes open a new file
    at once, one applies each step and the others find it done.
    """
    target = len(migrations)
    if await schema_version(db) == target:
        return target  # the common case needs no write lock
    await db.execute("BEGIN IMMEDIATE")
    try:
        current = await schema_version(db)
        if current > target:
            raise SchemaTooNew(
                f"the schema is version {current} but this ButterflyFX knows only {target}; "
                "upgrade ButterflyFX"
            )
        for statements in migrations[current:]:
            for statement in statements:
                # execute, never executescript: executescript commits the open transaction.
                await db.execute(statement)
        if current < target:  # another process may have finished while we waited
            await db.execute(f"PRAGMA user_version = {int(target)}")  # PRAGMA takes no ?
        await db.commit()
    except BaseException:
        await db.rollback()  # a no-op when the error already ended the transaction
        raise
    return target
