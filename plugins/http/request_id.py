"""The request id: the client's ``X-Request-ID`` when it is safe to echo, else a new one."""

from __future__ import annotations

import os
import re

from quart import has_request_context, request, websocket

HEADER = "X-Request-ID"
SCOPE_KEY = "butterflyfx.request_id"
_SAFE = re.compile(r"[A-Za-z0-9._-]{1,128}")


def choose_request_id(given: bytes | None) -> str:
    """Echo ``given`` if it matches ``^[A-Za-z0-9._-]{1,128}$``; otherwise a uuid4 in hex."""
    if given is not None and len(given) <= 128:
        text = given.decode("latin-1")
        if _SAFE.fullmatch(text):
            return text
    return new_request_id()


def new_request_id() -> str:
    """A random (version 4) UUID in hex, built directly: ``uuid.uuid4().hex`` costs 3x more."""
    data = bytearray(os.urandom(16))
    data[6] = (data[6] & 0x0F) | 0x40  # version 4
    data[8] = (data[8] & 0x3F) | 0x80  # RFC 4122 variant
    return data.hex()


def request_id() -> str | None:
    """The id of the request (or WebSocket handshake) being handled, set at the ASGI edge
    (see ``edge.py``)."""
    scope = request.scope if has_request_context() else websocket.scope
    return scope.get(SCOPE_KEY)  # type: ignore[return-value]
