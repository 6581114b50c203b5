"""API keys in one SQLite file, shared by every worker process and the ``keys`` command
of one machine (:mod:`.postgres_keystore` shares them between machines).

WAL lets readers run beside a writer. Writes go through one connection under an asyncio
lock, each in ``BEGIN IMMEDIATE`` so processes queue on SQLite's lock (the busy timeout)
instead of failing on a lock upgrade; it is also what lets exactly one of several
starting workers see an empty table and create the first key. Reads use a second,
read-only connection and see every commit, from any process, at once: a revoked key is
refused on the very next request.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from .keys import ApiKey, IssuedKey, new_key_id, new_secret, secret_digest

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS api_keys (
        id TEXT PRIMARY KEY,
        key_sha256 TEXT NOT NULL UNIQUE,
        tenant TEXT NOT NULL,
        tier TEXT NOT NULL,
        scopes TEXT NOT NULL,
        name TEXT,
        created_at INTEGER NOT NULL,
        last_used_at INTEGER,
        revoked_at INTEGER
    )""",
    "CREATE INDEX IF NOT EXISTS api_keys_by_tenant ON api_keys (tenant, created_at)",
)
COLUMNS = "id, tenant, tier, scopes, name, created_at, last_used_at, revoked_at"


class KeyStoreError(Exception):
    """The key file cannot be used; the message names it and says why."""


def _key_from_row(row: Sequence[Any]) -> ApiKey:
    scopes = tuple(scope for scope in str(row[3]).split(",") if scope)
    return ApiKey(row[0], row[1], row[2], scopes, row[4], row[5], row[6], row[7])


LOOKUP_WAIT_S = 0.02  # the longest a key lookup may hold the event loop when SQLite is busy


class KeyStore:
    """Create, find, list and revoke API keys; only digests of their secrets are kept."""

    kind = "sqlite"

    def __init__(self, path: Path | str, busy_timeout_ms: int = 5000) -> None:
        self.path = Path(path)
        self.busy_timeout_ms = busy_timeout_ms
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._lookup: sqlite3.Connection | None = None
        self._lock: asyncio.Lock | None = None

    @property
    def where(self) -> str:
        """The key file, for messages and health."""
        return str(self.path)

    async def open(self) -> None:
        if self._writer is not None:
            return
        opened: list[aiosqlite.Connection] = []
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Made here, owner-only: the file holds digests, but nobody else needs to read them.
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
            writer = await self._connect(opened)
            mode = await switch_to_wal(writer, self.busy_timeout_ms)
            if str(mode).lower() != "wal":
                raise KeyStoreError(f"WAL mode is not available (journal mode is {mode})")
            await writer.execute("BEGIN IMMEDIATE")
            for statement in SCHEMA:
                await writer.execute(statement)
            await writer.commit()
            reader = await self._connect(opened)
            await reader.execute("PRAGMA query_only = ON")
            lookup = sqlite3.connect(
                self.path, timeout=LOOKUP_WAIT_S, isolation_level=None, check_same_thread=False
            )
            lookup.execute("PRAGMA query_only = ON")
        except (OSError, sqlite3.Error, KeyStoreError) as error:
            for connection in opened:
                with contextlib.suppress(Exception):
                    await connection.close()
            reason = getattr(error, "strerror", None) or error
            raise KeyStoreError(f"cannot open the API key file {self.path}: {reason}") from error
        self._writer, self._reader, self._lookup = writer, reader, lookup
        self._lock = asyncio.Lock()

    async def _connect(self, opened: list[aiosqlite.Connection]) -> aiosqlite.Connection:
        db = await aiosqlite.connect(
            self.path, timeout=self.busy_timeout_ms / 1000, isolation_level=None
        )
        opened.append(db)
        await db.execute("PRAGMA synchronous = FULL")  # a key handed out must survive a crash
        return db

    async def close(self) -> None:
        writer, reader, lock = self._writer, self._reader, self._lock
        if writer is None or reader is None or lock is None:
            return
        async with lock:
            self._writer = self._reader = None
            await writer.close()
        await reader.close()
        if self._lookup is not None:
            self._lookup.close()
            self._lookup = None

    async def __aenter__(self) -> KeyStore:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- connections ------------------------------------------------------------------
    def _not_open(self) -> RuntimeError:
        return RuntimeError(f"the API key file {self.path} is not open")

    async def _read(self, sql: str, parameters: Sequence[Any] = ()) -> list[Any]:
        if self._reader is None:
            raise self._not_open()
        return list(await self._reader.execute_fetchall(sql, parameters))

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        if self._lock is None:
            raise self._not_open()
        async with self._lock:
            db = self._writer
            if db is None:
                raise self._not_open()
            try:
                await db.execute("BEGIN IMMEDIATE")
                yield db
                await db.commit()
            except BaseException:
                with contextlib.suppress(Exception):
                    await db.rollback()
                raise

    # -- keys -------------------------------------------------------------------------
    @staticmethod
    async def _insert(
        db: aiosqlite.Connection, tenant: str, tier: str, scopes: Sequence[str], name: str | None
    ) -> IssuedKey:
        secret = new_secret()
        key = ApiKey(new_key_id(), tenant, tier, tuple(scopes), name, int(time.time()))
        await db.execute(
            f"INSERT INTO api_keys ({COLUMNS}, key_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (key.id, tenant, tier, ",".join(scopes), name, key.created_at, None, None,
             secret_digest(secret)),
        )  # fmt: skip
        return IssuedKey(key, secret)

    async def create(
        self, tenant: str, tier: str, scopes: Sequence[str], name: str | None = None
    ) -> IssuedKey:
        """A new key; the caller shows its secret once and forgets it."""
        async with self._transaction() as db:
            return await self._insert(db, tenant, tier, scopes, name)

    async def create_first(
        self, tenant: str, tier: str, scopes: Sequence[str], name: str | None = None
    ) -> IssuedKey | None:
        """A new key only if there is no key at all (revoked ones count); one transaction,
        so of several processes starting at once exactly one creates it."""
        async with self._transaction() as db:
            rows = list(await db.execute_fetchall("SELECT 1 FROM api_keys LIMIT 1"))
            if rows:
                return None
            return await self._insert(db, tenant, tier, scopes, name)

    async def find(self, secret: str) -> ApiKey | None:
        """The key whose secret this is, revoked or not; None for no key."""
        digest = secret_digest(secret)
        sql = f"SELECT {COLUMNS}, key_sha256 FROM api_keys WHERE key_sha256 = ?"
        rows = None
        if self._lookup is not None:
            # Every request asks this, and an indexed read of a WAL file takes microseconds:
            # done here on the event loop it costs less than handing it to aiosqlite's
            # thread. WAL readers do not wait for writers; in the rare case SQLite is busy
            # (a checkpoint resetting the log) it waits LOOKUP_WAIT_S at most, then the
            # question goes to the threaded reader like any other.
            with contextlib.suppress(sqlite3.OperationalError):
                rows = self._lookup.execute(sql, (digest,)).fetchall()
        if rows is None:
            rows = await self._read(sql, (digest,))
        # The index found the row; the constant-time comparison is what vouches for it.
        if not rows or not hmac.compare_digest(str(rows[0][8]), digest):
            return None
        return _key_from_row(rows[0])

    async def get(self, key_id: str, tenant: str | None = None) -> ApiKey | None:
        rows = await self._read(
            f"SELECT {COLUMNS} FROM api_keys WHERE id = ? AND (? IS NULL OR tenant = ?)",
            (key_id, tenant, tenant),
        )
        return _key_from_row(rows[0]) if rows else None

    async def list(self, tenant: str | None = None) -> list[ApiKey]:
        rows = await self._read(
            f"SELECT {COLUMNS} FROM api_keys WHERE (? IS NULL OR tenant = ?) "
            "ORDER BY tenant, created_at, id",
            (tenant, tenant),
        )
        return [_key_from_row(row) for row in rows]

    async def revoke(self, key_id: str, tenant: str | None = None) -> ApiKey | None:
        """Revoke the key (a key revoked before keeps its first revocation time); None
        when there is no such key (in ``tenant``, if given)."""
        async with self._transaction() as db:
            await db.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL "
                "AND (? IS NULL OR tenant = ?)",
                (int(time.time()), key_id, tenant, tenant),
            )
            rows = list(
                await db.execute_fetchall(
                    f"SELECT {COLUMNS} FROM api_keys WHERE id = ? AND (? IS NULL OR tenant = ?)",
                    (key_id, tenant, tenant),
                )
            )
        return _key_from_row(rows[0]) if rows else None

    async def record_use(self, used: Mapping[str, int]) -> None:
        """Move each key's ``last_used_at`` forward to the given epoch second."""
        if not used:
            return
        async with self._transaction() as db:
            await db.executemany(
                "UPDATE api_keys SET last_used_at = ? WHERE id = ? "
                "AND (last_used_at IS NULL OR last_used_at < ?)",
                [(moment, key_id, moment) for key_id, moment in used.items()],
            )

    async def count(self) -> tuple[int, int]:
        """(keys in force, keys revoked)."""
        rows = await self._read(
            "SELECT COUNT(*) - COUNT(revoked_at), COUNT(revoked_at) FROM api_keys"
        )
        return int(rows[0][0]), int(rows[0][1])


async def switch_to_wal(db: aiosqlite.Connection, busy_timeout_ms: int) -> str:
    """``PRAGMA journal_mode = WAL``, retried while another process holds the write lock.

    Switching a new file (still in rollback mode) upgrades a read lock to write the
    header; while another process holds the write lock SQLite answers SQLITE_BUSY at once
    rather than wait (waiting could deadlock), so the busy timeout never applies: wait
    here instead, up to that timeout. Servers starting together on one new file race here.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + busy_timeout_ms / 1000
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
