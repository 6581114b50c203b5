"""A TCP forwarder in front of a real service (Redis, PostgreSQL) that a test can cut, as
a network failure or a restart would: every open connection drops and new ones are
refused; restored, it listens on the same port again. Silenced, it keeps every
connection open but forwards nothing, as a hung server or a black-holed route would.
It runs on the test's own event loop (the server under test runs in this process too)."""

from __future__ import annotations

import asyncio
import contextlib


class CuttableLink:
    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []
        self.silent = False

    async def open(self, port: int = 0) -> int:
        """Start listening on a loopback port (a free one when 0); returns it."""
        self.server = await asyncio.start_server(
            self._forward, "127.0.0.1", port, reuse_address=True
        )
        self.port = int(self.server.sockets[0].getsockname()[1])
        return self.port

    async def cut(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            server.close()
        for writer in self.writers:
            writer.close()
        self.writers.clear()
        if server is not None:
            await server.wait_closed()  # the port is free again once this returns

    async def restore(self) -> None:
        """Listen again, on the same port."""
        await self.open(self.port)

    def silence(self) -> None:
        """Forward nothing more, either way, on any connection; none is closed."""
        self.silent = True

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.server is None:  # accepted just before a cut
            writer.close()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self.writers += [writer, upstream_writer]
        with contextlib.suppress(asyncio.CancelledError):  # the test's loop is ending
            await asyncio.gather(
                self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer)
            )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                if not self.silent:
                    writer.write(data)
                    await writer.drain()
        writer.close()
