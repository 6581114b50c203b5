"""Clients of a real server's event stream: WebSocket subscribers (the ``websockets``
library's synchronous client) and JSON requests, either to whichever worker accepts them
or, over a connection that a chosen worker accepted (``ratelimit_sockets``), to that one.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ratelimit_sockets import connection_to
from server_process import START_DEADLINE
from websockets.sync.client import ClientConnection, connect

EVENTS = "/api/v1/events"
RECEIVE_DEADLINE = 30.0  # only keeps a broken run from hanging; nothing is timed
SMALLEST_SEGMENT = 88  # bytes: Linux's least TCP maximum segment size


@dataclass
class Target:
    """Where to connect: a port, and optionally the worker that must accept."""

    port: int
    worker: int | None = None
    workers: Collection[int] = ()

    def socket(self, tiny_window: bool = False) -> socket.socket:
        if self.worker is not None:
            if tiny_window:
                raise ValueError("a chosen worker's connection cannot have a tiny window")
            return connection_to(self.port, self.worker, self.workers)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if tiny_window:
            # The kernel's least receive buffer, and segments so small the server's send
            # buffer stays small too: a client that stops reading stalls the server's
            # sends after some tens of kilobytes instead of megabytes.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, SMALLEST_SEGMENT)
        sock.settimeout(START_DEADLINE)
        sock.connect(("127.0.0.1", self.port))
        return sock


@contextmanager
def subscriber(
    target: Target,
    query: str = "",
    headers: dict[str, str] | None = None,
    subprotocols: Sequence[str] | None = None,
    never_reads: bool = False,
) -> Iterator[ClientConnection]:
    """A WebSocket on ``/api/v1/events``; ``never_reads`` makes a client that stops reading
    after one frame and leaves the rest in the network."""
    sock = target.socket(tiny_window=never_reads)
    with connect(
        f"ws://127.0.0.1:{target.port}{EVENTS}{query}",
        sock=sock,
        additional_headers=headers,
        subprotocols=list(subprotocols) if subprotocols else None,
        compression=None,  # frames as big on the wire as they are
        max_queue=1 if never_reads else 16,
        proxy=None,
        open_timeout=START_DEADLINE,
    ) as connection:
        yield connection


def next_event(connection: ClientConnection) -> dict[str, Any]:
    return json.loads(connection.recv(timeout=RECEIVE_DEADLINE))


def request(
    target: Target,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """``METHOD path`` with a JSON body over a new connection of ``target``; status, JSON."""
    payload = json.dumps(body).encode() if body is not None else b""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
    with target.socket() as conn:
        conn.settimeout(START_DEADLINE)
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
    head, _, content = received.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    if b"transfer-encoding: chunked" in head.lower():
        content = unchunked(content)
    return status, json.loads(content) if content else None


def unchunked(data: bytes) -> bytes:
    body = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        body, data = body + data[:size], data[size + 2 :]
    return body
