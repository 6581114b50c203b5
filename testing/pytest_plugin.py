"""The pytest plugin of ``butterflyfx.testing``: what a plugin's own tests need, no copying.

Installed with ButterflyFX Server, it is loaded by pytest in every environment where the
server is installed (entry point ``butterflyfx`` in the group ``pytest11``);
``pytest -p no:butterflyfx`` leaves it out. It adds fixtures and nothing else, each named
``butterflyfx_...`` so none shadows a fixture of the project using it, and it imports
nothing heavy until a fixture runs, so collection costs what it did:

- ``butterflyfx_server``: starts real ``butterflyfx serve`` processes with the plugins and
  config sections a test gives (or a config file of its own), each on a port the server
  picked, and yields a :class:`ServerLauncher`; every server it started is killed at the
  end. A :class:`RunningServer` has the ``url``, the ``admin_key`` ``auth.apikey``
  printed on its first start (kept across :meth:`RunningServer.restart`), and its logs.
- ``butterflyfx_postgres_schema``: a :class:`PostgresSchema` (``dsn``, ``schema``) of the
  test's own on the PostgreSQL server, dropped afterwards.
- ``butterflyfx_redis_prefix``: a :class:`RedisPrefix` (``url``, ``prefix``) of the test's
  own on the Redis server; its keys are deleted afterwards.

Where PostgreSQL or Redis does not answer, the test skips saying so, and fails instead
under ``BUTTERFLYFX_REQUIRE_SERVICES=1`` (for CI); ``BUTTERFLYFX_TEST_POSTGRES_DSN`` and
``BUTTERFLYFX_TEST_REDIS_URL`` point elsewhere than 127.0.0.1.

The conformance suites stay classes to subclass (:mod:`.storage`, :mod:`.graph`,
:mod:`.auth`): pytest never collects test functions from a plugin module, and a subclass
says which store, engine or auth plugin is under test. The fixtures above give those
subclasses their services; ``docs/plugins.md`` shows both together.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .process import ProcessNotReady, wait_until_ready

__all__ = [
    "PostgresSchema",
    "RedisPrefix",
    "RunningServer",
    "ServerLauncher",
    "butterflyfx_postgres_schema",
    "butterflyfx_redis_prefix",
    "butterflyfx_server",
]

# The admin key auth.apikey prints on a first start, and the line serve prints once it listens.
API_KEY = re.compile(r"sk-butterflyfx-[A-Za-z0-9_-]{43}")
LISTENING = re.compile(r"^ButterflyFX Server listening on (http://\S+) ", re.MULTILINE)
# Deadlines only keep a broken start from hanging a run: a cold interpreter importing
# every plugin on a busy machine is slow. Nothing here is a performance check.
START_DEADLINE = 120.0
STOP_DEADLINE = 60.0


@dataclass(frozen=True)
class PostgresSchema:
    """A schema of the test's own: ``dsn`` reaches the database, ``schema`` is the name."""

    dsn: str
    schema: str


@dataclass(frozen=True)
class RedisPrefix:
    """A key prefix of the test's own: ``url`` reaches Redis, ``prefix`` starts each key."""

    url: str
    prefix: str


@dataclass
class RunningServer:
    """One ``butterflyfx serve`` process (with its workers, in a process group of its own)."""

    url: str
    admin_key: str | None
    config: Path
    data_dir: Path
    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path
    launcher: ServerLauncher = field(repr=False)
    options: dict[str, Any] = field(repr=False, default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        """``Authorization: Bearer <admin key>`` when there is one, else nothing."""
        return {"Authorization": f"Bearer {self.admin_key}"} if self.admin_key else {}

    def output(self) -> str:
        """What the server printed on stdout (the startup line, a bootstrapped key)."""
        return self.stdout.read_text(errors="replace")

    def log(self) -> str:
        """Its log on stderr, JSON lines."""
        return self.stderr.read_text(errors="replace")

    def stop(self, signum: int = signal.SIGTERM) -> int:
        """Send ``signum`` to the server alone, as a supervisor would; its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
        return self.process.wait(STOP_DEADLINE)

    def restart(self) -> RunningServer:
        """Stop it (SIGTERM) if it runs, then start it again on the same config and data;
        the new server, on a new port, with the same admin key."""
        code = self.stop()
        if code != 0:
            raise AssertionError(f"the server exited with {code} when stopped:\n{self.log()}")
        return self.launcher.start(
            config=self.config, data_dir=self.data_dir, known_key=self.admin_key, **self.options
        )


class ServerLauncher:
    """What the ``butterflyfx_server`` fixture yields: :meth:`start` serves and waits."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.servers: list[RunningServer] = []

    def start(
        self,
        plugins: Sequence[str] | None = None,
        *,
        sections: str = "",
        config: Path | None = None,
        data_dir: Path | None = None,
        workers: int | None = None,
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
        known_key: str | None = None,
    ) -> RunningServer:
        """``butterflyfx serve`` on ``127.0.0.1`` (a port it picks), polled until
        ``/api/v1/health`` answers 2xx; raises :class:`ProcessNotReady` with its log if it
        exits or does not answer first.

        Either ``plugins`` (and ``sections``, TOML for their config sections), written to a
        new config file, or ``config``, a file of the test's. ``data_dir`` defaults to a
        new folder; ``workers`` (else the config's) is ``--workers``. The server's
        environment is this one without any ``BUTTERFLYFX_`` variable, plus ``env``;
        ``args`` are more ``serve`` flags. ``known_key``: the admin key to use when the
        server prints none (its data has keys already).
        """
        run = len(self.servers)
        cwd = self.folder / f"server-{run}"
        cwd.mkdir(parents=True)
        if (plugins is None) == (config is None):
            raise TypeError("give either plugins (and sections) or a config file")
        if config is None:
            config = cwd / "butterflyfx.toml"
            config.write_text(f"plugins = {list(plugins or [])!r}\n{sections}", encoding="utf-8")
        elif sections:
            raise TypeError("sections go in the config file given")
        data_dir = data_dir if data_dir is not None else cwd / "data"
        stdout, stderr = cwd / "stdout.txt", cwd / "stderr.jsonl"
        command = [
            sys.executable, "-m", "butterflyfx.server.cli", "serve", "--config", str(config),
            "--data-dir", str(data_dir), "--host", "127.0.0.1", "--port", "0",
            "--log-format", "json", *([] if workers is None else ["--workers", str(workers)]),
            *args,
        ]  # fmt: skip
        environment = {k: v for k, v in os.environ.items() if not k.startswith("BUTTERFLYFX_")}
        with stdout.open("wb") as out, stderr.open("wb") as err:
            process = subprocess.Popen(
                command, cwd=cwd, env={**environment, **(env or {})}, stdout=out, stderr=err,
                stdin=subprocess.DEVNULL, start_new_session=True,  # its group: all its workers
            )  # fmt: skip
        options = {"workers": workers, "env": dict(env or {}), "args": list(args)}
        server = RunningServer(
            "", None, config, data_dir, process, stdout, stderr, self, options
        )  # fmt: skip
        self.servers.append(server)
        server.url = _announced_url(server)
        wait_until_ready(
            process, f"{server.url}/api/v1/health", deadline=START_DEADLINE, log=server.log,
            name="butterflyfx serve", interval=0.2,
        )  # fmt: skip
        printed = API_KEY.findall(server.output())
        server.admin_key = printed[-1] if printed else known_key
        return server

    def kill_all(self) -> None:
        """SIGKILL every server started, whatever state it is in."""
        for server in self.servers:
            try:
                os.killpg(server.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                server.process.wait(STOP_DEADLINE)
            except subprocess.TimeoutExpired:
                pass


def _announced_url(server: RunningServer) -> str:
    """The URL in the line ``serve`` prints once it listens."""
    give_up = time.monotonic() + START_DEADLINE
    while True:
        found = LISTENING.search(server.output())
        if found:
            return found.group(1)
        if server.process.poll() is not None:
            raise ProcessNotReady(
                f"butterflyfx serve exited with {server.process.returncode}:\n{server.log()}"
            )
        if time.monotonic() >= give_up:
            raise ProcessNotReady(
                f"butterflyfx serve did not say where it listens within {START_DEADLINE:g}s:\n"
                f"{server.log()}"
            )
        time.sleep(0.1)


@pytest.fixture
def butterflyfx_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerLauncher]:
    """Starts real ``butterflyfx serve`` processes: ``butterflyfx_server.start(["storage.x",
    "http"], sections="[storage.x]\\n...")`` returns a :class:`RunningServer`. All are
    killed when the test ends."""
    launcher = ServerLauncher(tmp_path_factory.mktemp("butterflyfx-server"))
    try:
        yield launcher
    finally:
        launcher.kill_all()


@pytest.fixture
def butterflyfx_postgres_schema() -> Iterator[PostgresSchema]:
    """A schema of this test's own on the test PostgreSQL server, dropped afterwards."""
    from .services import POSTGRES_DSN, postgres_schema  # drivers load only when asked

    with postgres_schema(POSTGRES_DSN) as schema:
        yield PostgresSchema(POSTGRES_DSN, schema)


@pytest.fixture
def butterflyfx_redis_prefix() -> Iterator[RedisPrefix]:
    """A key prefix of this test's own on the test Redis server, its keys deleted afterwards."""
    from .services import REDIS_URL, redis_prefix  # drivers load only when asked

    with redis_prefix(REDIS_URL) as prefix:
        yield RedisPrefix(REDIS_URL, prefix)
