"""A TCP forwarder to a real service (Redis, PostgreSQL), on a port of its own, that a test
cuts and restores as a network outage would: cut, every open connection drops and new ones
are refused; restored, it listens on the same port again, so a server configured with it
reconnects. Silenced, it keeps every connection open and forwards nothing, as a hung
server or a black-holed route would.

It runs on its own thread (the server under test is another process), so a test drives
it with plain calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any


class TcpLink:
    """Forwards 127.0.0.1:``port`` to ``host:port`` until :meth:`cut`."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.silent = False

    def __enter__(self) -> TcpLink:
        self.thread.start()
        self._run(self._listen())
        return self

    def __exit__(self, *exc: object) -> None:
        self.cut()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    @property
    def url(self) -> str:
        """A Redis URL through the link (database 0)."""
        return f"redis://127.0.0.1:{self.port}/0"

    def dsn(self, user: str = "postgres", database: str = "test") -> str:
        """A PostgreSQL DSN through the link."""
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def cut(self) -> None:
        """Stop listening and drop every connection through the link."""
        self._run(self._cut())

    def restore(self) -> None:
        """Listen again, on the same port, and forward again."""
        self.silent = False
        self._run(self._listen())

    def silence(self) -> None:
        """Forward nothing more, either way, on any connection; none is closed."""
        self.silent = True

    def _run(self, work: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(work, self.loop).result(10)

    async def _listen(self) -> None:
        if self.server is not None:  # only silenced: it still listens
            return
        self.server = await asyncio.start_server(
            self._forward, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = int(self.server.sockets[0].getsockname()[1])

    async def _cut(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            server.close()
        for writer in list(self.writers):
            writer.close()
        self.writers.clear()
        if server is not None:
            await server.wait_closed()  # the port is free again once this returns

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.server is None:  # accepted just before a cut
            writer.close()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self.writers |= {writer, upstream_writer}
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
        self.writers.discard(writer)


RedisLink = TcpLink  # the name the readiness story knows it by
