"""The SQLite store: one file in WAL mode, shared safely by several worker processes.

Two connections per store: writes go through one, under an asyncio lock and always in a
``BEGIN IMMEDIATE`` transaction (so a statement never joins another coroutine's
transaction, and cross-process writers queue on SQLite's lock instead of failing on an
upgrade); reads go through the other, so they never wait behind a write's fsync. The
reader is ``query_only``: ``sql_fetch`` hands it SQL from graph engines, which must not
write around the lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import aiosqlite

from butterflyfx.core.matching import matches
from butterflyfx.core.store import Direction, MissingEnd, SubstrateQuery
from butterflyfx.kernel import (
    InvocationStats,
    JSONValue,
    Relationship,
    Substrate,
    format_timestamp,
    parse_timestamp,
)

from .migrations import MIGRATIONS, Migration, SchemaTooNew, migrate, schema_version
from .rows import (
    ADD_INVOCATIONS,
    INSERT,
    INSERT_RELATIONSHIP,
    KEY_OFFSET,
    MAX_IDENTITY,
    RELATIONSHIP_COLUMNS,
    SELECT,
    SELECT_RELATIONSHIP,
    TENANTS,
    identity_key,
    metadata_text,
    relationship_from_row,
    relationship_values,
    substrate_from_row,
    substrate_values,
    written_relationship,
)
from .search import bindable, conditions

Synchronous = Literal["full", "normal"]
_SYNCHRONOUS = {"full": "FULL", "normal": "NORMAL"}
MIN_SQLITE = (3, 24, 0)  # ON CONFLICT (upsert) arrived in 3.24
SEARCH_BATCH = 256  # rows read at a time when Python must confirm what SQL narrowed
IN_CHUNK = 500  # keys per IN (...) list: SQLite before 3.32 allows 999 parameters


class SqliteStoreError(Exception):
    """The SQLite file cannot be used; the message names the file and says why."""


class SqliteStore:
    """A :class:`~butterflyfx.core.store.SubstrateStore` in one SQLite file."""

    name = "sqlite"
    sql_dialect = "sqlite"

    def __init__(
        self,
        path: Path | str,
        *,
        synchronous: Synchronous = "full",
        busy_timeout_ms: int = 5000,
        migrations: Sequence[Migration] = MIGRATIONS,
    ) -> None:
        if str(path) == ":memory:" or str(path).startswith("file:"):
            raise ValueError(
                f"the SQLite store needs a file path, not {str(path)!r}; "
                "use storage.memory for a store that keeps nothing"
            )
        if synchronous not in _SYNCHRONOUS:
            raise ValueError(f"synchronous must be one of {sorted(_SYNCHRONOUS)}")
        self.path = Path(path)
        self.synchronous = synchronous
        self.busy_timeout_ms = busy_timeout_ms
        self.migrations = tuple(migrations)
        self.schema_version: int | None = None
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._write_lock: asyncio.Lock | None = None

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r})"

    # -- opening and closing ------------------------------------------------------
    async def open(self) -> None:
        """Create the folder and file if missing, switch to WAL, apply migrations."""
        if self._writer is not None:
            return
        if sqlite3.sqlite_version_info < MIN_SQLITE:
            needed = ".".join(map(str, MIN_SQLITE))
            raise self._cannot_open(
                f"SQLite {needed} or newer is needed, this Python has {sqlite3.sqlite_version}"
            )
        self._prepare_file()
        opened: list[aiosqlite.Connection] = []
        try:
            writer = await self._connect(opened)
            mode = await self._switch_to_wal(writer)
            if str(mode).lower() != "wal":
                raise SqliteStoreError(f"WAL mode is not available (journal mode is {mode})")
            await _require_json(writer)
            self.schema_version = await migrate(writer, self.migrations)
            reader = await self._connect(opened)
            await reader.execute("PRAGMA query_only = ON")
        except (OSError, sqlite3.Error, SchemaTooNew, SqliteStoreError) as error:
            for connection in opened:
                with contextlib.suppress(Exception):  # the open error is the one to report
                    await connection.close()
            raise self._cannot_open(error) from error
        self._writer, self._reader = writer, reader
        self._write_lock = asyncio.Lock()  # made here: a lock belongs to the running loop

    async def _switch_to_wal(self, db: aiosqlite.Connection) -> str:
        """``PRAGMA journal_mode = WAL``, retried while another process holds the lock.

        On a file still in rollback mode (a new one) the switch takes a read lock, then
        upgrades it to write the header. If another process holds the write lock then
        (it is switching the same new file), SQLite answers SQLITE_BUSY at once instead
        of calling the busy handler, since waiting while holding a read lock could
        deadlock: the busy timeout never applies. So wait for it here, up to that timeout.
        Once the file is in WAL mode the pragma has nothing to write.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.busy_timeout_ms / 1000
        pause = 0.001
        while True:
            try:
                rows = await db.execute_fetchall("PRAGMA journal_mode = WAL")
                return str(list(rows)[0][0])
            except sqlite3.OperationalError as error:
                busy = error.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY  # any BUSY_*
                if not busy or loop.time() >= deadline:
                    raise
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.05)

    def _prepare_file(self) -> None:
        """Create the folder and the file, or say why they cannot be used."""
        folder = self.path.parent
        if folder.exists() and not folder.is_dir():
            raise self._cannot_open(f"{folder} is a file, not a folder")
        try:
            folder.mkdir(parents=True, exist_ok=True)
            # Opening the file ourselves first makes a folder or a read-only file fail
            # here with the OS's reason, not inside aiosqlite's connect, whose failure
            # leaves its thread to finish after our event loop may be gone.
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644))
        except OSError as error:
            raise self._cannot_open(error.strerror or error) from error

    def _cannot_open(self, reason: object) -> SqliteStoreError:
        where = str(self.path)
        if not self.path.is_absolute():  # a relative path is read from the working folder
            where += f" (in {Path.cwd()})"
        return SqliteStoreError(f"cannot open the SQLite store {where}: {reason}")

    async def _connect(self, opened: list[aiosqlite.Connection]) -> aiosqlite.Connection:
        # timeout= is SQLite's busy timeout: wait this long for another process's lock.
        # isolation_level=None: no implicit BEGINs; every transaction here is explicit.
        db = await aiosqlite.connect(
            self.path, timeout=self.busy_timeout_ms / 1000, isolation_level=None
        )
        opened.append(db)
        # FULL fsyncs the WAL at every commit: an acknowledged write survives power loss.
        await db.execute(f"PRAGMA synchronous = {_SYNCHRONOUS[self.synchronous]}")
        await db.execute("PRAGMA foreign_keys = ON")
        return db

    async def close(self) -> None:
        """Wait for the write in progress, then close both connections."""
        writer, reader = self._writer, self._reader
        if writer is None or reader is None or self._write_lock is None:
            return
        async with self._write_lock:
            self._writer = self._reader = None
            await writer.close()
        await reader.close()

    # -- connections ------------------------------------------------------------------
    def _not_open(self) -> RuntimeError:
        return RuntimeError(f"the SQLite store {self.path} is not open")

    async def _read(self, sql: str, parameters: Sequence[Any] = ()) -> list[Any]:
        if self._reader is None:
            raise self._not_open()
        return list(await self._reader.execute_fetchall(sql, parameters))

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """The writer connection inside BEGIN IMMEDIATE; commits when the block ends."""
        if self._write_lock is None:
            raise self._not_open()
        async with self._write_lock:
            db = self._writer
            if db is None:  # closed while this write waited for the lock
                raise self._not_open()
            try:
                await db.execute("BEGIN IMMEDIATE")
                yield db
                await db.commit()
            except BaseException:
                # rollback() is queued behind any statement still running on the
                # connection's thread (even after a cancellation) and is a no-op when no
                # transaction is open.
                with contextlib.suppress(Exception):
                    await db.rollback()
                raise

    # -- substrates ---------------------------------------------------------------------
    async def put_substrate(self, tenant: str, substrate: Substrate) -> tuple[Substrate, bool]:
        values = substrate_values(tenant, substrate)
        async with self._transaction() as db:
            cursor = await db.execute(INSERT, values)
            if cursor.rowcount == 1:
                # What a later read returns: the row as written (timestamps to the second).
                return substrate_from_row(values[1:]), True
            rows = await db.execute_fetchall(
                f"{SELECT} WHERE tenant = ? AND identity_key = ?",
                (tenant, values[3]),  # values[3] is identity_key
            )
            return substrate_from_row(list(rows)[0]), False

    async def put_substrates(
        self, tenant: str, substrates: Sequence[Substrate]
    ) -> list[tuple[Substrate, bool]]:
        """One transaction: find which exist, insert the rest with one ``executemany``."""
        rows = [substrate_values(tenant, substrate) for substrate in substrates]
        if not rows:
            return []
        async with self._transaction() as db:
            stored = {
                substrate.identity: substrate
                for chunk in _chunks(list(dict.fromkeys(row[3] for row in rows)))
                for substrate in map(
                    substrate_from_row,
                    await db.execute_fetchall(
                        f"{SELECT} WHERE tenant = ? AND identity_key IN ({_marks(chunk)})",
                        (tenant, *chunk),
                    ),
                )
            }
            answers: list[tuple[Substrate, bool]] = []
            fresh: list[tuple[Any, ...]] = []
            for row, substrate in zip(rows, substrates, strict=True):
                if substrate.identity in stored:
                    answers.append((stored[substrate.identity], False))
                    continue
                # What a later read returns: the row as written (timestamps to the second).
                stored[substrate.identity] = written = substrate_from_row(row[1:])
                answers.append((written, True))
                fresh.append(row)
            await db.executemany(INSERT, fresh)
            return answers

    async def get_substrates(self, tenant: str, identities: Sequence[int]) -> dict[int, Substrate]:
        keys = list(dict.fromkeys(k for i in identities if (k := identity_key(i)) is not None))
        found: dict[int, Substrate] = {}
        for chunk in _chunks(keys):
            rows = await self._read(
                f"{SELECT} WHERE tenant = ? AND identity_key IN ({_marks(chunk)})",
                (tenant, *chunk),
            )
            found.update((s.identity, s) for s in map(substrate_from_row, rows))
        return found

    async def get_substrate(self, tenant: str, identity: int) -> Substrate | None:
        key = identity_key(identity)
        if key is None:
            return None
        rows = await self._read(f"{SELECT} WHERE tenant = ? AND identity_key = ?", (tenant, key))
        return substrate_from_row(rows[0]) if rows else None

    async def list_substrates(
        self, tenant: str, *, limit: int, after: int | None = None
    ) -> list[Substrate]:
        if limit <= 0:
            return []  # SQLite reads LIMIT -1 as "no limit"
        if after is not None and after >= MAX_IDENTITY:
            return []
        if after is None or after < 0:
            rows = await self._read(
                f"{SELECT} WHERE tenant = ? ORDER BY identity_key LIMIT ?", (tenant, limit)
            )
        else:
            rows = await self._read(
                f"{SELECT} WHERE tenant = ? AND identity_key > ? ORDER BY identity_key LIMIT ?",
                (tenant, after - KEY_OFFSET, limit),
            )
        return [substrate_from_row(row) for row in rows]

    async def update_metadata(
        self, tenant: str, identity: int, metadata: Mapping[str, JSONValue], *, now: datetime
    ) -> Substrate | None:
        key = identity_key(identity)
        if key is None:
            return None
        async with self._transaction() as db:
            cursor = await db.execute(
                "UPDATE substrates SET metadata = ?, updated_at = ?, version = version + 1 "
                "WHERE tenant = ? AND identity_key = ?",
                (metadata_text(metadata), format_timestamp(now), tenant, key),
            )
            if cursor.rowcount == 0:
                return None
            rows = await db.execute_fetchall(
                f"{SELECT} WHERE tenant = ? AND identity_key = ?", (tenant, key)
            )
            return substrate_from_row(list(rows)[0])

    async def delete_substrate(self, tenant: str, identity: int) -> bool:
        key = identity_key(identity)
        if key is None:
            return False
        async with self._transaction() as db:
            # Explicit, though the foreign keys cascade: a file edited by a tool that left
            # foreign keys off must not bring old totals back when the substrate returns.
            # Relationships likewise, one statement per end so each uses its index.
            for statement in (
                "DELETE FROM relationships WHERE tenant = ? AND source_key = ?",
                "DELETE FROM relationships WHERE tenant = ? AND target_key = ?",
                "DELETE FROM invocation_totals WHERE tenant = ? AND identity_key = ?",
            ):
                await db.execute(statement, (tenant, key))
            cursor = await db.execute(
                "DELETE FROM substrates WHERE tenant = ? AND identity_key = ?", (tenant, key)
            )
            return cursor.rowcount > 0

    async def count_substrates(self, tenant: str) -> int:
        rows = await self._read("SELECT COUNT(*) FROM substrates WHERE tenant = ?", (tenant,))
        return int(rows[0][0])

    async def tenants(self) -> list[str]:
        """Every tenant with a substrate, sorted (the optional ``TenantListing``)."""
        return sorted(row[0] for row in await self._read(TENANTS))

    # -- invocation totals --------------------------------------------------------------
    async def add_invocations(self, tenant: str, counts: Mapping[int, InvocationStats]) -> None:
        rows = [
            {
                "tenant": tenant,
                "key": key,
                "invocations": stats.count,
                "errors": stats.errors,
                "total_ms": float(stats.total_ms),
                "last": format_timestamp(stats.last_invoked_at),
            }
            for identity, stats in counts.items()
            if (key := identity_key(identity)) is not None
        ]
        if not rows:
            return
        async with self._transaction() as db:
            await db.executemany(ADD_INVOCATIONS, rows)

    async def invocation_stats(self, tenant: str, identity: int) -> InvocationStats | None:
        key = identity_key(identity)
        if key is None:
            return None
        rows = await self._read(
            "SELECT invocations, errors, total_ms, last_invoked_at FROM invocation_totals "
            "WHERE tenant = ? AND identity_key = ?",
            (tenant, key),
        )
        if not rows:
            return None
        invocations, errors, total_ms, last = rows[0]
        return InvocationStats(invocations, errors, float(total_ms), parse_timestamp(last))

    async def invocation_totals(self, tenant: str) -> InvocationStats:
        rows = await self._read(
            "SELECT COALESCE(SUM(invocations), 0), COALESCE(SUM(errors), 0), "
            "COALESCE(SUM(total_ms), 0.0), MAX(last_invoked_at) "
            "FROM invocation_totals WHERE tenant = ?",
            (tenant,),
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
        batch = limit if where.exact else max(limit, SEARCH_BATCH)
        found: list[Substrate] = []
        while True:
            clauses = ["tenant = ?", *where.sql]
            parameters: list[Any] = [tenant, *where.parameters]
            if lower is not None:
                clauses.append("identity_key > ?")
                parameters.append(lower)
            rows = await self._read(
                f"{SELECT} WHERE {' AND '.join(clauses)} ORDER BY identity_key LIMIT ?",
                (*parameters, batch),
            )
            substrates = [substrate_from_row(row) for row in rows]
            for substrate in substrates:
                if where.exact or matches(query, substrate, _decided_in_sql):
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
        source = identity_key(relationship.source)
        if source is None:
            raise MissingEnd("source", relationship.source)
        target = identity_key(relationship.target)
        if target is None:
            raise MissingEnd("target", relationship.target)
        values = relationship_values(tenant, relationship, source, target)
        async with self._transaction() as db:
            cursor = await db.execute(INSERT_RELATIONSHIP, values)
            if cursor.rowcount == 1:
                # What a later read returns: the row as written (timestamps to the second).
                return written_relationship(values), True
            # Nothing inserted: a duplicate, or an end is missing. Still inside the write
            # lock, so no other writer can change the answer before the caller acts on it.
            rows = list(
                await db.execute_fetchall(
                    f"{SELECT_RELATIONSHIP} WHERE tenant = ? AND identity_key = ?",
                    (tenant, values["key"]),
                )
            )
            if rows:
                return relationship_from_row(rows[0]), False
            present = list(
                await db.execute_fetchall(
                    "SELECT EXISTS (SELECT 1 FROM substrates "
                    "WHERE tenant = ? AND identity_key = ?)",
                    (tenant, source),
                )
            )
            if not present[0][0]:
                raise MissingEnd("source", relationship.source)
            raise MissingEnd("target", relationship.target)

    async def put_relationships(
        self, tenant: str, relationships: Sequence[Relationship]
    ) -> list[tuple[Relationship, bool]]:
        """One transaction: read which exist and which ends are there, then insert the
        new ones with one ``executemany``; a missing end raises before anything is written."""
        values: list[dict[str, Any]] = []
        for relationship in relationships:
            source = identity_key(relationship.source)
            if source is None:
                raise MissingEnd("source", relationship.source)
            target = identity_key(relationship.target)
            if target is None:
                raise MissingEnd("target", relationship.target)
            values.append(relationship_values(tenant, relationship, source, target))
        if not values:
            return []
        async with self._transaction() as db:
            stored: dict[int, Relationship] = {}
            for chunk in _chunks(list(dict.fromkeys(v["key"] for v in values))):
                rows = await db.execute_fetchall(
                    f"{SELECT_RELATIONSHIP} WHERE tenant = ? AND identity_key IN ({_marks(chunk)})",
                    (tenant, *chunk),
                )
                stored.update((r.identity, r) for r in map(relationship_from_row, rows))
            present: set[int] = set()
            ends = dict.fromkeys(key for v in values for key in (v["source"], v["target"]))
            for chunk in _chunks(list(ends)):
                rows = await db.execute_fetchall(
                    "SELECT identity_key FROM substrates "
                    f"WHERE tenant = ? AND identity_key IN ({_marks(chunk)})",
                    (tenant, *chunk),
                )
                present.update(row[0] for row in rows)
            answers: list[tuple[Relationship, bool]] = []
            fresh: list[dict[str, Any]] = []
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
                fresh.append(row)
            await db.executemany(INSERT_RELATIONSHIP, fresh)
            return answers

    async def get_relationship(self, tenant: str, identity: int) -> Relationship | None:
        key = identity_key(identity)
        if key is None:
            return None
        rows = await self._read(
            f"{SELECT_RELATIONSHIP} WHERE tenant = ? AND identity_key = ?", (tenant, key)
        )
        return relationship_from_row(rows[0]) if rows else None

    async def delete_relationship(self, tenant: str, identity: int) -> bool:
        key = identity_key(identity)
        if key is None:
            return False
        async with self._transaction() as db:
            cursor = await db.execute(
                "DELETE FROM relationships WHERE tenant = ? AND identity_key = ?", (tenant, key)
            )
            return cursor.rowcount > 0

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
            return []  # SQLite reads LIMIT -1 as "no limit"
        near, far = ("source_key", "target_key")
        if direction == "incoming":
            near, far = far, near
        extra, extra_parameters = _page_clauses(types, after)
        if extra is None:
            return []
        # One branch per index, merged and sorted outside: an OR in one SELECT would scan
        # the tenant's every relationship. The second branch skips self-loops, which the
        # first has listed.
        branches = [
            (f"{near} = ?", [key]),
            (f"{far} = ? AND bidirectional = 1 AND {near} <> ?", [key, key]),
        ]
        selects: list[str] = []
        parameters: list[Any] = []
        for clause, values in branches:
            selects.append(
                f"SELECT identity_key, {RELATIONSHIP_COLUMNS} FROM relationships "
                f"WHERE {' AND '.join(['tenant = ?', clause, *extra])}"
            )
            parameters += [tenant, *values, *extra_parameters]
        rows = await self._read(
            f"SELECT {RELATIONSHIP_COLUMNS} FROM ({' UNION ALL '.join(selects)}) AS mine "
            "ORDER BY identity_key LIMIT ?",
            (*parameters, limit),
        )
        return [relationship_from_row(row) for row in rows]

    async def all_relationships(
        self, tenant: str, *, limit: int, after: int | None = None
    ) -> list[Relationship]:
        if limit <= 0 or (after is not None and after >= MAX_IDENTITY):
            return []
        if after is None or after < 0:
            rows = await self._read(
                f"{SELECT_RELATIONSHIP} WHERE tenant = ? ORDER BY identity_key LIMIT ?",
                (tenant, limit),
            )
        else:
            rows = await self._read(
                f"{SELECT_RELATIONSHIP} WHERE tenant = ? AND identity_key > ? "
                "ORDER BY identity_key LIMIT ?",
                (tenant, after - KEY_OFFSET, limit),
            )
        return [relationship_from_row(row) for row in rows]

    async def count_relationships(self, tenant: str) -> Mapping[str, int]:
        rows = await self._read(
            "SELECT relationship_type, COUNT(*) FROM relationships WHERE tenant = ? "
            "GROUP BY relationship_type",
            (tenant,),
        )
        return {kind: int(count) for kind, count in rows}

    # -- SQL for graph engines --------------------------------------------------------------
    async def sql_fetch(self, sql: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """The rows of one read-only statement, on the reader (a write is refused)."""
        return [tuple(row) for row in await self._read(sql, tuple(parameters))]

    # -- state --------------------------------------------------------------------------
    async def health(self) -> Mapping[str, Any]:
        """The file, its schema version and how many substrates it holds (all tenants)."""
        if self._reader is None:
            raise self._not_open()
        rows = await self._read("SELECT COUNT(*) FROM substrates")
        return {
            "path": str(self.path),
            "schema_version": await schema_version(self._reader),
            "substrates": int(rows[0][0]),
            "synchronous": self.synchronous,
        }


async def _require_json(db: aiosqlite.Connection) -> None:
    """Search reads metadata with SQLite's JSON functions, optional before SQLite 3.38:
    refuse at start-up, not at the first search."""
    try:
        await db.execute_fetchall("SELECT json_type('{}')")
    except sqlite3.OperationalError as error:
        raise SqliteStoreError(
            f"this SQLite {sqlite3.sqlite_version} lacks the JSON functions ({error})"
        ) from error


def _chunks(keys: list[int], size: int = IN_CHUNK) -> list[list[int]]:
    return [keys[start : start + size] for start in range(0, len(keys), size)]


def _marks(chunk: Sequence[Any]) -> str:
    return ", ".join("?" * len(chunk))


def _decided_in_sql(relationship_type: str) -> bool:
    return True  # has_relationship_type is exact in the SQL that chose the row


def _page_clauses(
    types: Sequence[str] | None, after: int | None
) -> tuple[list[str] | None, list[Any]]:
    """Clauses keeping ``types`` (when given) and identities after ``after`` (when given);
    None when no relationship can pass."""
    clauses: list[str] = []
    parameters: list[Any] = []
    if types is not None:
        chosen = _type_names(types)
        if not chosen:
            return None, []
        clauses.append(f"relationship_type IN ({', '.join('?' * len(chosen))})")
        parameters.extend(chosen)
    if after is not None and after >= 0:
        # The + keeps SQLite off the primary key (tenant, identity_key), which this range
        # would otherwise tempt it to scan in order instead of the (tenant, end) index.
        clauses.append("+identity_key > ?")
        parameters.append(after - KEY_OFFSET)
    return clauses, parameters


def _type_names(types: Sequence[str]) -> list[str]:
    """The distinct names SQLite can compare (a lone bare string counts as one name)."""
    names = [types] if isinstance(types, str) else list(types)
    return list(dict.fromkeys(t for t in names if isinstance(t, str) and bindable(t)))
