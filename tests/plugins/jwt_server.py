"""A server with ``auth.jwt`` in process, its users, and tokens built by hand.

Users are added through the plugin's own code (what ``butterflyfx users add`` runs);
tokens are forged with joserfc and the server's real secret, read from its file.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.jwk import OctKey

from butterflyfx.core.config import read_config
from butterflyfx.core.context import ServerContext
from butterflyfx.plugins.auth_jwt.passwords import hash_password
from butterflyfx.plugins.auth_jwt.users import DEFAULT_SCOPES, UserStore
from butterflyfx.plugins.http.app import create_app
from butterflyfx.testing import services

PLUGINS = "storage.memory,http,auth.jwt"
LOGIN = "/api/v1/auth/login"
USERS_FILE = "auth-users.sqlite3"
SECRET_FILE = "jwt-secret"


def context(data_dir: Path, env: Mapping[str, str] | None = None, **server: Any) -> ServerContext:
    config = read_config(
        None, env={"BUTTERFLYFX_PLUGINS": PLUGINS, **(env or {})},
        overrides={"data_dir": data_dir, **server},
    )  # fmt: skip
    return ServerContext.build(config)


async def start_and_stop(ctx: ServerContext) -> None:
    try:
        await ctx.start()
    finally:
        await ctx.stop()


def serve(
    data_dir: Path,
    scenario: Callable[[Any], Awaitable[Any]],
    env: Mapping[str, str] | None = None,
    **server: Any,
) -> Any:
    """Run one server life over ``data_dir``; the scenario gets Quart's test client."""

    async def main() -> Any:
        app = create_app(context(data_dir, env, **server))
        async with app.test_app() as running:
            return await scenario(running.test_client())

    return asyncio.run(main())


async def change_users(data_dir: Path, change: Callable[[UserStore], Awaitable[Any]]) -> Any:
    store = UserStore(data_dir / USERS_FILE)
    await store.open()
    try:
        return await change(store)
    finally:
        await store.close()


def add_user(
    data_dir: Path, name: str, password: str, tenant: str = "acme", tier: str = "pro",
    scopes: Iterable[str] = DEFAULT_SCOPES,
) -> None:  # fmt: skip
    async def add(store: UserStore) -> None:
        await store.add(name, tenant, tier, scopes, await hash_password(password))

    asyncio.run(change_users(data_dir, add))


async def login(client: Any, username: Any, password: Any, address: str = "192.0.2.1") -> Any:
    """POST the login from ``address`` (the peer address the server sees)."""
    return await client.post(
        LOGIN, json={"username": username, "password": password},
        scope_base={"client": (address, 40000)},
    )  # fmt: skip


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def server_secret(data_dir: Path) -> bytes:
    return (data_dir / SECRET_FILE).read_text().strip().encode()


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
