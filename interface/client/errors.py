"""The client's exceptions: one class per kind of answer, each carrying the problem+json.

Every error the server answers is RFC 9457 problem details (``type``, ``title``,
``status``, ``detail``, and per type ``field``, ``limit``...). :func:`error_for` turns a
response into the exception of its status, with those members as attributes, so callers
catch :class:`NotFound` or read :attr:`ValidationFailed.field` instead of parsing JSON.
"""

from __future__ import annotations

from typing import Any

import httpx


class ButterflyFXError(Exception):
    """An error answer from the server (or no answer at all: ``status`` 0).

    ``status``, ``type``, ``title``, ``detail``, ``field`` and ``instance`` are the
    problem's members; ``request_id`` is the ``X-Request-ID`` the server answered with
    (quote it when reporting a problem); ``problem`` holds every member, further ones too.
    """

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        type: str = "about:blank",
        field: str | None = None,
        instance: str | None = None,
        request_id: str | None = None,
        problem: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status} {title}: {detail}" if status else detail)
        self.status = status
        self.type = type
        self.title = title
        self.detail = detail
        self.field = field
        self.instance = instance
        self.request_id = request_id
        self.problem = dict(problem or {})


class NotFound(ButterflyFXError):
    """404: no such substrate, relationship, key or route in this tenant."""


class Unauthorized(ButterflyFXError):
    """401: no credentials, a wrong key, or an expired token."""


class Forbidden(ButterflyFXError):
    """403: the key or token lacks the scope the route needs."""


class ValidationFailed(ButterflyFXError):
    """400/415/422: the request was refused as sent; ``field`` names the part at fault."""


class Conflict(ButterflyFXError):
    """409 or 412: the request conflicts with the current state."""


class _RetryAfter(ButterflyFXError):
    """An answer saying when to come back: ``retry_after`` seconds (None: not said)."""

    def __init__(self, *args: Any, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.retry_after = retry_after


class RateLimited(_RetryAfter):
    """429: the tier's limit is used up; ``retry_after`` seconds until it is not."""


class Unavailable(_RetryAfter):
    """503 (or no connection): the server or a service behind it is away for now."""


class ServerError(ButterflyFXError):
    """Any other 5xx: a fault on the server's side."""


class StreamClosed(ButterflyFXError):
    """The server ended an event stream it had accepted: ``code`` and ``reason`` are the
    WebSocket close frame's (1008: the client fell behind; 1011: the server is shutting
    down; 1006: the connection was lost without a close frame).

    ``status`` is 101, the handshake's answer (Switching Protocols): the server did answer,
    unlike the ``status`` 0 of :class:`Unavailable`. Reconnect, and catch up on what was
    missed with the HTTP API: the stream does not replay.
    """

    def __init__(self, code: int, reason: str) -> None:
        what = CLOSE_CODES.get(code, "the server closed it")
        detail = f"{what} (close code {code})" + (f": {reason}" if reason else "")
        super().__init__(101, "Stream closed", detail)
        self.code = code
        self.reason = reason


CLOSE_CODES = {
    1000: "the server ended the stream",
    1001: "the server went away",
    1006: "the connection was lost",
    1008: "the client fell behind",
    1011: "the server stopped the stream (shutting down, or a fault)",
}


BY_STATUS: dict[int, type[ButterflyFXError]] = {
    400: ValidationFailed,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    412: Conflict,
    413: ValidationFailed,
    415: ValidationFailed,
    422: ValidationFailed,
    429: RateLimited,
    503: Unavailable,
}


def retry_after(response: httpx.Response) -> float | None:
    """The ``Retry-After`` header in seconds (delay-seconds form), None if absent or a date."""
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def error_for(response: httpx.Response) -> ButterflyFXError:
    """The exception for an error ``response``, its problem members as attributes."""
    try:
        body = response.json()
    except ValueError:
        body = None
    problem: dict[str, Any] = body if isinstance(body, dict) else {}
    status = response.status_code
    cls = BY_STATUS.get(status) or (ServerError if status >= 500 else ButterflyFXError)
    fields: dict[str, Any] = {
        "type": str(problem.get("type", "about:blank")),
        "field": problem.get("field"),
        "instance": problem.get("instance"),
        "request_id": response.headers.get("X-Request-ID"),
        "problem": problem,
    }
    if issubclass(cls, _RetryAfter):
        fields["retry_after"] = retry_after(response)
    title = str(problem.get("title", response.reason_phrase))
    detail = str(problem.get("detail", response.text[:200] or response.reason_phrase))
    return cls(status, title, detail, **fields)


def unreachable(error: httpx.TransportError) -> Unavailable:
    """:class:`Unavailable` (status 0) for a request that got no answer at all."""
    return Unavailable(0, "Unreachable", f"no answer from the server: {error!r}")
