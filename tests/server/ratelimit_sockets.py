"""Requests sent to a chosen worker of a multi-worker server, by asking Linux who holds the
connection: the accepted socket's inode (``/proc/net/tcp``) among a worker's open files
(``/proc/PID/fd``). A connection another worker accepted is closed unused and tried again,
so it costs no request.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Collection
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from server_process import START_DEADLINE, wait_for

ATTEMPTS = 200  # connections opened to reach one worker; the kernel picks, so a few


@dataclass
class Answer:
    status: int
    headers: dict[str, str]  # lower-cased names
    worker: int


def accepted_inode(server_port: int, client_port: int) -> int | None:
    """The inode of the server's end of the connection from ``client_port``, once accepted."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], int(fields[9])
            if (
                inode
                and int(local.rsplit(":", 1)[1], 16) == server_port
                and int(remote.rsplit(":", 1)[1], 16) == client_port
            ):
                return inode
    return None


def holder(server_port: int, client_port: int, workers: Collection[int]) -> int | None:
    """The worker process holding the accepted connection, or None while none does."""
    inode = accepted_inode(server_port, client_port)
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for pid in workers:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd) == target:
                    return pid
            except OSError:  # closed while we looked
                continue
    return None


def connection_to(port: int, worker: int, workers: Collection[int]) -> socket.socket:
    for _ in range(ATTEMPTS):
        conn = socket.create_connection(("127.0.0.1", port), timeout=START_DEADLINE)
        client_port = conn.getsockname()[1]
        pid = wait_for(
            partial(holder, port, client_port, workers), START_DEADLINE,
            "a worker to accept the connection",
        )  # fmt: skip
        if pid == worker:
            return conn
        conn.close()
    raise AssertionError(f"worker {worker} accepted none of {ATTEMPTS} connections")


def get(port: int, path: str, worker: int, workers: Collection[int]) -> Answer:
    """``GET path`` over a new connection that ``worker`` accepted; its status and headers."""
    with connection_to(port, worker, workers) as conn:
        conn.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
        )
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
    head = received.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    status = int(head[0].split()[1])
    headers = {}
    for line in head[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Answer(status, headers, worker)
