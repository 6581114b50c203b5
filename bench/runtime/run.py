"""Runtime benchmark: how fast the server starts, and what an idle connection costs it.

    .venv/bin/python bench/runtime/run.py

- **Cold start**: from launching ``butterflyfx serve`` (a new process, a new data folder) to
  the first 200 from ``/api/v1/health``, BENCH_STARTS times (5); the median is reported. The
  baseline is the same interpreter starting, importing nothing, and answering on a socket:
  ``python -c`` with a bare HTTP responder, timed the same way, so the ratio shows what our
  imports and start-up add to what any Python server pays.
- **Idle connections**: BENCH_IDLE connections (10,000) each send one request and then stay
  open (HTTP/1.1 keep-alive) while the server's resident memory is read from /proc; the
  memory per connection is the growth over the count. The server's keep-alive timeout and
  connection limit are raised for the run, and the open-file limit of this process (which
  the server inherits) is raised to fit.

Environment: BENCH_STARTS (5), BENCH_IDLE (10000), BENCH_OUTPUT (.benchmarks/runtime.json).
Linux only (/proc). The server runs with the plugins storage.sqlite, graph.sql and http: the
guard plugins' own start-up (a key file, a secret) is timed by the default set, reported too.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from butterflyfx.testing.process import free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DEADLINE = 60.0
OPEN_PLUGINS = "storage.sqlite,graph.sql,http"
DEFAULT_PLUGINS = "storage.sqlite,graph.sql,http,auth.apikey,auth.jwt,ratelimit"
BARE_SERVER = """
import socket, sys
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", int(sys.argv[1])))
listener.listen(16)
while True:
    connection, _ = listener.accept()
    connection.recv(65536)
    connection.sendall(
        b"HTTP/1.1 200 OK\\r\\ncontent-length: 2\\r\\nconnection: close\\r\\n\\r\\nok"
    )
    connection.close()
"""


def _env(plugins: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BUTTERFLYFX_")}
    env["BUTTERFLYFX_PLUGINS"] = plugins
    return env


def _first_200(port: int, process: subprocess.Popen[bytes], started: float) -> float:
    """Seconds from ``started`` to the first 200 on /api/v1/health (polling every 5 ms)."""
    request = b"GET /api/v1/health HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n"
    while time.perf_counter() - started < DEADLINE:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode} while starting")
        try:
            import socket

            with socket.create_connection(("127.0.0.1", port), timeout=1) as connection:
                connection.sendall(request)
                if connection.recv(16).startswith(b"HTTP/1.1 200"):
                    return time.perf_counter() - started
        except OSError:
            pass
        time.sleep(0.005)
    raise RuntimeError("the server did not answer within the deadline")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


def start_ours(plugins: str, folder: Path, *extra: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    command = [
        str(BIN / "butterflyfx"), "serve", "--port", str(port), "--data-dir", str(folder),
        "--log-level", "warning", *extra,
    ]  # fmt: skip
    process = subprocess.Popen(
        command, env=_env(plugins), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL, start_new_session=True, cwd=folder,
    )  # fmt: skip
    return process, port


def cold_starts(plugins: str, times: int) -> list[float]:
    spent = []
    for _ in range(times):
        with tempfile.TemporaryDirectory(prefix="butterflyfx-start-") as scratch:
            started = time.perf_counter()
            process, port = start_ours(plugins, Path(scratch))
            try:
                spent.append(_first_200(port, process, started))
            finally:
                _stop(process)
    return spent


def bare_starts(times: int) -> list[float]:
    spent = []
    for _ in range(times):
        port = free_port()
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-c", BARE_SERVER, str(port)], start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            spent.append(_first_200(port, process, started))
        finally:
            _stop(process)
    return spent


def resident_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


async def hold_idle(port: int, count: int) -> list[asyncio.StreamWriter]:
    """Open ``count`` connections; each sends one request and reads its answer, then idles."""
    request = b"GET /api/v1/health HTTP/1.1\r\nHost: b\r\n\r\n"
    writers: list[asyncio.StreamWriter] = []

    async def one() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1]) for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )  # fmt: skip
        await reader.readexactly(length)
        writers.append(writer)

    for start in range(0, count, 500):  # in waves: the listen backlog is finite
        await asyncio.gather(*(one() for _ in range(min(500, count - start))))
    return writers


def idle_connections(count: int) -> dict[str, Any]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = count * 2 + 1024  # our ends and the server's
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))
    with tempfile.TemporaryDirectory(prefix="butterflyfx-idle-") as scratch:
        process, port = start_ours(
            OPEN_PLUGINS, Path(scratch), "--timeout", "600",
            "--max-connections", str(count * 2),
        )  # fmt: skip
        try:
            _first_200(port, process, time.perf_counter())
            before = resident_kib(process.pid)

            async def measure() -> tuple[int, int]:
                writers = await hold_idle(port, count)
                await asyncio.sleep(1)
                held = resident_kib(process.pid)
                for writer in writers:
                    writer.close()
                return held, len(writers)

            held, opened = asyncio.run(measure())
        finally:
            _stop(process)
    return {
        "connections": opened,
        "rss_before_kib": before,
        "rss_holding_kib": held,
        "kib_per_connection": round((held - before) / opened, 2),
    }


def main() -> int:
    starts = int(os.environ.get("BENCH_STARTS") or 5)
    idle = int(os.environ.get("BENCH_IDLE") or 10_000)
    bare = bare_starts(starts)
    open_server = cold_starts(OPEN_PLUGINS, starts)
    default_server = cold_starts(DEFAULT_PLUGINS, starts)
    held = idle_connections(idle)
    result = {
        "cold_start_s": {
            "bare_python_median": round(statistics.median(bare), 3),
            "open_median": round(statistics.median(open_server), 3),
            "default_median": round(statistics.median(default_server), 3),
            "runs": {"bare": bare, "open": open_server, "default": default_server},
            "seed_claim": 0.5,
        },
        "idle_connections": {**held, "seed_claim_kib": 0.6},
    }
    cold = result["cold_start_s"]
    print(
        f"cold start to first 200 (median of {starts}): bare python {cold['bare_python_median']}"
        f" s, ours open {cold['open_median']} s, ours default plugins "
        f"{cold['default_median']} s (seed claims 0.5 s)"
    )
    print(
        f"{held['connections']} idle keep-alive connections: RSS {held['rss_before_kib']} -> "
        f"{held['rss_holding_kib']} KiB, {held['kib_per_connection']} KiB each (seed claims 0.6)"
    )
    output = Path(os.environ.get("BENCH_OUTPUT") or ROOT / ".benchmarks" / "runtime.json")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2))
    print(f"written to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
