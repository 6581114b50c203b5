"""Servers for the event stream stories: the real app over a real context, in this process.

Principals come from :class:`FixedTokens`, an authentication plugin registered in process
that knows a few bearer tokens: the stories are about who hears which events, not about
how keys are checked (``tests/server/test_events_stream.py`` uses real API keys).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import orjson
from quart.testing.connections import (
    TestWebsocketConnection,
    WebsocketDisconnectError,
    WebsocketResponseError,
)
from ratelimit_proxy import CuttableLink

from butterflyfx.core.auth import ACTIONS, Caller, Principal
from butterflyfx.core.config import read_config
from butterflyfx.core.context import ServerContext
from butterflyfx.core.hookspecs import hookimpl
from butterflyfx.plugins.http.app import create_app

TOKENS_PLUGIN = "test.tokens"
PLUGINS = ["storage.memory", "http", "events", TOKENS_PLUGIN]
EVENTS = "/api/v1/events"
SUBSTRATES = "/api/v1/substrates"
DOUBLE = "lambda **kw: kw.get('x', 0) * 2"
DEADLINE = 30.0  # only keeps a broken run from hanging; nothing is timed

PRINCIPALS = {
    "acme-token": Principal("acme", "acme-key", "pro", frozenset(ACTIONS), TOKENS_PLUGIN),
    "globex-token": Principal("globex", "globex-key", "pro", frozenset(ACTIONS), TOKENS_PLUGIN),
    "acme-writer-token": Principal(
        "acme", "acme-writer", "pro", frozenset({"write"}), TOKENS_PLUGIN
    ),
}


class FixedTokens:
    """Authenticates the bearer tokens of :data:`PRINCIPALS`; any other token is not its."""

    @hookimpl
    def butterflyfx_authenticate(self, caller: Caller) -> Principal | None:
        return PRINCIPALS.get(caller.token or "")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def build_context(folder: Path, events: Mapping[str, Any], **server: Any) -> ServerContext:
    """A server configured as an operator would: the plugins, ``[server]``, ``[events]``."""
    lines = [f"plugins = {json.dumps(PLUGINS)}", "", "[server]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in server.items()]
    lines += ["", "[events]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in events.items()]
    path = folder / "butterflyfx.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = read_config(path, overrides={"data_dir": folder / "data"})
    return ServerContext.build(config, extra={TOKENS_PLUGIN: FixedTokens()})


@contextlib.asynccontextmanager
async def running_client(ctx: ServerContext) -> AsyncIterator[Any]:
    """Quart's test client over the app of ``ctx``, started and stopped around the block."""
    app = create_app(ctx)
    async with app.test_app() as running:
        yield running.test_client()


async def next_event(stream: Any) -> dict[str, Any]:
    return orjson.loads(await asyncio.wait_for(stream.receive(), DEADLINE))


async def close_code(stream: Any) -> int:
    """Read past any events to the close frame; its code."""
    while True:
        try:
            await asyncio.wait_for(stream.receive(), DEADLINE)
        except WebsocketDisconnectError as closed:
            return int(closed.args[0])


async def refusal(stream: Any) -> Any:
    """The HTTP response a refused handshake got."""
    try:
        await asyncio.wait_for(stream.receive(), DEADLINE)
    except WebsocketResponseError as refused:
        return refused.response
    raise AssertionError("the handshake was accepted")


class NeverReadingConnection(TestWebsocketConnection):
    """A subscriber that never reads: every event the server sends waits, as it would on
    a socket whose buffers are full, until the server gives up on it. Its close frame
    still arrives (it is what the test looks for)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sends_waiting = 0

    async def _asgi_send(self, message: Any) -> None:
        if message["type"] == "websocket.send":
            self.sends_waiting += 1
            await asyncio.Event().wait()  # never set: only cancellation ends the wait
        await super()._asgi_send(message)


class ReopenableLink(CuttableLink):
    """A cuttable link to Redis that can come back on the same port, as Redis would after
    a restart."""

    port = 0

    async def open(self, port: int = 0) -> int:
        self.server = await asyncio.start_server(self._forward, "127.0.0.1", port)
        self.port = int(self.server.sockets[0].getsockname()[1])
        return self.port

    async def restore(self) -> None:
        await self.open(self.port)
