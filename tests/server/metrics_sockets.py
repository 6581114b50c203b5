"""Whole HTTP exchanges with a chosen worker of a multi-worker server: a new connection
that worker accepted (see ``ratelimit_sockets``), one request, the full response."""

from __future__ import annotations

import http.client
from collections.abc import Collection

from ratelimit_sockets import connection_to


def exchange(
    port: int,
    worker: int,
    workers: Collection[int],
    method: str,
    path: str,
    body: bytes | None = None,
) -> tuple[int, bytes]:
    """``method path`` (with a JSON ``body``) answered by ``worker``: status and body."""
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    with connection_to(port, worker, workers) as conn:
        conn.sendall(head.encode() + b"\r\n" + (body or b""))
        response = http.client.HTTPResponse(conn, method=method)
        response.begin()
        return response.status, response.read()
