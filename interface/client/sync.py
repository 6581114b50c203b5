""":class:`ButterflyFX`: the API over one pooled ``httpx.Client``."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from .api import Api
from .calls import Call, parse
from .errors import unreachable
from .events import EventStream, Kinds


class ButterflyFX(Api):
    """A client of a ButterflyFX server: ``ButterflyFX(url, api_key=...)``.

    One instance keeps one connection pool; use it as a context manager, or call
    :meth:`close` when done. Methods return the API's models; errors raise
    :class:`~.errors.ButterflyFXError` subclasses. ``retries`` and ``deadline`` bound the
    repeats described in :mod:`~.retry`.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        token: str | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        **options: Any,
    ) -> None:
        super().__init__(base_url, api_key, token, **options)
        self._http = httpx.Client(base_url=self.base_url, timeout=self.timeout, transport=transport)

    def __enter__(self) -> ButterflyFX:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections."""
        self._http.close()

    def events(self, kinds: Kinds = None) -> EventStream:
        """Subscribe to the tenant's events (the ``events`` plugin): an iterator of
        :class:`~butterflyfx.interface.machine.events.EventBody`, from every event after this
        returns; ``kinds`` (names, or one comma-separated string) narrows it. Use it as a
        context manager to close the connection; see :mod:`~.events`."""
        return EventStream(self, kinds)

    def _run(self, request: Call) -> Any:
        response = self._send(request)
        login = self._login_again(request, response)
        if login is not None:
            parse(login, self._send(login))
            response = self._send(request)
        return parse(request, response)

    def _send(self, request: Call) -> httpx.Response:
        started, attempt = time.monotonic(), 0
        while True:
            try:
                response = self._http.send(self._request(self._http, request))
            except httpx.TransportError as error:
                wait = self.policy.delay(request, attempt, time.monotonic() - started, error=error)
                if wait is None:
                    raise unreachable(error) from error
            else:
                wait = self.policy.delay(request, attempt, time.monotonic() - started, response)
                if wait is None:
                    return response
            time.sleep(wait)
            attempt += 1

    def _iterate(self, page: Callable[[str | None], Any]) -> Iterator[Any]:
        cursor: str | None = None
        while True:
            current = page(cursor)
            yield from current.items
            cursor = current.next_cursor
            if not cursor:
                return
