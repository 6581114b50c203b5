"""How the tables are laid out: plain, or hash-partitioned by tenant, and how a schema says so.

``partitions = N`` (N >= 2) creates ``substrates``, ``invocation_totals`` and
``relationships`` as ``PARTITION BY HASH (tenant)`` with N partitions each (``substrates_p0``
...). Tenant, not (tenant, identity): every statement the store and ``graph.sql`` run names
one tenant, so every one of them, the recursive walks and the cascades of a delete
included, touches one partition; the primary and foreign keys stay as they are (a
partitioned table's unique keys must hold the partition key, and ``(tenant, ...)`` does);
and it is the one distribution column Citus needs to keep a tenant's three tables on one
shard (docs/scaling.md).

The layout a schema was made with is recorded in its ``schema_settings`` table and checked
at every start: a schema made one way and configured the other stops the start with a
message saying both, never a silent mix.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

PARTITIONED_TABLES = ("substrates", "invocation_totals", "relationships")
MAX_PARTITIONS = 256  # planning time grows with partitions; beyond this, shard instead


class LayoutMismatch(Exception):
    """The schema's tables are laid out otherwise than the config asks."""


@dataclass(frozen=True)
class Layout:
    """``partitions`` 0: plain tables; N >= 2: N hash partitions by tenant per table."""

    partitions: int = 0

    def __post_init__(self) -> None:
        if self.partitions == 1 or not 0 <= self.partitions <= MAX_PARTITIONS:
            raise ValueError(
                f"partitions must be 0 (plain tables) or 2 to {MAX_PARTITIONS}, "
                f"not {self.partitions}"
            )

    @property
    def partition_key(self) -> str:
        """The columns partitions are chosen by ("" for plain tables)."""
        return "tenant" if self.partitions else ""

    def describe(self) -> str:
        if not self.partitions:
            return "plain tables (partitions = 0)"
        count = self.partitions
        return f"{count} hash partitions by {self.partition_key} (partitions = {count})"

    def table(self, name: str, definition: str) -> tuple[str, ...]:
        """``CREATE TABLE name (definition)``, then its partitions when there are any."""
        create = f"CREATE TABLE {name} ({definition})"
        if not self.partitions:
            return (create,)
        return (
            f"{create} PARTITION BY HASH ({self.partition_key})",
            *(
                f"CREATE TABLE {name}_p{i} PARTITION OF {name} "
                f"FOR VALUES WITH (MODULUS {self.partitions}, REMAINDER {i})"
                for i in range(self.partitions)
            ),
        )


PLAIN = Layout()

SETTINGS_TABLE = ("CREATE TABLE schema_settings (name TEXT PRIMARY KEY, value TEXT NOT NULL)",)


async def recorded_layout(db: asyncpg.Connection) -> Layout | None:
    """The layout ``schema_settings`` records, or None when it records none yet."""
    rows = await db.fetch("SELECT name, value FROM schema_settings")
    settings = {name: value for name, value in rows}
    if "partitions" not in settings:
        return None
    key = settings.get("partition_key", "")
    layout = Layout(int(settings["partitions"]))
    if key != layout.partition_key:
        raise LayoutMismatch(
            f"schema_settings says partition_key = {key!r}, which this ButterflyFX does not know"
        )
    return layout


async def catalog_layout(db: asyncpg.Connection, schema: str) -> Layout:
    """The layout the tables have in PostgreSQL's catalog (for a schema made before
    ``schema_settings`` existed); refuses tables partitioned in any other way."""
    found: dict[str, tuple[str | None, int]] = {}
    for table in PARTITIONED_TABLES:
        row = await db.fetchrow(
            "SELECT pg_get_partkeydef(c.oid), "
            "(SELECT COUNT(*) FROM pg_inherits AS i WHERE i.inhparent = c.oid) "
            "FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace "
            "WHERE n.nspname = $1 AND c.relname = $2",
            schema,
            table,
        )
        found[table] = (row[0], int(row[1])) if row is not None else (None, 0)
    shapes = set(found.values())
    if shapes == {(None, 0)}:
        return PLAIN
    (key, count), *others = shapes
    if others or key != "HASH (tenant)" or count < 2:
        described = ", ".join(f"{t}: {k or 'not partitioned'}" for t, (k, _) in found.items())
        raise LayoutMismatch(
            f"the tables of schema {schema} are partitioned in a way ButterflyFX did not "
            f"make ({described})"
        )
    return Layout(count)


async def record_layout(db: asyncpg.Connection, layout: Layout) -> None:
    await db.executemany(
        "INSERT INTO schema_settings (name, value) VALUES ($1, $2) "
        "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        [("partitions", str(layout.partitions)), ("partition_key", layout.partition_key)],
    )


async def check_layout(db: asyncpg.Connection, schema: str, wanted: Layout) -> Layout:
    """The schema's layout (recorded now if it was not yet); raises :class:`LayoutMismatch`
    when it is not ``wanted``."""
    layout = await recorded_layout(db)
    if layout is None:
        layout = await catalog_layout(db, schema)
        await record_layout(db, layout)
    if layout != wanted:
        raise LayoutMismatch(
            f"the schema {schema} holds {layout.describe()}, but [storage.postgres] asks for "
            f"{wanted.describe()}: set partitions = {layout.partitions} to use this schema, "
            "or name a new schema and move the data with `butterflyfx copy` (docs/scaling.md)"
        )
    return layout
