"""A server with ``auth.apikey`` in process, its keys in a temporary folder's SQLite file or
in a PostgreSQL schema of the test's own, and what the stories say to it: keys issued as
``butterflyfx keys create`` would, bearer headers, problem checks. Everything is real: the
Quart app, the guard, the key file or database."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from butterflyfx.core.config import read_config
from butterflyfx.core.context import ServerContext
from butterflyfx.plugins.auth_apikey import KeyStorage, KeyStore, PostgresKeyStore
from butterflyfx.plugins.http.app import create_app

API = "/api/v1"
PLUGINS = "storage.memory,http,auth.apikey"
KEY_FILE = "auth-keys.sqlite3"


@dataclass(frozen=True)
class KeyPlace:
    """Where a test server keeps its keys: the SQLite file in ``data_dir``, or, with
    ``database``, table api_keys of ``schema`` there (``data_dir`` then holds no key)."""

    data_dir: Path
    database: str | None = None
    schema: str | None = None

    @property
    def env(self) -> dict[str, str]:
        """The settings that point a server (or the keys command) here."""
        if self.database is None or self.schema is None:
            return {}
        return {
            "BUTTERFLYFX_AUTH_APIKEY__DATABASE": self.database,
            "BUTTERFLYFX_AUTH_APIKEY__SCHEMA": self.schema,
        }

    def store(self) -> KeyStorage:
        """A store of its own on these keys, as the ``keys`` command opens one."""
        if self.database is None or self.schema is None:
            return KeyStore(self.data_dir / KEY_FILE)
        return PostgresKeyStore(self.database, schema=self.schema)

    def stored(self) -> bytes:
        """Everything kept about the keys, as bytes: the SQLite files, or every row."""
        if self.database is None:
            return b"".join(path.read_bytes() for path in self.data_dir.glob(f"{KEY_FILE}*"))

        async def rows() -> bytes:
            db = await asyncpg.connect(self.database, timeout=10)
            try:
                found = await db.fetch(
                    f'SELECT row_to_json(k)::text FROM "{self.schema}".api_keys k'
                )
            finally:
                await db.close()
            return "\n".join(row[0] for row in found).encode()

        return asyncio.run(rows())


def run_server(
    place: Path | KeyPlace,
    scenario: Callable[[Any], Awaitable[Any]],
    plugins: str = PLUGINS,
    bootstrap: bool = False,
    env: Mapping[str, str] | None = None,
) -> Any:
    """One server life over ``place`` (a data folder: keys in its SQLite file);
    ``scenario(client)`` runs while it serves."""

    async def main() -> Any:
        app = create_app(server_context(place, plugins, bootstrap, env))
        async with app.test_app() as running:
            return await scenario(running.test_client())

    return asyncio.run(main())


def server_context(
    place: Path | KeyPlace,
    plugins: str = PLUGINS,
    bootstrap: bool = False,
    env: Mapping[str, str] | None = None,
) -> ServerContext:
    """The context of a server over ``place`` (not started)."""
    place = place if isinstance(place, KeyPlace) else KeyPlace(place)
    settings = {"BUTTERFLYFX_PLUGINS": plugins, **place.env, **(env or {})}
    if not bootstrap:
        settings["BUTTERFLYFX_AUTH_APIKEY__BOOTSTRAP"] = "false"
    config = read_config(None, env=settings, overrides={"data_dir": place.data_dir})
    return ServerContext.build(config)


async def issue(
    place: Path | KeyPlace,
    tenant: str,
    tier: str = "pro",
    scopes: tuple[str, ...] = ("read", "write", "invoke"),
) -> str:
    """A new key, written the way the ``keys create`` command writes it (its own
    connection, beside the running server's); returns the secret."""
    place = place if isinstance(place, KeyPlace) else KeyPlace(place)
    store = place.store()
    await store.open()
    try:
        issued = await store.create(tenant, tier, scopes)
    finally:
        await store.close()
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
