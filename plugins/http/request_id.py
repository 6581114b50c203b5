"""The request id: the client's ``X-Request-ID`` when it is safe to echo, else a new one."""

from __future__ import annotations

import re
import uuid

from quart import request

HEADER = "X-Request-ID"
SCOPE_KEY = "butterflyfx.request_id"
_SAFE = re.compile(r"[A-Za-z0-9._-]{1,128}")


def choose_request_id(given: bytes | None) -> str:
    """Echo ``given`` if it matches ``^[A-Za-z0-9._-]{1,128}$``; otherwise a uuid4 in hex."""
    if given is not None and len(given) <= 128:
        text = given.decode("latin-1")
        if _SAFE.fullmatch(text):
            return text
    return uuid.uuid4().hex


def request_id() -> str | None:
    """The id of the request being handled (set at the ASGI edge, see ``edge.py``)."""
    return request.scope.get(SCOPE_KEY)  # type: ignore[return-value]
