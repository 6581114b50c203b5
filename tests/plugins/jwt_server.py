"""A server with ``auth.jwt`` in process, its users, and tokens built by hand.

Users are added through the plugin's own code (what ``butterflyfx users add`` runs), into
the data folder's SQLite file or a PostgreSQL schema of the test's own (a
:class:`UserPlace`); tokens are forged with joserfc and the server's real secret, read
from its file or its database.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from joserfc import jwt
from joserfc.jwk import OctKey

from butterflyfx.core.config import read_config
from butterflyfx.core.context import ServerContext
from butterflyfx.plugins.auth_jwt.passwords import hash_password
from butterflyfx.plugins.auth_jwt.postgres_users import PostgresUserStore
from butterflyfx.plugins.auth_jwt.stores import UserStorage
from butterflyfx.plugins.auth_jwt.users import DEFAULT_SCOPES, UserStore
from butterflyfx.plugins.http.app import create_app
from butterflyfx.testing import services

PLUGINS = "storage.memory,http,auth.jwt"
LOGIN = "/api/v1/auth/login"
USERS_FILE = "auth-users.sqlite3"
SECRET_FILE = "jwt-secret"


@dataclass(frozen=True)
class UserPlace:
    """Where a test server keeps its users: the SQLite file in ``data_dir``, or, with
    ``database``, tables of ``schema`` there (the generated secret with them)."""

    data_dir: Path
    database: str | None = None
    schema: str | None = None

    @property
    def env(self) -> dict[str, str]:
        if self.database is None or self.schema is None:
            return {}
        return {
            "BUTTERFLYFX_AUTH_JWT__DATABASE": self.database,
            "BUTTERFLYFX_AUTH_JWT__SCHEMA": self.schema,
        }

    def store(self) -> UserStorage:
        """A store of its own on these users, as the ``users`` command opens one."""
        if self.database is None or self.schema is None:
            return UserStore(self.data_dir / USERS_FILE)
        return PostgresUserStore(self.database, schema=self.schema)

    def in_place(self, data_dir: Path) -> UserPlace:
        """Another server's place (its own data folder) on the same users."""
        return UserPlace(data_dir, self.database, self.schema)


Place = Path | UserPlace


def place_of(place: Place) -> UserPlace:
    return place if isinstance(place, UserPlace) else UserPlace(place)


def context(place: Place, env: Mapping[str, str] | None = None, **server: Any) -> ServerContext:
    place = place_of(place)
    config = read_config(
        None, env={"BUTTERFLYFX_PLUGINS": PLUGINS, **place.env, **(env or {})},
        overrides={"data_dir": place.data_dir, **server},
    )  # fmt: skip
    return ServerContext.build(config)


async def start_and_stop(ctx: ServerContext) -> None:
    try:
        await ctx.start()
    finally:
        await ctx.stop()


def serve(
    place: Place,
    scenario: Callable[[Any], Awaitable[Any]],
    env: Mapping[str, str] | None = None,
    **server: Any,
) -> Any:
    """Run one server life over ``place``; the scenario gets Quart's test client."""

    async def main() -> Any:
        app = create_app(context(place, env, **server))
        async with app.test_app() as running:
            return await scenario(running.test_client())

    return asyncio.run(main())


async def change_users(place: Place, change: Callable[[UserStorage], Awaitable[Any]]) -> Any:
    store = place_of(place).store()
    await store.open()
    try:
        return await change(store)
    finally:
        await store.close()


def add_user(
    place: Place, name: str, password: str, tenant: str = "acme", tier: str = "pro",
    scopes: Iterable[str] = DEFAULT_SCOPES,
) -> None:  # fmt: skip
    async def add(store: UserStorage) -> None:
        await store.add(name, tenant, tier, scopes, await hash_password(password))

    asyncio.run(change_users(place, add))


async def login(client: Any, username: Any, password: Any, address: str = "192.0.2.1") -> Any:
    """POST the login from ``address`` (the peer address the server sees)."""
    return await client.post(
        LOGIN, json={"username": username, "password": password},
        scope_base={"client": (address, 40000)},
    )  # fmt: skip


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def server_secret(place: Place) -> bytes:
    """The generated secret the server signs with: in its file, or in its database."""
    place = place_of(place)
    if place.database is None:
        return (place.data_dir / SECRET_FILE).read_text().strip().encode()
    stored = await stored_secret(place)
    assert stored is not None, "no secret was generated into the database"
    return stored


async def stored_secret(place: UserPlace) -> bytes | None:
    """The secret row of the place's database; None when none was generated."""
    assert place.database is not None
    db = await asyncpg.connect(place.database, timeout=10)
    try:
        text = await db.fetchval(f'SELECT secret FROM "{place.schema}".jwt_signing_secret')
    finally:
        await db.close()
    return None if text is None else str(text).encode()


def claims(**changes: Any) -> dict[str, Any]:
    """What a genuine token of alice (tenant acme) says, with ``changes``."""
    now = int(time.time())
    values = {
        "iss": "butterflyfx", "aud": "butterflyfx-api", "sub": "alice", "tenant": "acme",
        "tier": "pro", "scopes": ["read", "write", "invoke"], "iat": now, "exp": now + 600,
        "jti": uuid.uuid4().hex,
    }  # fmt: skip
    values.update(changes)
    return {key: value for key, value in values.items() if value is not None}


def signed(secret: bytes, values: dict[str, Any], algorithm: str = "HS256") -> str:
    return jwt.encode({"alg": algorithm}, values, OctKey.import_key(secret), [algorithm])


def part(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def unpart(text: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


REDIS_URL = "redis://127.0.0.1:6379/0"


def redis_or_skip(url: str = REDIS_URL) -> str:
    """``url`` when a Redis answers there (see butterflyfx.testing.services)."""
    services.redis_client(url).close()
    return url
