"""The PostgreSQL store: a pool of asyncpg connections on one schema of one database.

Every write that touches more than one row runs in a transaction; batches travel as
arrays (``unnest``) so a batch is one statement. Foreign keys keep relationships from
outliving their ends: a write that loses a race with a delete gets a foreign-key error,
and is retried once so it answers as if it had come after the delete.

No call waits without bound: a connection is acquired within ``acquire_timeout`` (a
new one connected included), a statement runs within ``command_timeout``, and handing a
connection back takes at most ``acquire_timeout``: a database that accepts connections
but never answers costs a request ``command_timeout + acquire_timeout`` at most (35 s by
default), one that refuses them a few milliseconds. A database that is away (refused,
lost mid-query, timed out) raises :class:`~butterflyfx.core.store.StoreUnavailable` from
every method, and the pool reconnects by itself once the database answers again.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, TypeVar

import asyncpg

from butterflyfx.core.matching import matches
from butterflyfx.core.sql import PLAIN_NAME, masked_dsn, quoted, server_place
from butterflyfx.core.store import (
    Direction,
    MissingEnd,
    StoreUnavailable,
    SubstrateQuery,
    unavailable_on,
)
from butterflyfx.kernel import (
    InvocationStats,
    JSONValue,
    Relationship,
    Substrate,
    format_timestamp,
    parse_timestamp,
)

from .layout import PLAIN, Layout, LayoutMismatch
from .migrations import Migration, SchemaTooNew, migrate, migrations_for, schema_version
from .rows import (
    ADD_INVOCATIONS,
    COLUMNS,
    INSERT_MANY,
    INSERT_RELATIONSHIPS,
    KEY_OFFSET,
    MAX_IDENTITY,
    RELATIONSHIP_COLUMNS,
    RELATIONSHIP_PARAMETERS,
    SELECT,
    SELECT_RELATIONSHIP,
    TENANTS,
    columns,
    identity_key,
    metadata_text,
    relationship_from_row,
    relationship_values,
    substrate_from_row,
    substrate_values,
    written_relationship,
)
from .search import conditions, storable

T = TypeVar("T")
DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"
SEARCH_BATCH = 256  # rows read at a time when Python must confirm what SQL narrowed
HEALTH_TIMEOUT = 5.0  # seconds readiness waits for the database before it reports it down
PLUGIN = "storage.postgres"
# What a database that is away looks like: refused or reset sockets, timeouts, the server
# closing the connection (08xxx), shutting down or starting (57P01-57P03), out of
# connections or disk (53xxx). Anything else (a bug, bad data) stays what it is.
OUTAGES: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InsufficientResourcesError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.CannotConnectNowError,
)
CLOSED = ("connection is closed", "underlying connection is closed", "pool is clos")
_PLACEHOLDER = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\?")


class PostgresStoreError(Exception):
    """The database cannot be used; the message names the server and says why."""


def numbered(sql: str) -> str:
    """``?`` placeholders as PostgreSQL's ``$1, $2, ...`` (quoted text left alone)."""
    count = 0

    def number(match: re.Match[str]) -> str:
        nonlocal count
        if match.group() != "?":
            return match.group()
        count += 1
        return f"${count}"

    return _PLACEHOLDER.sub(number, sql)


def outage(store: PostgresStore, error: Exception) -> StoreUnavailable | None:
    """StoreUnavailable when ``error`` (or what it was raised while handling: a rollback
    on a connection lost mid-query fails too) says the database is away, else None."""
    seen: BaseException | None = error
    for _ in range(8):
        if seen is None:
            return None
        if isinstance(seen, OUTAGES) or (
            isinstance(seen, asyncpg.InterfaceError) and any(s in str(seen) for s in CLOSED)
        ):
            said = masked_dsn(str(seen)) or "no answer in time"
            return StoreUnavailable(PLUGIN, f"{store.where}: {type(seen).__name__}: {said}")
        seen = seen.__cause__ or seen.__context__
    return None


class _OneLineReconnects(logging.Filter):
    """asyncpg's pool logs each failed attempt to reconnect its ``min_pool`` connections
    with a traceback: while the database is away that is a wall of them. One line each."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            record.msg = f"{record.getMessage()}: {type(error).__name__}: {error}"
            record.args, record.exc_info, record.exc_text = None, None, None
        return True


_RECONNECT_LOG = logging.getLogger("asyncpg.pool")
_ONE_LINE = _OneLineReconnects()


@unavailable_on(outage)
class PostgresStore:
    """A :class:`~butterflyfx.core.store.SubstrateStore` in a PostgreSQL schema."""

    name = "postgres"
    sql_dialect = "postgresql"
    shared_between_instances = True

    def __init__(
        self,
        dsn: str = DEFAULT_DSN,
        *,
        schema: str = "butterflyfx",
        min_pool: int = 1,
        max_pool: int = 10,
        command_timeout: float | None = 30.0,
        connect_timeout: float = 10.0,
        acquire_timeout: float = 5.0,
        layout: Layout = PLAIN,
        migrations: Sequence[Migration] | None = None,
    ) -> None:
        if not PLAIN_NAME.fullmatch(schema):
            raise ValueError(f"schema must be a plain PostgreSQL name, not {schema!r}")
        if not 0 <= min_pool <= max_pool or max_pool < 1:
            raise ValueError("the pool needs 0 <= min_pool <= max_pool and max_pool >= 1")
        self.dsn, self.schema = dsn, schema
        self.min_pool, self.max_pool = min_pool, max_pool
        self.command_timeout, self.connect_timeout = command_timeout, connect_timeout
        self.acquire_timeout = acquire_timeout
        self.layout = layout  # plain or partitioned tables; the schema must agree
        self.migrations = tuple(migrations_for(layout) if migrations is None else migrations)
        self.schema_version: int | None = None
        self._pool: asyncpg.Pool | None = None

    def __repr__(self) -> str:
        return f"PostgresStore({self.where!r}, schema={self.schema!r})"

    @property
    def where(self) -> str:
        """host:port/database of the DSN, password masked (for messages)."""
        return server_place(self.dsn)

    # -- opening and closing ------------------------------------------------------
    async def open(self) -> None:
        """Connect the pool and apply migrations (under an advisory lock)."""
        if self._pool is not None:
            return
        if _ONE_LINE not in _RECONNECT_LOG.filters:
            _RECONNECT_LOG.addFilter(_ONE_LINE)
        try:
            pool = await asyncpg.create_pool(
                self.dsn,
                min_size=self.min_pool,
                max_size=self.max_pool,
                command_timeout=self.command_timeout,
                timeout=self.connect_timeout,
                server_settings={"search_path": self.schema},
            )
        except (
            OSError,
            TimeoutError,
            asyncpg.PostgresError,
            asyncpg.InterfaceError,
            ValueError,
        ) as error:
            raise self._cannot_open(error) from error
        try:
            async with pool.acquire() as db:
                self.schema_version = await migrate(db, self.schema, self.migrations, self.layout)
        except (
            OSError,
            TimeoutError,
            asyncpg.PostgresError,
            asyncpg.InterfaceError,
            SchemaTooNew,
            LayoutMismatch,
        ) as error:
            await pool.close()
            raise self._cannot_open(error) from error
        self._pool = pool

    def _cannot_open(self, error: BaseException) -> PostgresStoreError:
        reason = masked_dsn(str(error)) or type(error).__name__
        if isinstance(error, TimeoutError) and reason in ("TimeoutError", ""):  # says nothing
            reason = f"no answer within {self.connect_timeout:g} s"
        return PostgresStoreError(
            f"cannot open the PostgreSQL store at {self.where} ({masked_dsn(self.dsn)}), "
            f"schema {self.schema}: {type(error).__name__}: {reason}"
        )

    async def close(self) -> None:
        """Wait for the connections in use to be released, then close them."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    # -- connections ------------------------------------------------------------------
    def _open_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError(f"the PostgreSQL store at {self.where} is not open")
        return self._pool

    def _connection(self) -> Any:
        """A pooled connection, within ``acquire_timeout`` (else TimeoutError): a request
        never queues for the pool without bound."""
        return self._open_pool().acquire(timeout=self.acquire_timeout)

    async def _read(self, sql: str, *parameters: Any) -> list[Any]:
        async with self._connection() as db:
            return list(await db.fetch(sql, *parameters))

    async def _execute(self, sql: str, *parameters: Any) -> str:
        async with self._connection() as db:
            return str(await db.execute(sql, *parameters))

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[asyncpg.Connection]:
        async with self._connection() as db, db.transaction():
            yield db

    async def _retrying(self, write: Callable[[], Awaitable[T]]) -> T:
        """Run ``write``; once more when a concurrent delete broke a foreign key."""
        try:
            return await write()
        except asyncpg.ForeignKeyViolationError:
            return await write()

    # -- substrates ---------------------------------------------------------------------
    async def put_substrate(self, tenant: str, substrate: Substrate) -> tuple[Substrate, bool]:
        return (await self.put_substrates(tenant, [substrate]))[0]

    async def put_substrates(
        self, tenant: str, substrates: Sequence[Substrate]
    ) -> list[tuple[Substrate, bool]]:
        """One statement inserts the new ones; those it skipped are read back."""
        rows = [substrate_values(substrate) for substrate in substrates]
        if not rows:
            return []
        first = list({row[2]: row for row in reversed(rows)}.values())  # first of each key
        async with self._transaction() as db:
            inserted = {
                record[0] for record in await db.fetch(INSERT_MANY, tenant, *columns(first, 7))
            }
            skipped = [row[2] for row in first if row[2] not in inserted]
            stored = {
                s.identity: s
                for s in map(
                    substrate_from_row,
                    await db.fetch(
                        f"{SELECT} WHERE tenant = $1 AND identity_key = ANY($2::bigint[])",
                        tenant,
                        skipped,
                    )
                    if skipped
                    else [],
                )
            }
        answers: list[tuple[Substrate, bool]] = []
        answered: set[int] = set()
        for row in rows:
            identity = row[2] + KEY_OFFSET
            if row[2] in inserted and identity not in answered:
                # What a later read returns: the row as written (timestamps to the second).
                stored[identity] = substrate_from_row(row)
                answers.append((stored[identity], True))
            else:
                answers.append((stored[identity], False))
            answered.add(identity)
        return answers

    async def get_substrates(self, tenant: str, identities: Sequence[int]) -> dict[int, Substrate]:
        keys = list(dict.fromkeys(k for i in identities if (k := identity_key(i)) is not None))
        if not keys:
            return {}
        rows = await self._read(
            f"{SELECT} WHERE tenant = $1 AND identity_key = ANY($2::bigint[])", tenant, keys
        )
        return {s.identity: s for s in map(substrate_from_row, rows)}

    async def get_substrate(self, tenant: str, identity: int) -> Substrate | None:
        key = identity_key(identity)
        if key is None:
            return None
        rows = await self._read(f"{SELECT} WHERE tenant = $1 AND identity_key = $2", tenant, key)
        return substrate_from_row(rows[0]) if rows else None

    async def list_substrates(
        self, tenant: str, *, limit: int, after: int | None = None
    ) -> list[Substrate]:
        if limit <= 0 or (after is not None and after >= MAX_IDENTITY):
            return []
        if after is None or after < 0:
            rows = await self._read(
                f"{SELECT} WHERE tenant = $1 ORDER BY identity_key LIMIT $2", tenant, limit
            )
        else:
            rows = await self._read(
                f"{SELECT} WHERE tenant = $1 AND identity_key > $2 ORDER BY identity_key LIMIT $3",
                tenant,
                after - KEY_OFFSET,
                limit,
            )
        return [substrate_from_row(row) for row in rows]

    async def update_metadata(
        self, tenant: str, identity: int, metadata: Mapping[str, JSONValue], *, now: datetime
    ) -> Substrate | None:
        key = identity_key(identity)
        if key is None:
            return None
        rows = await self._read(
            "UPDATE substrates SET metadata = $1, updated_at = $2, version = version + 1 "
            f"WHERE tenant = $3 AND identity_key = $4 RETURNING {COLUMNS}",
            metadata_text(metadata),
            format_timestamp(now),
            tenant,
            key,
        )
        return substrate_from_row(rows[0]) if rows else None

    async def delete_substrate(self, tenant: str, identity: int) -> bool:
        key = identity_key(identity)
        if key is None:
            return False
        async with self._transaction() as db:
            # Explicit, though the foreign keys cascade; one statement per end so each
            # uses its index.
            for statement in (
                "DELETE FROM relationships WHERE tenant = $1 AND source_key = $2",
                "DELETE FROM relationships WHERE tenant = $1 AND target_key = $2",
                "DELETE FROM invocation_totals WHERE tenant = $1 AND identity_key = $2",
            ):
                await db.execute(statement, tenant, key)
            status = await db.execute(
                "DELETE FROM substrates WHERE tenant = $1 AND identity_key = $2", tenant, key
            )
            return _affected(status) > 0

    async def count_substrates(self, tenant: str) -> int:
        rows = await self._read("SELECT COUNT(*) FROM substrates WHERE tenant = $1", tenant)
        return int(rows[0][0])

    async def tenants(self) -> list[str]:
        """Every tenant with a substrate, sorted (the optional ``TenantListing``)."""
        return sorted(row[0] for row in await self._read(TENANTS))

    # -- invocation totals --------------------------------------------------------------
    async def add_invocations(self, tenant: str, counts: Mapping[int, InvocationStats]) -> None:
        rows = [
            (key, stats.count, stats.errors, float(stats.total_ms),
             format_timestamp(stats.last_invoked_at))
            for identity, stats in counts.items()
            if (key := identity_key(identity)) is not None
        ]  # fmt: skip
        if not rows:
            return
        rows.sort()  # one lock order for every writer: no deadlock between two batches

        async def write() -> None:
            await self._execute(ADD_INVOCATIONS, tenant, *columns(rows, 5))

        await self._retrying(write)

    async def invocation_stats(self, tenant: str, identity: int) -> InvocationStats | None:
        key = identity_key(identity)
        if key is None:
            return None
        rows = await self._read(
            "SELECT invocations, errors, total_ms, last_invoked_at FROM invocation_totals "
            "WHERE tenant = $1 AND identity_key = $2",
            tenant,
            key,
        )
        if not rows:
            return None
        invocations, errors, total_ms, last = rows[0]
        return InvocationStats(invocations, errors, float(total_ms), parse_timestamp(last))

    async def invocation_totals(self, tenant: str) -> InvocationStats:
        rows = await self._read(
            "SELECT COALESCE(SUM(invocations), 0), COALESCE(SUM(errors), 0), "
            "COALESCE(SUM(total_ms), 0.0), MAX(last_invoked_at) "
            "FROM invocation_totals WHERE tenant = $1",
            tenant,
        )
        invocations, errors, total_ms, last = rows[0]
        return InvocationStats(
            int(invocations), int(errors), float(total_ms), parse_timestamp(last)
        )

    # -- search -------------------------------------------------------------------------
    async def search_substrates(
        self, tenant: str, query: SubstrateQuery, *, limit: int, after: int | None = None
    ) -> list[Substrate]:
        where = conditions(query)
        if where is None or limit <= 0 or (after is not None and after >= MAX_IDENTITY):
            return []
        lower = None if after is None or after < 0 else after - KEY_OFFSET
        batch = max(limit, SEARCH_BATCH) if where.narrow else limit
        found: list[Substrate] = []
        while True:
            clauses = ["tenant = ?::text", *where.sql]
            parameters: list[Any] = [tenant, *where.parameters]
            if lower is not None:
                clauses.append("identity_key > ?::bigint")
                parameters.append(lower)
            rows = await self._read(
                numbered(f"{SELECT} WHERE {' AND '.join(clauses)} ORDER BY identity_key LIMIT ?"),
                *parameters,
                batch,
            )
            substrates = [substrate_from_row(row) for row in rows]
            for substrate in substrates:
                if matches(query, substrate, _decided_in_sql):
                    found.append(substrate)
                    if len(found) == limit:
                        return found
            if len(rows) < batch:
                return found
            lower = substrates[-1].identity - KEY_OFFSET

    # -- relationships --------------------------------------------------------------------
    async def put_relationship(
        self, tenant: str, relationship: Relationship
    ) -> tuple[Relationship, bool]:
        return (await self.put_relationships(tenant, [relationship]))[0]

    async def put_relationships(
        self, tenant: str, relationships: Sequence[Relationship]
    ) -> list[tuple[Relationship, bool]]:
        """One transaction: read which exist and which ends are there, raise for a missing
        end before writing anything, then insert the new ones in one statement."""
        values: list[dict[str, Any]] = []
        for relationship in relationships:
            source = identity_key(relationship.source)
            if source is None:
                raise MissingEnd("source", relationship.source)
            target = identity_key(relationship.target)
            if target is None:
                raise MissingEnd("target", relationship.target)
            values.append(relationship_values(relationship, source, target))
        if not values:
            return []

        async def write() -> list[tuple[Relationship, bool]]:
            async with self._transaction() as db:
                return await self._put_relationships(db, tenant, relationships, values)

        return await self._retrying(write)

    async def _put_relationships(
        self,
        db: asyncpg.Connection,
        tenant: str,
        relationships: Sequence[Relationship],
        values: list[dict[str, Any]],
    ) -> list[tuple[Relationship, bool]]:
        keys = list(dict.fromkeys(v["key"] for v in values))
        stored = {
            r.identity: r
            for r in map(
                relationship_from_row,
                await db.fetch(
                    f"{SELECT_RELATIONSHIP} WHERE tenant = $1 AND identity_key = ANY($2::bigint[])",
                    tenant,
                    keys,
                ),
            )
        }
        ends = list(dict.fromkeys(key for v in values for key in (v["source"], v["target"])))
        # FOR KEY SHARE: the ends cannot be deleted until this transaction ends.
        present = {
            record[0]
            for record in await db.fetch(
                "SELECT identity_key FROM substrates "
                "WHERE tenant = $1 AND identity_key = ANY($2::bigint[]) FOR KEY SHARE",
                tenant,
                ends,
            )
        }
        answers: list[tuple[Relationship, bool]] = []
        fresh: dict[int, dict[str, Any]] = {}
        for row, relationship in zip(values, relationships, strict=True):
            if relationship.identity in stored:
                answers.append((stored[relationship.identity], False))
                continue
            if row["source"] not in present:
                raise MissingEnd("source", relationship.source)
            if row["target"] not in present:
                raise MissingEnd("target", relationship.target)
            stored[relationship.identity] = written = written_relationship(row)
            answers.append((written, True))
            fresh[row["key"]] = row
        if not fresh:
            return answers
        rows = [[row["key"], *(row[name] for name in RELATIONSHIP_PARAMETERS)]
                for row in fresh.values()]  # fmt: skip
        inserted = {
            record[0] for record in await db.fetch(INSERT_RELATIONSHIPS, tenant, *columns(rows, 8))
        }
        if len(inserted) == len(fresh):
            return answers
        # Another writer stored some of these since they were read: answer with its rows.
        others = await db.fetch(
            f"{SELECT_RELATIONSHIP} WHERE tenant = $1 AND identity_key = ANY($2::bigint[])",
            tenant,
            [key for key in fresh if key not in inserted],
        )
        theirs = {r.identity: r for r in map(relationship_from_row, others)}
        return [
            (theirs[r.identity], False) if r.identity in theirs else (r, created)
            for r, created in answers
        ]

    async def get_relationship(self, tenant: str, identity: int) -> Relationship | None:
        key = identity_key(identity)
        if key is None:
            return None
        rows = await self._read(
            f"{SELECT_RELATIONSHIP} WHERE tenant = $1 AND identity_key = $2", tenant, key
        )
        return relationship_from_row(rows[0]) if rows else None

    async def delete_relationship(self, tenant: str, identity: int) -> bool:
        key = identity_key(identity)
        if key is None:
            return False
        status = await self._execute(
            "DELETE FROM relationships WHERE tenant = $1 AND identity_key = $2", tenant, key
        )
        return _affected(status) > 0

    async def list_relationships(
        self,
        tenant: str,
        substrate: int,
        direction: Direction,
        *,
        types: Sequence[str] | None = None,
        limit: int,
        after: int | None = None,
    ) -> list[Relationship]:
        """See the contract; an empty ``types`` keeps none."""
        if direction not in ("outgoing", "incoming"):
            raise ValueError(f"direction must be 'outgoing' or 'incoming', not {direction!r}")
        key = identity_key(substrate)
        if key is None or limit <= 0 or (after is not None and after >= MAX_IDENTITY):
            return []
        near, far = ("source_key", "target_key")
        if direction == "incoming":
            near, far = far, near
        extra: list[str] = []
        extra_parameters: list[Any] = []
        if types is not None:
            names = [types] if isinstance(types, str) else list(types)
            chosen = list(dict.fromkeys(t for t in names if isinstance(t, str) and storable(t)))
            if not chosen:
                return []
            extra.append("relationship_type = ANY(?::text[])")
            extra_parameters.append(chosen)
        if after is not None and after >= 0:
            extra.append("identity_key > ?::bigint")
            extra_parameters.append(after - KEY_OFFSET)
        # One branch per index, merged and sorted outside; the second skips self-loops,
        # which the first has listed.
        branches = [
            (f"{near} = ?::bigint", [key]),
            (f"{far} = ?::bigint AND bidirectional = 1 AND {near} <> ?::bigint", [key, key]),
        ]
        selects: list[str] = []
        parameters: list[Any] = []
        for clause, keys in branches:
            selects.append(
                f"SELECT identity_key, {RELATIONSHIP_COLUMNS} FROM relationships "
                f"WHERE {' AND '.join(['tenant = ?::text', clause, *extra])}"
            )
            parameters += [tenant, *keys, *extra_parameters]
        rows = await self._read(
            numbered(
                f"SELECT {RELATIONSHIP_COLUMNS} FROM ({' UNION ALL '.join(selects)}) AS mine "
                "ORDER BY identity_key LIMIT ?"
            ),
            *parameters,
            limit,
        )
        return [relationship_from_row(row) for row in rows]

    async def all_relationships(
        self, tenant: str, *, limit: int, after: int | None = None
    ) -> list[Relationship]:
        if limit <= 0 or (after is not None and after >= MAX_IDENTITY):
            return []
        if after is None or after < 0:
            rows = await self._read(
                f"{SELECT_RELATIONSHIP} WHERE tenant = $1 ORDER BY identity_key LIMIT $2",
                tenant,
                limit,
            )
        else:
            rows = await self._read(
                f"{SELECT_RELATIONSHIP} WHERE tenant = $1 AND identity_key > $2 "
                "ORDER BY identity_key LIMIT $3",
                tenant,
                after - KEY_OFFSET,
                limit,
            )
        return [relationship_from_row(row) for row in rows]

    async def count_relationships(self, tenant: str) -> Mapping[str, int]:
        rows = await self._read(
            "SELECT relationship_type, COUNT(*) FROM relationships WHERE tenant = $1 "
            "GROUP BY relationship_type",
            tenant,
        )
        return {kind: int(count) for kind, count in rows}

    # -- SQL for graph engines --------------------------------------------------------------
    async def sql_fetch(self, sql: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """The rows of one statement with ``?`` placeholders, in a READ ONLY transaction
        (a write is refused by PostgreSQL)."""
        async with self._connection() as db, db.transaction(readonly=True):
            return [tuple(row) for row in await db.fetch(numbered(sql), *parameters)]

    # -- state --------------------------------------------------------------------------
    async def health(self) -> Mapping[str, Any]:
        """The server, schema, schema version and how many substrates it holds; raises
        within ``HEALTH_TIMEOUT`` seconds when the database does not answer."""
        pool = self._open_pool()
        async with asyncio.timeout(HEALTH_TIMEOUT), pool.acquire() as db:
            count = await db.fetchval("SELECT COUNT(*) FROM substrates")
            version = await schema_version(db)
        return {
            "server": self.where,
            "schema": self.schema,
            "schema_version": version,
            "substrates": int(count),
            "pool_size": pool.get_size(),
            "pool_idle": pool.get_idle_size(),
        }


def _affected(status: str) -> int:
    """The row count of a command status such as ``DELETE 3``."""
    return int(status.rsplit(" ", 1)[-1])


def _decided_in_sql(relationship_type: str) -> bool:
    return True  # has_relationship_type is exact in the SQL that chose the row


__all__ = [
    "DEFAULT_DSN",
    "PostgresStore",
    "PostgresStoreError",
    "masked_dsn",
    "numbered",
    "outage",
    "quoted",
]
