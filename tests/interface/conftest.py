"""Real ``butterflyfx serve`` processes for the client's stories, one per module.

``server``: SQLite storage, the SQL graph engine, API keys, JWT logins (user ``alice``,
added with the ``users`` command before the start) and metrics: every route of the API.
``limited_server``: API keys and a rate limiter whose ``free`` tier allows 3 requests a
minute and ``pro`` tier 1 a second. Both are killed when their module ends.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from butterflyfx.interface.client import ButterflyFX
from butterflyfx.testing.pytest_plugin import RunningServer, ServerLauncher

PASSWORD = "a long and unguessable passphrase"
COMMAND_TIMEOUT = 90.0
EVERYTHING = """plugins = [
    "storage.sqlite", "graph.sql", "http", "auth.apikey", "auth.jwt", "metrics",
]
"""
LIMITED = """plugins = ["storage.sqlite", "http", "auth.apikey", "ratelimit"]

[ratelimit]
anonymous = "1000/minute"

[ratelimit.tiers]
free = "3/minute"
pro = "1/second"
enterprise = "unlimited"
"""


def _launcher(factory: pytest.TempPathFactory) -> ServerLauncher:
    return ServerLauncher(factory.mktemp("client-server"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    launcher = _launcher(tmp_path_factory)
    folder = tmp_path_factory.mktemp("client-config")
    config, data = folder / "butterflyfx.toml", folder / "data"
    config.write_text(EVERYTHING, encoding="utf-8")
    added = subprocess.run(
        [sys.executable, "-m", "butterflyfx.server.cli", "users", "add", "alice",
         "--tenant", "default", "--tier", "pro", "--password-stdin",
         "--config", str(config), "--data-dir", str(data)],
        input=PASSWORD + "\n", capture_output=True, text=True, timeout=COMMAND_TIMEOUT,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    try:
        yield launcher.start(config=config, data_dir=data)
    finally:
        launcher.kill_all()


@pytest.fixture(scope="module")
def limited_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    launcher = _launcher(tmp_path_factory)
    config = tmp_path_factory.mktemp("limited-config") / "butterflyfx.toml"
    config.write_text(LIMITED, encoding="utf-8")
    try:
        yield launcher.start(config=config)
    finally:
        launcher.kill_all()


@pytest.fixture
def alice() -> tuple[str, str]:
    """The name and password of the user the ``server`` fixture added."""
    return "alice", PASSWORD


@pytest.fixture
def client(server: RunningServer) -> Iterator[ButterflyFX]:
    """A client with the server's admin key (tenant ``default``)."""
    with ButterflyFX(server.url, api_key=server.admin_key, retries=0) as made:
        yield made
