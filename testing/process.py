"""Servers run as child processes by tests and benchmarks: a free port, and waiting for HTTP.

Standard library only, so a benchmark driver can use it without the test extra::

    port = free_port()
    process = subprocess.Popen([..., "--port", str(port)], stderr=log_file)
    wait_until_ready(process, f"http://127.0.0.1:{port}/api/v1/health",
                     deadline=30.0, log=lambda: log_path.read_text())

The deadline only keeps a broken start from hanging a run; it is not a performance check.
"""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

__all__ = ["ProcessNotReady", "free_port", "http_status", "wait_until_ready"]

# Polling a server on this machine must never go through an http_proxy from the environment.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ProcessNotReady(RuntimeError):
    """The process exited, or did not answer 2xx before the deadline; the message carries
    its log."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the OS picks it; another process may still
    take it before ours binds it, which loopback tests accept)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def http_status(url: str, timeout: float = 5.0) -> int:
    """The status of ``GET url``, whatever it is; ``OSError`` when nothing answers."""
    try:
        with _DIRECT.open(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        error.close()
        return int(error.code)


def wait_until_ready(
    process: subprocess.Popen[Any],
    url: str,
    *,
    deadline: float,
    log: Callable[[], str],
    name: str = "the server",
    interval: float = 0.1,
) -> None:
    """Poll ``GET url`` until it answers 2xx.

    Raises :class:`ProcessNotReady` with ``log()`` (the process's output) as soon as the
    process exits, or when ``deadline`` seconds pass, naming the last answer or error.
    """
    give_up = time.monotonic() + deadline
    last: object = "no answer yet"
    while True:
        if process.poll() is not None:
            raise ProcessNotReady(f"{name} exited with {process.returncode}:\n{log()}")
        try:
            status = http_status(url, timeout=max(0.5, min(5.0, give_up - time.monotonic())))
        except OSError as error:  # refused while it starts, reset, timed out
            last = error
        else:
            if 200 <= status < 300:
                return
            last = f"HTTP {status}"
        if time.monotonic() >= give_up:
            raise ProcessNotReady(
                f"{name} did not answer 2xx on {url} within {deadline:g}s (last: {last}):\n{log()}"
            )
        time.sleep(interval)
