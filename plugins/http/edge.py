"""ASGI middleware around the Quart app: what every HTTP response gets, whatever made it.

Working at the ASGI edge, not in ``after_request``, means responses Quart builds outside
a view (404s, 405s, errors while reading the body) carry ``X-Request-ID`` too, a body
announced as too large is refused before Quart builds a request for it, and every request
is counted: the worker's connection tracker and request statistics (``core/runtime``)
are fed here, and ``server.max_connections`` is enforced here.

A connection is known by its client and server addresses. Its first request while the
worker has ``max_connections`` open gets 503 with ``Connection: close`` and
``Retry-After``, at once; requests on connections already open are served as usual.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from butterflyfx.core.observe import RequestRecord
from butterflyfx.core.runtime import KEEP_ALIVE_MAX_REQUESTS, Connection, runtime_of

from .json import PROBLEM_JSON, dumps
from .problems import http_problem
from .request_id import SCOPE_KEY, choose_request_id

if TYPE_CHECKING:
    from butterflyfx.core.context import ServerContext

ASGIApp = Any  # (scope, receive, send) -> Awaitable[None]
ROUTE_KEY = "butterflyfx.route"  # the matched route template, set by the guard
PRINCIPAL_KEY = "butterflyfx.principal"  # the admitted principal, set by the guard
POOL_KEY = "butterflyfx.pool"  # the pool, when the route decides it (admin routes)
RETRY_AFTER = b"1"  # seconds: a slot frees as soon as any open connection closes

_REQUEST_ID = b"x-request-id"
_CONTENT_LENGTH = b"content-length"
_CONNECTION = b"connection"
_CLOSE = (_CONNECTION, b"close")
_HTTP1 = frozenset({"1.0", "1.1"})


class Edge:
    """Stamp ``X-Request-ID`` on every response; refuse a ``Content-Length`` over the limit
    and a connection over ``max_connections``; track each request's connection; tell
    plugins that watch when a request starts (``ctx.request_started``) and, once its
    response is sent, count it and report it (``ctx.observe``): one report per start."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, ctx: ServerContext | None = None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.ctx = ctx
        self.runtime = runtime_of(ctx) if ctx is not None else None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket" and self.runtime is not None:
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _http(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        started = time.perf_counter()
        given = length = asked = None
        for name, value in scope["headers"]:
            lowered = name.lower()
            if lowered == _REQUEST_ID:
                given = value
            elif lowered == _CONTENT_LENGTH:
                length = value
            elif lowered == _CONNECTION:
                asked = value
        request_id = choose_request_id(given)
        scope[SCOPE_KEY] = request_id
        stamp = (_REQUEST_ID, request_id.encode())
        started_pool = pool = path_pool(scope)
        runtime = self.runtime
        connection: Connection | None = None
        refused = False
        status = 500  # what the client got if the app fails before it answers
        closes = asks_to_close(scope.get("http_version", "1.1"), asked)
        answered = False
        if self.ctx is not None:
            # From here on the finally below reports the request, exactly once.
            if runtime is not None:
                runtime.requests.started()
            self.ctx.request_started(scope.get("method", "GET"), scope.get("path", ""), pool)

        async def send_edge(message: dict[str, Any]) -> None:
            nonlocal status, closes, answered
            kind = message["type"]
            if kind == "http.response.start":
                status = message["status"]
                headers = message["headers"] = [*message.get("headers", ()), stamp]
                if connection is not None and (closes or _CLOSE in headers):
                    closes = True
                    runtime.connections.closing(connection)  # type: ignore[union-attr]
            elif kind == "http.response.body" and not message.get("more_body", False):
                answered = True
            await send(message)

        async def receive_edge() -> dict[str, Any]:
            nonlocal closes
            message: dict[str, Any] = await receive()
            # Hypercorn also says disconnect once a response is complete: only one
            # before then means the client went away mid-request.
            if message["type"] == "http.disconnect" and not answered:
                closes = True
            return message

        try:
            if runtime is not None:
                key = connection_key(scope)
                if key is not None:
                    connection = runtime.connections.begin(key, address_of(key), pool)
                    refused = connection is None
            if refused:
                await self._refuse_connection(scope, send_edge)
            elif length is not None and self._too_long(length):
                await self._refuse_body(scope, send_edge)
            else:
                await self.app(scope, receive_edge if connection else receive, send_edge)
        finally:
            pool = scope.get(POOL_KEY) or pool
            try:
                if connection is not None:
                    if scope.get("http_version") in _HTTP1:  # Hypercorn closes after this many
                        closes = closes or connection.requests >= KEEP_ALIVE_MAX_REQUESTS
                    runtime.connections.end(connection, pool, close=closes)  # type: ignore[union-attr]
            finally:
                if self.ctx is not None:
                    worker = self.ctx.worker_id
                    record = _record(scope, status, started, worker, pool, started_pool)
                    if runtime is not None:
                        runtime.requests.finished(record.duration_ms, status)
                    await self.ctx.observe(record)

    async def _websocket(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Track a WebSocket's connection: ``handshake`` until accepted, closed with it."""
        connections = self.runtime.connections  # type: ignore[union-attr]
        key = connection_key(scope)
        connection = None
        if key is not None:
            connection = connections.begin(key, address_of(key), "websocket", websocket=True)
            if connection is None:
                await self._refuse_websocket(scope, send)
                return

        async def send_edge(message: dict[str, Any]) -> None:
            if message["type"] == "websocket.accept" and connection is not None:
                connections.accepted(connection)
            await send(message)

        try:
            await self.app(scope, receive, send_edge)
        finally:
            if connection is not None:
                connections.end(connection, "websocket", close=True)

    def _too_long(self, length: bytes) -> bool:
        text = length.strip()
        # A malformed length is left for the server and Quart to refuse.
        return text.isdigit() and (len(text) > 19 or int(text) > self.max_body_bytes)

    async def _refuse_body(self, scope: dict[str, Any], send: Any) -> None:
        problem = http_problem(
            413,
            f"the request body may be at most {self.max_body_bytes} bytes",
            limit_bytes=self.max_body_bytes,
        )
        await _send_problem(send, 413, dumps(problem.to_dict(scope.get("path"))))

    def _connection_problem(self, scope: dict[str, Any]) -> bytes:
        limit = self.runtime.connections.max_connections  # type: ignore[union-attr]
        problem = http_problem(
            503,
            f"this worker already serves {limit} open connections (server.max_connections); "
            f"retry on a new connection after {RETRY_AFTER.decode()} s",
            limit=limit,
            worker=self.ctx.worker_id if self.ctx is not None else None,
        )
        return dumps(problem.to_dict(scope.get("path")))

    async def _refuse_connection(self, scope: dict[str, Any], send: Any) -> None:
        body = self._connection_problem(scope)
        await _send_problem(send, 503, body, (b"retry-after", RETRY_AFTER))

    async def _refuse_websocket(self, scope: dict[str, Any], send: Any) -> None:
        if "websocket.http.response" not in scope.get("extensions", {}):
            await send({"type": "websocket.close", "code": 1013})  # try again later
            return
        body = self._connection_problem(scope)
        await send(
            {
                "type": "websocket.http.response.start",
                "status": 503,
                "headers": _problem_headers(body, (b"retry-after", RETRY_AFTER)),
            }
        )
        await send({"type": "websocket.http.response.body", "body": body, "more_body": False})


def _problem_headers(body: bytes, *extra: tuple[bytes, bytes]) -> list[tuple[bytes, bytes]]:
    return [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
        _CLOSE,
        *extra,
    ]


async def _send_problem(send: Any, status: int, body: bytes, *extra: tuple[bytes, bytes]) -> None:
    await send(
        {"type": "http.response.start", "status": status, "headers": _problem_headers(body, *extra)}
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


def connection_key(scope: dict[str, Any]) -> tuple[Any, ...] | None:
    """The connection's identity: client and server addresses (None without a client)."""
    client = scope.get("client")
    if not client:
        return None
    server = scope.get("server") or ("", None)
    return (client[0], client[1], server[0], server[1])


def address_of(key: tuple[Any, ...]) -> str:
    host, port = key[0], key[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


def asks_to_close(http_version: str, connection: bytes | None) -> bool:
    """Whether the request says its connection ends with it (HTTP/1.0 ends by default)."""
    tokens = connection.lower() if connection else b""
    if b"close" in tokens:
        return True
    return http_version == "1.0" and b"keep-alive" not in tokens


def path_pool(scope: dict[str, Any]) -> str:
    """The pool a request belongs to by where it goes; an admin route says so itself
    (``POOL_KEY``, see ``runtime_routes.mark_admin_pool``)."""
    if scope["type"] == "websocket":
        return "websocket"
    return "api" if scope.get("path", "").startswith("/api/") else "http"


def _record(
    scope: dict[str, Any], status: int, started: float, worker: str, pool: str, started_pool: str
) -> RequestRecord:
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
        pool=pool,
        worker=worker,
        started_pool=started_pool,
    )
