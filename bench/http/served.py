"""The server processes a benchmark row runs: ours (``butterflyfx serve``) and the bare app
on Hypercorn, each in its own process group so stopping one stops every worker."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from butterflyfx.testing.process import wait_until_ready as wait_until_answering

HERE = Path(__file__).resolve().parent
BARE_APP = HERE / "bare_app.py"
BIN = Path(sys.executable).parent  # the venv's bin, without resolving its python symlink
START_DEADLINE = 30.0
# Calls to a server on this machine must never go through an http_proxy from the environment.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
SEED = {
    "expression_type": "lambda",
    "expression_code": "lambda **kw: kw.get('x', 0) * kw.get('y', 0)",
    "metadata": {"name": "multiply_substrate", "description": "Multiplies x and y"},
}


@dataclass
class Server:
    """A server process (and its Hypercorn workers, in its own process group)."""

    name: str
    process: subprocess.Popen[bytes]
    url: str
    log: Path
    headers: dict[str, str] = field(default_factory=dict)  # what every request sends

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def butterflyfx_command() -> list[str]:
    script = BIN / "butterflyfx"
    if script.exists():
        return [str(script)]
    found = shutil.which("butterflyfx")
    if found:
        return [found]
    return [sys.executable, "-m", "butterflyfx.server.cli"]


def our_environment() -> dict[str, str]:
    """This environment without BUTTERFLYFX_* variables: the config file says it all."""
    return {k: v for k, v in os.environ.items() if not k.startswith("BUTTERFLYFX_")}


def _spawn(name: str, command: list[str], log: Path, env: dict[str, str], url: str) -> Server:
    with log.open("wb") as out:
        process = subprocess.Popen(  # its own group, so stop() reaches every worker
            command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, cwd=log.parent, start_new_session=True,
        )  # fmt: skip
    return Server(name, process, url, log)


def api_key(config: Path, data_dir: Path) -> str:
    """A pro key of tenant default, made the way an operator makes one."""
    done = subprocess.run(
        [*butterflyfx_command(), "keys", "create", "--config", str(config),
         "--data-dir", str(data_dir), "--tenant", "default", "--tier", "pro"],
        capture_output=True, text=True, timeout=60, env=our_environment(),
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"butterflyfx keys create failed: {done.stderr}")
    return done.stdout.strip().splitlines()[-1]


def start_ours(
    name: str, config: Path, data_dir: Path, port: int, workers: int, key: str | None
) -> Server:
    data_dir.mkdir(parents=True, exist_ok=True)
    command = [
        *butterflyfx_command(), "serve", "--config", str(config), "--host", "127.0.0.1",
        "--port", str(port), "--workers", str(workers), "--data-dir", str(data_dir),
        *os.environ.get("BENCH_SERVE_ARGS", "").split(),
    ]  # fmt: skip
    log = data_dir / f"{name}.log"
    server = _spawn(name, command, log, our_environment(), f"http://127.0.0.1:{port}")
    if key is not None:
        server.headers["Authorization"] = f"Bearer {key}"
    return server


def start_bare(name: str, port: int, workers: int, env: dict[str, str], log_dir: Path) -> Server:
    """The bare app on Hypercorn; ``env`` names its engine and where the rows are."""
    command = [
        sys.executable, "-m", "hypercorn", "--workers", str(workers),
        "--bind", f"127.0.0.1:{port}", f"{BARE_APP}:app",
        # what `butterflyfx serve` gives Hypercorn by default (server/serve.py)
        "--backlog", "1000", "--keep-alive", "5", "--graceful-timeout", "10",
    ]  # fmt: skip
    log = log_dir / f"{name}.log"
    return _spawn(name, command, log, {**os.environ, **env}, f"http://127.0.0.1:{port}")


def stop(server: Server, grace: float = 10.0) -> None:
    """SIGTERM the server's process group, then SIGKILL whatever is left after ``grace``."""
    if server.process.poll() is None:
        try:
            os.killpg(server.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            server.process.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    try:  # workers of a parent that died still hold the group id
        os.killpg(server.process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    server.process.wait(5)


@contextmanager
def running(server: Server) -> Iterator[Server]:
    try:
        yield server
    finally:
        stop(server)


def request(
    method: str,
    url: str,
    body: Any = None,
    timeout: float = 5.0,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """One HTTP call with the standard library; returns (status, parsed JSON body)."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {**(headers or {}), **({"Content-Type": "application/json"} if data else {})}
    call = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with _DIRECT.open(call, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        text = error.read()
        try:
            return error.code, json.loads(text)
        except ValueError:
            return error.code, text.decode(errors="replace")


def wait_until_ready(server: Server, path: str, deadline: float = START_DEADLINE) -> None:
    """Poll ``path`` until it answers 2xx; fail with the server's log if it dies or stalls."""
    wait_until_answering(
        server.process, server.url + path, deadline=deadline, log=server.log_tail,
        name=f"{server.name} server",
    )  # fmt: skip


def create_seed(ours: Server) -> str:
    status, body = request("POST", ours.url + "/api/v1/substrates", SEED, headers=ours.headers)
    if status not in (200, 201) or not isinstance(body, dict) or "substrate_id" not in body:
        raise RuntimeError(f"creating the seed substrate answered {status}: {body}")
    return str(body["substrate_id"])
