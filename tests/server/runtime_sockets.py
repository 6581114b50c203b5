"""HTTP/1.1 over one socket the test holds, so it knows exactly which connection each
request uses (an HTTP client library's pool would choose for it).

Every read has a timeout: a server that hangs fails the test instead of stalling it.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from typing import Any

TIMEOUT = 30.0  # seconds; only a broken server is this slow


class Closed(Exception):
    """The server closed the connection."""


@dataclass
class Answer:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def connect(url: str, key: str | None = None) -> KeepAlive:
    """A new connection to the server at ``url``, sending ``key`` with each request."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return KeepAlive(socket.create_connection((host, int(port)), timeout=TIMEOUT), key)


class KeepAlive:
    """One client connection, kept open between requests."""

    def __init__(self, sock: socket.socket, key: str | None = None) -> None:
        self.sock = sock
        self.sock.settimeout(TIMEOUT)
        self.key = key
        client_host, client_port = self.sock.getsockname()[:2]
        self.address = f"{client_host}:{client_port}"  # as the server lists it
        self._pending = b""

    def get(self, path: str, *, close: bool = False) -> Answer:
        lines = [f"GET {path} HTTP/1.1", "Host: butterflyfx"]
        if self.key:
            lines.append(f"Authorization: Bearer {self.key}")
        if close:
            lines.append("Connection: close")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = self._read_until(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        body = self._read_exactly(int(headers.get("content-length", "0")))
        return Answer(int(status_line.split()[1]), headers, body)

    def closed_by_server(self) -> bool:
        """True once the server has closed its end (reading gives end of file)."""
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()

    def _receive(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise Closed("the server closed the connection")
        self._pending += chunk

    def _read_until(self, marker: bytes) -> bytes:
        while marker not in self._pending:
            self._receive()
        found, _, self._pending = self._pending.partition(marker)
        return found

    def _read_exactly(self, size: int) -> bytes:
        while len(self._pending) < size:
            self._receive()
        found, self._pending = self._pending[:size], self._pending[size:]
        return found
