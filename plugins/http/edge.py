"""ASGI middleware around the Quart app: what every HTTP response gets, whatever made it.

Working at the ASGI edge, not in ``after_request``, means responses Quart builds outside
a view (404s, 405s, errors while reading the body) carry ``X-Request-ID`` too, and a body
announced as too large is refused before Quart builds a request for it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from butterflyfx.core.observe import RequestRecord

from .json import PROBLEM_JSON, dumps
from .problems import http_problem
from .request_id import SCOPE_KEY, choose_request_id

if TYPE_CHECKING:
    from butterflyfx.core.context import ServerContext

ASGIApp = Any  # (scope, receive, send) -> Awaitable[None]
ROUTE_KEY = "butterflyfx.route"  # the matched route template, set by the guard
PRINCIPAL_KEY = "butterflyfx.principal"  # the admitted principal, set by the guard

_REQUEST_ID = b"x-request-id"
_CONTENT_LENGTH = b"content-length"


class Edge:
    """Stamp ``X-Request-ID`` on every response; refuse a ``Content-Length`` over the limit;
    once the response is sent, report the request (``ctx.observe``) to plugins that watch."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, ctx: ServerContext | None = None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.ctx = ctx

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]  # what the client got if the app fails before it answers

        async def send_observed(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self._serve(scope, receive, send_observed)
        finally:
            if self.ctx is not None:
                await self.ctx.observe(_record(scope, status[0], started, self.ctx.worker_id))

    async def _serve(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        given = length = None
        for name, value in scope["headers"]:
            lowered = name.lower()
            if lowered == _REQUEST_ID:
                given = value
            elif lowered == _CONTENT_LENGTH:
                length = value
        request_id = choose_request_id(given)
        scope[SCOPE_KEY] = request_id
        stamp = (_REQUEST_ID, request_id.encode())

        if length is not None and self._too_long(length):
            await self._refuse(scope, send, stamp)
            return

        async def send_stamped(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), stamp]
            await send(message)

        await self.app(scope, receive, send_stamped)

    def _too_long(self, length: bytes) -> bool:
        text = length.strip()
        # A malformed length is left for the server and Quart to refuse.
        return text.isdigit() and (len(text) > 19 or int(text) > self.max_body_bytes)

    async def _refuse(self, scope: dict[str, Any], send: Any, stamp: tuple[bytes, bytes]) -> None:
        problem = http_problem(
            413,
            f"the request body may be at most {self.max_body_bytes} bytes",
            limit_bytes=self.max_body_bytes,
        )
        body = dumps(problem.to_dict(scope.get("path")))
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", PROBLEM_JSON.encode()),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                    stamp,
                ],
            }
        )
        await send({"type": "http.response.body", "body": body, "more_body": False})


def pool_of(scope: dict[str, Any]) -> str:
    """The connection pool a request belongs to, by where it goes."""
    if scope["type"] == "websocket":
        return "websocket"
    return "api" if scope.get("path", "").startswith("/api/") else "http"


def _record(scope: dict[str, Any], status: int, started: float, worker: str) -> RequestRecord:
    principal = scope.get(PRINCIPAL_KEY)
    client = scope.get("client")
    return RequestRecord(
        method=scope.get("method", "GET"),
        path=scope.get("path", ""),
        route=scope.get(ROUTE_KEY),
        status=status,
        duration_ms=(time.perf_counter() - started) * 1000,
        request_id=scope.get(SCOPE_KEY),
        tenant=getattr(principal, "tenant", None),
        subject=getattr(principal, "subject", None),
        client=client[0] if client else None,
        pool=pool_of(scope),
        worker=worker,
    )
