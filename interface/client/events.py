"""Event streams: ``GET /api/v1/events``, the ``events`` plugin's WebSocket, for both clients.

``client.events(kinds)`` opens the stream with the client's bearer credential (the token
after :meth:`login`, else the API key) in the ``Authorization`` header, on the client's
base URL as ``ws://`` or ``wss://``, waiting at most the client's ``timeout`` for the
handshake. The server subscribes before it accepts, so every event after ``events()``
returns (sync) or ``async with`` enters (async) is heard; none from before is (no replay).

A refused handshake raises what an HTTP answer with the same status would
(:func:`~.errors.error_for`): 401 :class:`Unauthorized`, 403 :class:`Forbidden`, 400
:class:`ValidationFailed` (``field`` ``kinds`` for an unknown kind), 429 and 503 after the
retries the policy allows (a subscription changes nothing, so it may always be repeated).
A 401 after :meth:`login` logs in once more, as for any request. Once open, a close from
the server's side raises :class:`StreamClosed` (``code`` 1008: fell behind; 1011: shut
down; 1006: connection lost); closing it yourself ends the iteration.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
from websockets.asyncio.client import ClientConnection as AsyncConnection
from websockets.asyncio.client import connect as connect_async
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from butterflyfx.interface.machine.events import EventBody

from .calls import Call, parse
from .errors import StreamClosed, Unavailable, error_for

if TYPE_CHECKING:
    from .asynchronous import AsyncButterflyFX
    from .sync import ButterflyFX

EVENTS_PATH = "/api/v1/events"
Kinds = str | Sequence[str] | None
# Nothing that happens before the handshake is answered means the server heard a request.
NO_ANSWER = (OSError, TimeoutError, InvalidHandshake)


@dataclass(frozen=True)
class Subscribe(Call):
    """The handshake, as the retry policy sees it: a subscription changes nothing."""

    @property
    def repeatable(self) -> bool:
        return True


SUBSCRIBE = Subscribe("events", "GET", EVENTS_PATH)


def stream_url(base_url: str, kinds: Kinds) -> str:
    """The WebSocket URL of the stream: ``http`` becomes ``ws``, ``https`` ``wss``."""
    scheme, _, rest = base_url.partition("://")
    websocket = {"http": "ws", "https": "wss"}.get(scheme.lower(), scheme)
    url = f"{websocket}://{rest}{EVENTS_PATH}"
    if kinds is None:
        return url
    names = kinds if isinstance(kinds, str) else ",".join(kinds)
    return f"{url}?kinds={quote(names, safe=',')}"


def answer_of(refused: InvalidStatus) -> httpx.Response:
    """The refusal as an ``httpx.Response``, so it raises what an HTTP answer would."""
    answer = refused.response
    headers = list(answer.headers.raw_items())
    return httpx.Response(answer.status_code, headers=headers, content=bytes(answer.body))


def no_answer(url: str, error: Exception) -> Unavailable:
    """:class:`Unavailable` (status 0) for a handshake that got no WebSocket answer."""
    return Unavailable(0, "Unreachable", f"no answer from the server at {url}: {error!r}")


def ended(closed: ConnectionClosed) -> StreamClosed:
    """The :class:`StreamClosed` of a stream the server closed (1006: no close frame)."""
    frame = closed.rcvd
    return StreamClosed(frame.code, frame.reason) if frame is not None else StreamClosed(1006, "")


class Opening:
    """One attempt to subscribe, over retries: what to do after each failed handshake."""

    def __init__(self, client: ButterflyFX | AsyncButterflyFX, kinds: Kinds) -> None:
        self.client = client
        self.url = stream_url(client.base_url, kinds)
        self.started = time.monotonic()
        self.attempt = 0
        self.logged_in_again = False

    def headers(self) -> dict[str, str]:
        """The credential, read anew for each try: a login may have renewed it."""
        return self.client._headers()

    def refused(self, error: InvalidStatus) -> Call | float:
        """The login to make (a token expired), or the seconds to wait; else raises."""
        response = answer_of(error)
        if not self.logged_in_again:
            login = self.client._login_again(SUBSCRIBE, response)
            if login is not None:
                self.logged_in_again = True
                return login
        return self._wait(error_for(response), response=response)

    def failed(self, error: Exception) -> float:
        """The seconds to wait after no answer; else raises."""
        return self._wait(no_answer(self.url, error), error=httpx.TransportError(repr(error)))

    def _wait(self, raised: Exception, **outcome: Any) -> float:
        elapsed = time.monotonic() - self.started
        wait = self.client.policy.delay(SUBSCRIBE, self.attempt, elapsed, **outcome)
        if wait is None:
            raise raised
        self.attempt += 1
        return wait


class EventStream:
    """The sync client's stream: an iterator of :class:`EventBody`, and a context manager
    that closes the connection (``with client.events() as stream:``)."""

    def __init__(self, client: ButterflyFX, kinds: Kinds = None) -> None:
        self._connection = self._open(client, Opening(client, kinds))
        self._over = False

    @staticmethod
    def _open(client: ButterflyFX, opening: Opening) -> ClientConnection:
        while True:
            try:
                return connect(  # legacy: the connection itself; this stream closes it
                    opening.url,
                    additional_headers=opening.headers(),
                    open_timeout=opening.client.timeout,
                    legacy=True,
                )
            except InvalidStatus as error:
                then = opening.refused(error)
            except NO_ANSWER as error:
                then = opening.failed(error)
            if isinstance(then, Call):
                parse(then, client._send(then))
            else:
                time.sleep(then)

    def __iter__(self) -> EventStream:
        return self

    def __next__(self) -> EventBody:
        if self._over:
            raise StopIteration
        try:
            message = self._connection.recv()
        except ConnectionClosed as closed:
            over, self._over = self._over, True
            if over:  # closed from another thread while waiting here
                raise StopIteration from None
            raise ended(closed) from None
        return EventBody.model_validate_json(message)

    def close(self) -> None:
        """Close the connection; the iteration ends."""
        self._over = True
        self._connection.close()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncEventStream:
    """The async client's stream: ``async with client.events() as stream:`` subscribes on
    entering and closes on leaving; ``async for event in stream`` yields :class:`EventBody`
    (iterating an unopened stream opens it)."""

    def __init__(self, client: AsyncButterflyFX, kinds: Kinds = None) -> None:
        self._client = client
        self._kinds = kinds
        self._connection: AsyncConnection | None = None
        self._over = False

    async def open(self) -> AsyncEventStream:
        """Subscribe (once): from now on every event of the tenant is heard."""
        if self._connection is None:
            self._connection = await self._open(self._client, Opening(self._client, self._kinds))
        return self

    @staticmethod
    async def _open(client: AsyncButterflyFX, opening: Opening) -> AsyncConnection:
        while True:
            try:
                return await connect_async(
                    opening.url,
                    additional_headers=opening.headers(),
                    open_timeout=opening.client.timeout,
                )
            except InvalidStatus as error:
                then = opening.refused(error)
            except NO_ANSWER as error:
                then = opening.failed(error)
            if isinstance(then, Call):
                parse(then, await client._send(then))
            else:
                await asyncio.sleep(then)

    def __aiter__(self) -> AsyncEventStream:
        return self

    async def __anext__(self) -> EventBody:
        if self._over:
            raise StopAsyncIteration
        await self.open()
        assert self._connection is not None
        try:
            message = await self._connection.recv()
        except ConnectionClosed as closed:
            over, self._over = self._over, True
            if over:  # closed by another task while waiting here
                raise StopAsyncIteration from None
            raise ended(closed) from None
        return EventBody.model_validate_json(message)

    async def close(self) -> None:
        """Close the connection (if it was opened); the iteration ends."""
        self._over = True
        if self._connection is not None:
            await self._connection.close()

    async def __aenter__(self) -> AsyncEventStream:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
