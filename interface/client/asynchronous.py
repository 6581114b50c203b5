""":class:`AsyncButterflyFX`: the API over one pooled ``httpx.AsyncClient``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx

from .api import Api
from .calls import Call, parse
from .errors import unreachable
from .events import AsyncEventStream, Kinds


class AsyncButterflyFX(Api):
    """:class:`~.sync.ButterflyFX` for asyncio: each method returns an awaitable, and the
    listing methods (``list_substrates``, ``outgoing``, ``search``...) async iterators.

    ``async with AsyncButterflyFX(url, api_key=...) as client:``, or ``await close()``.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        token: str | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        **options: Any,
    ) -> None:
        super().__init__(base_url, api_key, token, **options)
        self._http = httpx.AsyncClient(
            base_url=self.base_url, timeout=self.timeout, transport=transport
        )

    async def __aenter__(self) -> AsyncButterflyFX:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the pooled connections."""
        await self._http.aclose()

    def events(self, kinds: Kinds = None) -> AsyncEventStream:
        """Subscribe to the tenant's events: ``async with client.events(kinds) as stream:``
        subscribes on entering, then ``async for event in stream`` yields each
        :class:`~butterflyfx.interface.machine.events.EventBody`; see :mod:`~.events`."""
        return AsyncEventStream(self, kinds)

    async def _run(self, request: Call) -> Any:
        response = await self._send(request)
        login = self._login_again(request, response)
        if login is not None:
            parse(login, await self._send(login))
            response = await self._send(request)
        return parse(request, response)

    async def _send(self, request: Call) -> httpx.Response:
        started, attempt = time.monotonic(), 0
        while True:
            try:
                response = await self._http.send(self._request(self._http, request))
            except httpx.TransportError as error:
                wait = self.policy.delay(request, attempt, time.monotonic() - started, error=error)
                if wait is None:
                    raise unreachable(error) from error
            else:
                wait = self.policy.delay(request, attempt, time.monotonic() - started, response)
                if wait is None:
                    return response
            await asyncio.sleep(wait)
            attempt += 1

    async def _iterate(self, page: Callable[[str | None], Awaitable[Any]]) -> AsyncIterator[Any]:
        cursor: str | None = None
        while True:
            current = await page(cursor)
            for item in current.items:
                yield item
            cursor = current.next_cursor
            if not cursor:
                return
