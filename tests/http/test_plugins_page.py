"""``GET /-/plugins``: an admin sees which plugins the server runs, from which distribution,
hooking what and in which state, exactly as ``butterflyfx plugins --json`` lists them."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import orjson

from butterflyfx.core.config import read_config
from butterflyfx.core.context import ServerContext
from butterflyfx.core.plugins import TRACING
from butterflyfx.plugins.auth_apikey import KeyStore
from butterflyfx.plugins.http.app import create_app

PLUGINS = "storage.memory,http,auth.apikey"
PAGE = "/-/plugins"


def run_server(data_dir: Path, scenario: Any) -> Any:
    """One server life with API keys; ``scenario(client, keys)`` gets an admin key and a
    reader's, issued as ``butterflyfx keys create`` would."""
    env = {"BUTTERFLYFX_PLUGINS": PLUGINS, "BUTTERFLYFX_AUTH_APIKEY__BOOTSTRAP": "false"}

    async def main() -> Any:
        async with KeyStore(data_dir / "auth-keys.sqlite3") as store:
            admin = (await store.create("acme", "pro", ("read", "admin"))).secret
            reader = (await store.create("acme", "pro", ("read",))).secret
        config = read_config(None, env=env, overrides={"data_dir": data_dir})
        app = create_app(ServerContext.build(config))
        async with app.test_app() as running:
            return await scenario(running.test_client(), {"admin": admin, "reader": reader})

    return asyncio.run(main())


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def fetch(client: Any, key: str | None) -> tuple[int, Any]:
    response = await client.get(PAGE, headers=bearer(key) if key else {})
    return response.status_code, orjson.loads(await response.get_data())


def test_an_admin_sees_every_plugin_with_its_version_hooks_and_state(tmp_path):
    async def scenario(client, keys):
        return await fetch(client, keys["admin"])

    status, page = run_server(tmp_path, scenario)

    assert status == 200
    assert page["worker"] == str(os.getpid()) and page["tracing"] is TRACING
    rows = {row["name"]: row for row in page["plugins"]}
    enabled = [row["name"] for row in page["plugins"] if row["enabled"]]
    assert enabled == ["storage.memory", "http", "auth.apikey"]  # the config's order
    assert all(rows[name]["state"] == "started" for name in enabled)
    http = rows["http"]
    assert (http["version"], http["distribution"]) == (version("butterflyfx"), "butterflyfx")
    assert http["module"] == "butterflyfx.plugins.http"
    assert {"butterflyfx_asgi_app", "butterflyfx_routes"} <= set(http["hooks"])
    assert "butterflyfx_authenticate" in rows["auth.apikey"]["hooks"]
    sqlite = rows["storage.sqlite"]  # installed, not in this config
    assert (sqlite["enabled"], sqlite["state"]) == (False, "not enabled")
    assert "butterflyfx_storage" in sqlite["hooks"]


def test_the_page_is_for_admins_only(tmp_path):
    async def scenario(client, keys):
        return await fetch(client, None), await fetch(client, keys["reader"])

    (anonymous, no_key), (reader, refused) = run_server(tmp_path, scenario)

    assert anonymous == 401 and no_key["type"].endswith("/unauthenticated")
    assert reader == 403 and refused["action"] == "admin"


def test_the_page_and_the_plugins_command_agree(tmp_path):
    async def scenario(client, keys):
        return await fetch(client, keys["admin"])

    _, page = run_server(tmp_path, scenario)
    env = {key: value for key, value in os.environ.items() if not key.startswith("BUTTERFLYFX_")}
    listed = subprocess.run(
        [sys.executable, "-m", "butterflyfx.server.cli", "plugins", "--json"],
        env={**env, "BUTTERFLYFX_PLUGINS": PLUGINS}, cwd=tmp_path,
        capture_output=True, text=True, timeout=90, check=True,
    )  # fmt: skip
    command = json.loads(listed.stdout)

    def started(row: dict[str, Any]) -> dict[str, Any]:
        # the command loads the plugins without starting them; the page's server runs them
        return {**row, "state": "started"} if row["enabled"] else row

    assert page["plugins"] == [started(row) for row in command]
