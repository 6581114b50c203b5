"""Users in PostgreSQL (``[auth.jwt] database``), shared by every instance, and the
signing secret they share when none is configured.

The rules are the SQLite file's (:mod:`.users`): argon2id hashes only, and every request
with a token reads its user, so a user removed or disabled through any instance (or the
``users`` command) is refused on the next request through every other.

A generated secret is kept in table ``jwt_signing_secret``, one row, made once: of several
instances starting at once, the first ``INSERT ... ON CONFLICT DO NOTHING`` wins and the
others wait for its commit, find the row taken and read the winner's secret.

The tables are created at start in their schema, under the advisory lock ``storage.postgres``
also takes for a schema, so plugins and instances sharing one schema create it in turn. A
database that goes away while the server runs answers 503 (``StoreUnavailable``) for the
requests that needed it; the pool reconnects by itself once it is back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg

from butterflyfx.core.sql import PLAIN_NAME, masked_dsn, quoted, server_place
from butterflyfx.core.store import StoreUnavailable

from .users import COLUMNS, User, UserRefused, checked_user

PLUGIN = "auth.jwt"
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: the users, as the SQLite file has them, and the generated signing secret.
    (
        """CREATE TABLE jwt_users (
            name          TEXT PRIMARY KEY,
            tenant        TEXT NOT NULL,
            tier          TEXT NOT NULL,
            scopes        TEXT NOT NULL,
            password_hash TEXT NOT NULL,
            created_at    TIMESTAMPTZ NOT NULL,
            disabled      BOOLEAN NOT NULL DEFAULT FALSE
        )""",
        """CREATE TABLE jwt_signing_secret (
            id         SMALLINT PRIMARY KEY CHECK (id = 1),
            secret     TEXT NOT NULL,
            created_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )""",
    ),
)
# One row per auth plugin sharing the schema: the migration step it has reached.
VERSIONS = (
    "CREATE TABLE IF NOT EXISTS auth_schema_versions "
    "(plugin TEXT PRIMARY KEY, version INTEGER NOT NULL)"
)
# pg_advisory_xact_lock(LOCK_CLASS, hashtext(schema)): the key storage.postgres takes for
# its migrations, so everything created in one schema is created one plugin at a time.
LOCK_CLASS = 0x42FF
MAX_POOL = 4  # connections per worker by default: a token's check is one indexed read
CONNECT_TIMEOUT = 10.0  # seconds to connect, or to wait for a pooled connection
COMMAND_TIMEOUT = 10.0  # seconds a statement may run
# What a database that is away looks like (refused, reset, timed out, shutting down, out
# of connections); any other error (a bug) stays what it is.
OUTAGES: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InsufficientResourcesError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.CannotConnectNowError,
)
OPEN_ERRORS = (*OUTAGES, asyncpg.PostgresError, asyncpg.InterfaceError, ValueError)
SELECT = f"SELECT {COLUMNS} FROM jwt_users"


class UserDatabaseError(Exception):
    """The users database cannot be used; the message names it and says why."""


def _user(row: Any) -> User:
    name, tenant, tier, scopes, password_hash, created_at, disabled = row
    return User(
        name, tenant, tier, tuple(s for s in scopes.split(",") if s),
        created_at, bool(disabled), password_hash,
    )  # fmt: skip


def _changed(status: str) -> bool:
    """Whether an UPDATE or DELETE status (``"DELETE 1"``) counts a row."""
    return status.rsplit(" ", 1)[-1] != "0"


class PostgresUserStore:
    """Users in table ``jwt_users`` of ``schema`` in the database at ``dsn``."""

    kind = "postgresql"

    def __init__(
        self, dsn: str, *, schema: str = "butterflyfx_auth", max_pool: int = MAX_POOL
    ) -> None:
        if not PLAIN_NAME.fullmatch(schema):
            raise ValueError(f"schema must be a plain PostgreSQL name, not {schema!r}")
        if max_pool < 1:
            raise ValueError("max_pool must be at least 1")
        self.dsn, self.schema, self.max_pool = dsn, schema, max_pool
        self._pool: asyncpg.Pool | None = None

    @property
    def where(self) -> str:
        """host:port/database, schema S (never the password)."""
        return f"{server_place(self.dsn)}, schema {self.schema}"

    def __repr__(self) -> str:
        return f"PostgresUserStore({self.where!r})"

    async def open(self) -> None:
        """Connect and create the tables if they are missing."""
        if self._pool is not None:
            return
        pool: asyncpg.Pool | None = None
        try:
            pool = await asyncpg.create_pool(
                self.dsn, min_size=1, max_size=self.max_pool,
                timeout=CONNECT_TIMEOUT, command_timeout=COMMAND_TIMEOUT,
                server_settings={"search_path": self.schema},
            )  # fmt: skip
            async with pool.acquire(timeout=CONNECT_TIMEOUT) as db:
                await migrate(db, self.schema)
        except (*OPEN_ERRORS, UserDatabaseError) as error:
            if pool is not None:
                await pool.close()
            reason = masked_dsn(str(error)) or "no answer in time"
            raise UserDatabaseError(
                f"cannot open the users database at {self.where} ({masked_dsn(self.dsn)}): "
                f"{type(error).__name__}: {reason}"
            ) from error
        self._pool = pool

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection; an outage on the way in or while it is used is
        :class:`StoreUnavailable` (HTTP answers 503 with Retry-After)."""
        if self._pool is None:
            raise RuntimeError(f"the users database at {self.where} is not open")
        try:
            async with self._pool.acquire(timeout=CONNECT_TIMEOUT) as db:
                yield db
        except Exception as error:
            unavailable = self._outage(error)
            if unavailable is None:
                raise
            raise unavailable from error

    def _outage(self, error: BaseException) -> StoreUnavailable | None:
        seen: BaseException | None = error
        for _ in range(8):  # the error, or what it was raised while handling
            if seen is None:
                return None
            if isinstance(seen, OUTAGES) or (
                isinstance(seen, asyncpg.InterfaceError) and "closed" in str(seen)
            ):
                said = masked_dsn(str(seen)) or "no answer in time"
                return StoreUnavailable(PLUGIN, f"{self.where}: {type(seen).__name__}: {said}")
            seen = seen.__cause__ or seen.__context__
        return None

    # -- users ------------------------------------------------------------------------
    async def add(
        self, name: str, tenant: str, tier: str, scopes: Iterable[str], password_hash: str
    ) -> User:
        """Add a user; :class:`UserRefused` when the name is taken or a value is bad."""
        user = User(
            name, tenant, tier, checked_user(name, tenant, tier, scopes),
            datetime.now(UTC).replace(microsecond=0), False, password_hash,
        )  # fmt: skip
        async with self._connection() as db:
            try:
                await db.execute(
                    f"INSERT INTO jwt_users ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, FALSE)",
                    name, tenant, tier, ",".join(user.scopes), password_hash, user.created_at,
                )  # fmt: skip
            except asyncpg.UniqueViolationError:
                raise UserRefused(f"a user named {name!r} already exists") from None
        return user

    async def get(self, name: str) -> User | None:
        async with self._connection() as db:
            row = await db.fetchrow(f"{SELECT} WHERE name = $1", name)
        return None if row is None else _user(row)

    async def all(self) -> list[User]:
        async with self._connection() as db:
            rows = await db.fetch(f'{SELECT} ORDER BY name COLLATE "C"')
        return [_user(row) for row in rows]

    async def count(self) -> int:
        async with self._connection() as db:
            return int(await db.fetchval("SELECT count(*) FROM jwt_users"))

    async def remove(self, name: str) -> bool:
        async with self._connection() as db:
            return _changed(await db.execute("DELETE FROM jwt_users WHERE name = $1", name))

    async def set_disabled(self, name: str, disabled: bool) -> bool:
        async with self._connection() as db:
            status = await db.execute(
                "UPDATE jwt_users SET disabled = $2 WHERE name = $1", name, disabled
            )
        return _changed(status)

    async def replace_hash(self, name: str, old_hash: str, new_hash: str) -> None:
        """Store a stronger hash after a login, unless the password changed meanwhile."""
        async with self._connection() as db:
            await db.execute(
                "UPDATE jwt_users SET password_hash = $3 WHERE name = $1 AND password_hash = $2",
                name, old_hash, new_hash,
            )  # fmt: skip

    # -- the signing secret -------------------------------------------------------------
    async def shared_secret(self, candidate: str) -> tuple[str, bool]:
        """The signing secret of every instance on this database: ``candidate`` when none
        was stored yet (then True: this call stored it), else the one stored (False)."""
        async with self._connection() as db:
            made = await db.fetchval(
                "INSERT INTO jwt_signing_secret (id, secret) VALUES (1, $1) "
                "ON CONFLICT (id) DO NOTHING RETURNING secret",
                candidate,
            )
            if made is not None:
                return str(made), True
            # Taken: by a commit this statement's new snapshot sees (READ COMMITTED).
            stored = await db.fetchval("SELECT secret FROM jwt_signing_secret WHERE id = 1")
        if stored is None:
            raise UserDatabaseError(
                f"the signing secret in {self.where} vanished while it was read; start again"
            )
        return str(stored), False


async def migrate(db: asyncpg.Connection, schema: str) -> int:
    """Create the schema and apply the steps it lacks, in one transaction under the
    schema's advisory lock; the version reached."""
    target = len(MIGRATIONS)
    async with db.transaction():
        await db.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", LOCK_CLASS, schema)
        await db.execute(f"CREATE SCHEMA IF NOT EXISTS {quoted(schema)}")
        await db.execute(f"SET LOCAL search_path TO {quoted(schema)}")
        await db.execute(VERSIONS)
        current = int(
            await db.fetchval("SELECT version FROM auth_schema_versions WHERE plugin = $1", PLUGIN)
            or 0
        )
        if current > target:
            raise UserDatabaseError(
                f"the users in schema {schema} are at version {current}, but this ButterflyFX "
                f"knows only {target}; upgrade ButterflyFX"
            )
        for statements in MIGRATIONS[current:]:
            for statement in statements:
                await db.execute(statement)
        await db.execute(
            "INSERT INTO auth_schema_versions (plugin, version) VALUES ($1, $2) "
            "ON CONFLICT (plugin) DO UPDATE SET version = EXCLUDED.version",
            PLUGIN, target,
        )  # fmt: skip
    return target
