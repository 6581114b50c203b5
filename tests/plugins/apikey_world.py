"""A server with ``auth.apikey`` in process, its key file in a temporary folder, and what
the stories say to it: keys issued as ``butterflyfx keys create`` would, bearer headers,
problem checks. Everything is real: the Quart app, the guard, the SQLite key file."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson

from butterflyfx.core.config import read_config
from butterflyfx.core.context import ServerContext
from butterflyfx.plugins.auth_apikey import KeyStore
from butterflyfx.plugins.http.app import create_app

API = "/api/v1"
PLUGINS = "storage.memory,http,auth.apikey"
KEY_FILE = "auth-keys.sqlite3"


def run_server(
    data_dir: Path,
    scenario: Callable[[Any], Awaitable[Any]],
    plugins: str = PLUGINS,
    bootstrap: bool = False,
) -> Any:
    """One server life over ``data_dir``; ``scenario(client)`` runs while it serves."""
    env = {"BUTTERFLYFX_PLUGINS": plugins}
    if not bootstrap:
        env["BUTTERFLYFX_AUTH_APIKEY__BOOTSTRAP"] = "false"

    async def main() -> Any:
        config = read_config(None, env=env, overrides={"data_dir": data_dir})
        app = create_app(ServerContext.build(config))
        async with app.test_app() as running:
            return await scenario(running.test_client())

    return asyncio.run(main())


async def issue(
    data_dir: Path,
    tenant: str,
    tier: str = "pro",
    scopes: tuple[str, ...] = ("read", "write", "invoke"),
) -> str:
    """A new key, written to the key file the way the ``keys create`` command writes it
    (its own connection, beside the running server's); returns the secret."""
    async with KeyStore(data_dir / KEY_FILE) as store:
        issued = await store.create(tenant, tier, scopes)
    return issued.secret


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def body(response: Any) -> Any:
    return orjson.loads(await response.get_data())


async def problem(response: Any, status: int) -> dict[str, Any]:
    """Assert ``response`` is an RFC 9457 problem with ``status``; return its body."""
    data = await response.get_data()
    assert response.status_code == status, data
    assert response.headers["Content-Type"] == "application/problem+json"
    parsed: dict[str, Any] = orjson.loads(data)
    assert parsed["status"] == status and parsed["title"] and parsed["detail"]
    assert parsed["type"].startswith("https://butterflyfx.dev/problems/")
    return parsed


async def create_substrate(client: Any, secret: str, code: str) -> Any:
    response = await client.post(
        f"{API}/substrates",
        json={"expression_type": "lambda", "expression_code": code},
        headers=bearer(secret),
    )
    assert response.status_code in (200, 201), await response.get_data()
    return response
