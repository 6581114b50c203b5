"""The users who may log in, in one SQLite file (WAL) that every worker and the CLI of
one machine share (:mod:`.postgres_users` shares them between machines).

Writes go through one connection under an asyncio lock, each in a ``BEGIN IMMEDIATE``
transaction, so cross-process writers queue on SQLite's lock; reads use a second one.
Only argon2id hashes are stored, never a password.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sqlite3
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite

from butterflyfx.core.auth import ACTIONS, TIERS

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
TENANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
DEFAULT_SCOPES = ("read", "write", "invoke")
SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    tier TEXT NOT NULL,
    scopes TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0
)
"""
COLUMNS = "name, tenant, tier, scopes, password_hash, created_at, disabled"


class UserRefused(ValueError):
    """A user that cannot be added or changed as asked; the message says why."""


@dataclass(frozen=True)
class User:
    name: str
    tenant: str
    tier: str
    scopes: tuple[str, ...]
    created_at: datetime
    disabled: bool = False
    password_hash: str = field(default="", repr=False)

    def public(self) -> dict[str, Any]:
        """What ``users list`` shows: everything but the hash."""
        return {
            "name": self.name, "tenant": self.tenant, "tier": self.tier,
            "scopes": list(self.scopes), "created_at": _timestamp(self.created_at),
            "disabled": self.disabled,
        }  # fmt: skip


def checked_user(name: str, tenant: str, tier: str, scopes: Iterable[str]) -> tuple[str, ...]:
    """Refuse a bad name, tenant, tier or scope; the scopes in canonical order."""
    if not NAME.fullmatch(name):
        raise UserRefused(
            f"{name!r} is not a user name: a letter or digit, then up to 63 letters, digits, "
            "'_', '.', '@' or '-'"
        )
    if not TENANT.fullmatch(tenant):
        raise UserRefused(
            f"{tenant!r} is not a tenant: a letter or digit, then up to 63 letters, digits, "
            "'_', '.' or '-'"
        )
    if tier not in TIERS:
        raise UserRefused(f"tier must be one of {', '.join(TIERS)}, not {tier!r}")
    wanted = {scope.strip() for scope in scopes if scope.strip()}
    unknown = sorted(wanted - set(ACTIONS))
    if unknown:
        raise UserRefused(f"unknown scopes {', '.join(unknown)}; known: {', '.join(ACTIONS)}")
    if not wanted:
        raise UserRefused(f"give at least one scope of {', '.join(ACTIONS)}")
    return tuple(action for action in ACTIONS if action in wanted)


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _user(row: Any) -> User:
    name, tenant, tier, scopes, password_hash, created_at, disabled = row
    return User(
        name, tenant, tier, tuple(s for s in scopes.split(",") if s),
        datetime.fromisoformat(created_at), bool(disabled), password_hash,
    )  # fmt: skip


class UserStore:
    """Users in the SQLite file at ``path`` (created with its folder when missing)."""

    kind = "sqlite"

    def __init__(self, path: Path | str, busy_timeout_ms: int = 5000) -> None:
        self.path = Path(path)
        self.busy_timeout_ms = busy_timeout_ms
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._lock: asyncio.Lock | None = None

    @property
    def where(self) -> str:
        """The users file, for messages."""
        return str(self.path)

    async def open(self) -> None:
        if self._writer is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Made here so only the server's user may read the hashes (SQLite's -wal and -shm
        # files take the database's permissions).
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        writer = await self._connect()
        try:
            await switch_to_wal(writer, self.busy_timeout_ms)
            self._writer, self._lock = writer, asyncio.Lock()
            async with self._transaction() as db:
                version = list(await db.execute_fetchall("PRAGMA user_version"))[0][0]
                if version > SCHEMA_VERSION:
                    raise sqlite3.DatabaseError(
                        f"{self.path} was written by a newer butterflyfx (schema {version})"
                    )
                await db.execute(SCHEMA)
                await db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            self._reader = await self._connect()
            await self._reader.execute("PRAGMA query_only = ON")
        except BaseException:
            await self.close()
            with contextlib.suppress(Exception):
                await writer.close()
            raise

    async def _connect(self) -> aiosqlite.Connection:
        connection = await aiosqlite.connect(self.path, isolation_level=None)
        await connection.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
        return connection

    async def close(self) -> None:
        for connection in (self._reader, self._writer):
            if connection is not None:
                with contextlib.suppress(Exception):
                    await connection.close()
        self._reader = self._writer = None

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        if self._writer is None or self._lock is None:
            raise RuntimeError("the user store is not open")
        async with self._lock:
            await self._writer.execute("BEGIN IMMEDIATE")
            try:
                yield self._writer
            except BaseException:
                await self._writer.execute("ROLLBACK")
                raise
            await self._writer.execute("COMMIT")

    async def _read(self, sql: str, parameters: tuple[Any, ...] = ()) -> list[Any]:
        if self._reader is None:
            raise RuntimeError("the user store is not open")
        return list(await self._reader.execute_fetchall(sql, parameters))

    # -- users ------------------------------------------------------------------------
    async def add(
        self, name: str, tenant: str, tier: str, scopes: Iterable[str], password_hash: str
    ) -> User:
        """Add a user; :class:`UserRefused` when the name is taken or a value is bad."""
        user = User(
            name, tenant, tier, checked_user(name, tenant, tier, scopes),
            datetime.now(UTC).replace(microsecond=0), False, password_hash,
        )  # fmt: skip
        async with self._transaction() as db:
            try:
                await db.execute(
                    f"INSERT INTO users ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, 0)",
                    (name, tenant, tier, ",".join(user.scopes), password_hash,
                     user.created_at.isoformat()),
                )  # fmt: skip
            except sqlite3.IntegrityError:
                raise UserRefused(f"a user named {name!r} already exists") from None
        return user

    async def get(self, name: str) -> User | None:
        rows = await self._read(f"SELECT {COLUMNS} FROM users WHERE name = ?", (name,))
        return _user(rows[0]) if rows else None

    async def all(self) -> list[User]:
        return [
            _user(row) for row in await self._read(f"SELECT {COLUMNS} FROM users ORDER BY name")
        ]

    async def count(self) -> int:
        return int((await self._read("SELECT count(*) FROM users"))[0][0])

    async def remove(self, name: str) -> bool:
        async with self._transaction() as db:
            cursor = await db.execute("DELETE FROM users WHERE name = ?", (name,))
            return cursor.rowcount > 0

    async def set_disabled(self, name: str, disabled: bool) -> bool:
        async with self._transaction() as db:
            cursor = await db.execute(
                "UPDATE users SET disabled = ? WHERE name = ?", (int(disabled), name)
            )
            return cursor.rowcount > 0

    async def replace_hash(self, name: str, old_hash: str, new_hash: str) -> None:
        """Store a stronger hash after a login, unless the password changed meanwhile."""
        async with self._transaction() as db:
            await db.execute(
                "UPDATE users SET password_hash = ? WHERE name = ? AND password_hash = ?",
                (new_hash, name, old_hash),
            )


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
