"""API keys in PostgreSQL (``[auth.apikey] database``), shared by every instance.

The rules are the SQLite file's (:mod:`.keystore`): only SHA-256 digests are stored, and
every request reads the table, so a key revoked through any instance (or the ``keys``
command) is refused on its next request through every other. Last-use times arrive in
batches (:class:`~.service.ApiKeyService` flushes them every few seconds), one statement
per batch, and only ever move forward, whichever instance writes last.

Of several instances starting at once on an empty table, exactly one creates the first
admin key: :meth:`PostgresKeyStore.create_first` locks the table against writers
(``EXCLUSIVE``: reads go on) before it looks, so the others, once the first commits,
see its key and create none.

The table is created at start in its schema, under the advisory lock ``storage.postgres``
also takes for a schema, so plugins and instances sharing one schema create it in turn.
A database that goes away while the server runs answers 503 (``StoreUnavailable``) for the
requests that needed it, and the pool reconnects by itself once it is back.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from butterflyfx.core.sql import PLAIN_NAME, masked_dsn, quoted, server_place
from butterflyfx.core.store import StoreUnavailable

from .keys import ApiKey, IssuedKey, new_key_id, new_secret, secret_digest
from .keystore import COLUMNS, KeyStoreError

PLUGIN = "auth.apikey"
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: the keys, as the SQLite file has them; times are epoch seconds.
    (
        """CREATE TABLE api_keys (
            id           TEXT PRIMARY KEY,
            key_sha256   TEXT NOT NULL UNIQUE,
            tenant       TEXT NOT NULL,
            tier         TEXT NOT NULL,
            scopes       TEXT NOT NULL,
            name         TEXT,
            created_at   BIGINT NOT NULL,
            last_used_at BIGINT,
            revoked_at   BIGINT
        )""",
        "CREATE INDEX api_keys_by_tenant ON api_keys (tenant, created_at)",
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
MAX_POOL = 4  # connections per worker by default: a key lookup is one indexed read
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
SELECT = f"SELECT {COLUMNS} FROM api_keys"
OF_TENANT = "($2::text IS NULL OR tenant = $2)"


def _key(row: Sequence[Any]) -> ApiKey:
    scopes = tuple(scope for scope in str(row[3]).split(",") if scope)
    return ApiKey(row[0], row[1], row[2], scopes, row[4], row[5], row[6], row[7])


class PostgresKeyStore:
    """API keys in table ``api_keys`` of ``schema`` in the database at ``dsn``."""

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
        return f"PostgresKeyStore({self.where!r})"

    async def open(self) -> None:
        """Connect and create the table if it is missing."""
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
        except (*OPEN_ERRORS, KeyStoreError) as error:
            if pool is not None:
                await pool.close()
            reason = masked_dsn(str(error)) or "no answer in time"
            raise KeyStoreError(
                f"cannot open the API key database at {self.where} ({masked_dsn(self.dsn)}): "
                f"{type(error).__name__}: {reason}"
            ) from error
        self._pool = pool

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def __aenter__(self) -> PostgresKeyStore:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection; an outage on the way in or while it is used is
        :class:`StoreUnavailable` (HTTP answers 503 with Retry-After)."""
        if self._pool is None:
            raise RuntimeError(f"the API key database at {self.where} is not open")
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

    # -- keys -------------------------------------------------------------------------
    @staticmethod
    async def _insert(
        db: asyncpg.Connection, tenant: str, tier: str, scopes: Sequence[str], name: str | None
    ) -> IssuedKey:
        secret = new_secret()
        key = ApiKey(new_key_id(), tenant, tier, tuple(scopes), name, int(time.time()))
        await db.execute(
            f"INSERT INTO api_keys ({COLUMNS}, key_sha256) "
            "VALUES ($1, $2, $3, $4, $5, $6, NULL, NULL, $7)",
            key.id, tenant, tier, ",".join(scopes), name, key.created_at,
            secret_digest(secret),
        )  # fmt: skip
        return IssuedKey(key, secret)

    async def create(
        self, tenant: str, tier: str, scopes: Sequence[str], name: str | None = None
    ) -> IssuedKey:
        """A new key; the caller shows its secret once and forgets it."""
        async with self._connection() as db:
            return await self._insert(db, tenant, tier, scopes, name)

    async def create_first(
        self, tenant: str, tier: str, scopes: Sequence[str], name: str | None = None
    ) -> IssuedKey | None:
        """A new key only if there is no key at all (revoked ones count).

        The table lock makes the look and the insert one step for every writer: a second
        instance's lock waits for the first's commit, and its look (a new snapshot, as
        every statement under READ COMMITTED) then finds the first key.
        """
        async with self._connection() as db:
            if await db.fetchval("SELECT EXISTS (SELECT 1 FROM api_keys)"):
                return None  # every start but the first: no lock needed
            async with db.transaction():
                await db.execute("LOCK TABLE api_keys IN EXCLUSIVE MODE")
                if await db.fetchval("SELECT EXISTS (SELECT 1 FROM api_keys)"):
                    return None
                return await self._insert(db, tenant, tier, scopes, name)

    async def find(self, secret: str) -> ApiKey | None:
        """The key whose secret this is, revoked or not; None for no key."""
        digest = secret_digest(secret)
        async with self._connection() as db:
            row = await db.fetchrow(
                f"SELECT {COLUMNS}, key_sha256 FROM api_keys WHERE key_sha256 = $1", digest
            )
        # The index found the row; the constant-time comparison is what vouches for it.
        if row is None or not hmac.compare_digest(str(row[8]), digest):
            return None
        return _key(row)

    async def get(self, key_id: str, tenant: str | None = None) -> ApiKey | None:
        async with self._connection() as db:
            row = await db.fetchrow(f"{SELECT} WHERE id = $1 AND {OF_TENANT}", key_id, tenant)
        return None if row is None else _key(row)

    async def list(self, tenant: str | None = None) -> list[ApiKey]:
        async with self._connection() as db:
            rows = await db.fetch(
                f"{SELECT} WHERE ($1::text IS NULL OR tenant = $1) "
                'ORDER BY tenant COLLATE "C", created_at, id COLLATE "C"',
                tenant,
            )
        return [_key(row) for row in rows]

    async def revoke(self, key_id: str, tenant: str | None = None) -> ApiKey | None:
        """Revoke the key (a key revoked before keeps its first revocation time); None
        when there is no such key (in ``tenant``, if given)."""
        async with self._connection() as db, db.transaction():
            await db.execute(
                f"UPDATE api_keys SET revoked_at = $3 WHERE id = $1 AND {OF_TENANT} "
                "AND revoked_at IS NULL",
                key_id, tenant, int(time.time()),
            )  # fmt: skip
            row = await db.fetchrow(f"{SELECT} WHERE id = $1 AND {OF_TENANT}", key_id, tenant)
        return None if row is None else _key(row)

    async def record_use(self, used: Mapping[str, int]) -> None:
        """Move each key's ``last_used_at`` forward to the given epoch second: one
        statement for the whole batch."""
        if not used:
            return
        async with self._connection() as db:
            await db.execute(
                "UPDATE api_keys AS k SET last_used_at = u.moment "
                "FROM unnest($1::text[], $2::bigint[]) AS u(id, moment) "
                "WHERE k.id = u.id AND (k.last_used_at IS NULL OR k.last_used_at < u.moment)",
                list(used), list(used.values()),
            )  # fmt: skip

    async def count(self) -> tuple[int, int]:
        """(keys in force, keys revoked)."""
        async with self._connection() as db:
            row = await db.fetchrow(
                "SELECT COUNT(*) - COUNT(revoked_at), COUNT(revoked_at) FROM api_keys"
            )
        assert row is not None  # an aggregate always answers one row
        return int(row[0]), int(row[1])


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
            raise KeyStoreError(
                f"the keys in schema {schema} are at version {current}, but this ButterflyFX "
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
