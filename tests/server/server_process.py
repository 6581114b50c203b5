"""Real ``butterflyfx`` processes: started on free ports, polled until healthy, always stopped.

Deadlines here only keep a broken run from hanging; no test asserts how fast anything is.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from butterflyfx.testing.process import free_port, wait_until_ready

API_KEY = re.compile(r"sk-butterflyfx-[A-Za-z0-9_-]{43}")
START_DEADLINE = 90.0  # a cold interpreter importing Quart on a busy 2-core machine
STOP_DEADLINE = 60.0
COMMAND_TIMEOUT = 90.0
INSTALLED_SCRIPT = Path(sys.executable).parent / "butterflyfx"


def clean_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any BUTTERFLYFX_ setting, plus ``extra``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("BUTTERFLYFX_")}
    return {**env, **(extra or {})}


def wait_for(condition: Any, deadline: float, what: str) -> Any:
    give_up = time.monotonic() + deadline
    while time.monotonic() < give_up:
        result = condition()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what} after {deadline:.0f}s")


@dataclass
class Server:
    """One ``butterflyfx serve`` process (and its workers, all in its own process group)."""

    process: subprocess.Popen[bytes]
    url: str
    stdout: Path
    stderr: Path
    known_key: str | None = None  # an admin key an earlier server on this data printed

    @property
    def admin_key(self) -> str | None:
        """The admin key this server printed on its first start, else the one known before."""
        printed = API_KEY.findall(self.output())
        return printed[-1] if printed else self.known_key

    def output(self) -> str:
        return self.stdout.read_text(errors="replace")

    def log_text(self) -> str:
        return self.stderr.read_text(errors="replace")

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        """The JSON log events on stderr (``--log-format json``), optionally of one name."""
        found = []
        for line in self.log_text().splitlines():
            if line.startswith("{"):
                event = json.loads(line)
                if name is None or event.get("event") == name:
                    found.append(event)
        return found

    def client(self, key: str | None = None) -> httpx.Client:
        """A client sending ``key``, else the admin key (when auth.apikey printed one)."""
        chosen = key or self.admin_key
        headers = {"Authorization": f"Bearer {chosen}"} if chosen else {}
        return httpx.Client(base_url=self.url, timeout=30.0, headers=headers)

    def wait_ready(self, deadline: float = START_DEADLINE) -> Server:
        """Poll GET /api/v1/health until it answers 2xx; fail with the log if it dies."""
        wait_until_ready(
            self.process, self.url + "/api/v1/health", deadline=deadline, log=self.log_text,
            name="the server", interval=0.2,
        )  # fmt: skip
        return self

    def send(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait(self, deadline: float = STOP_DEADLINE) -> int:
        return self.process.wait(deadline)

    def stop(self, signum: int = signal.SIGTERM) -> int:
        """Send ``signum`` to the server process alone, as a supervisor would; its exit code."""
        self.send(signum)
        return self.wait()

    def destroy(self) -> None:
        """SIGKILL the whole process group, whatever state it is in."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.process.wait(STOP_DEADLINE)
        except subprocess.TimeoutExpired:
            pass


@dataclass
class Butterflyfx:
    """Runs the CLI in ``cwd`` with a clean environment; every server is killed at the end."""

    cwd: Path
    env: dict[str, str] = field(default_factory=clean_environment)
    servers: list[Server] = field(default_factory=list)
    use_installed_script: bool = False

    def command(self) -> list[str]:
        if self.use_installed_script:
            return [str(INSTALLED_SCRIPT)]
        return [sys.executable, "-m", "butterflyfx.server.cli"]

    def run(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.command(), *args],
            cwd=self.cwd,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )

    def start(
        self, *args: str, port: int | None = None, env: dict[str, str] | None = None
    ) -> Server:
        """Start ``butterflyfx serve ARGS --port PORT --log-format json`` (not yet ready)."""
        port = free_port() if port is None else port
        run_id = len(self.servers)
        stdout = self.cwd / f"server-{run_id}.out"
        stderr = self.cwd / f"server-{run_id}.log"
        with stdout.open("wb") as out, stderr.open("wb") as err:
            process = subprocess.Popen(
                [*self.command(), "serve", *args, "--port", str(port), "--log-format", "json"],
                cwd=self.cwd,
                env={**self.env, **(env or {})},
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own group: cleanup reaches every worker
            )
        known = next((s.admin_key for s in reversed(self.servers) if s.admin_key), None)
        server = Server(process, f"http://127.0.0.1:{port}", stdout, stderr, known)
        self.servers.append(server)
        return server
