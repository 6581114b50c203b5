"""The HTTP API in process: a real app over a real context, driven by Quart's test client.

Tests stay synchronous (no pytest-asyncio): ``serve(scenario)`` builds the app, runs its
``before_serving`` (which starts the context), awaits ``scenario(client)`` and shuts down.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from butterflyfx.core.config import read_config
from butterflyfx.core.context import ServerContext
from butterflyfx.plugins.http.app import create_app

Scenario = Callable[[Any], Awaitable[Any]]


def build_app(data_dir: Path, plugins: str = "storage.memory,http", **server: Any) -> Any:
    config = read_config(
        None, env={"BUTTERFLYFX_PLUGINS": plugins}, overrides={"data_dir": data_dir, **server}
    )
    return create_app(ServerContext.build(config))


@pytest.fixture
def serve(tmp_path: Path) -> Callable[..., Any]:
    """``serve(scenario, plugins=..., **server_settings)`` runs one server life."""

    def run(scenario: Scenario, plugins: str = "storage.memory,http", **server: Any) -> Any:
        async def main() -> Any:
            app = build_app(tmp_path, plugins, **server)
            async with app.test_app() as running:
                return await scenario(running.test_client())

        return asyncio.run(main())

    return run
