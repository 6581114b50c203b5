"""JSON on the wire: orjson for speed, the standard library for what orjson refuses.

orjson writes integers only up to 64 bits, dict keys only as strings and nests at most
254 levels; an invocation may legitimately return a 4096-bit integer, and the OpenAPI
document keys responses by integer status. Those rare bodies fall back to ``json``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Set
from typing import Any

import orjson
from pydantic import BaseModel
from quart import Response
from quart.json.provider import JSONProvider

JSON = "application/json"
PROBLEM_JSON = "application/problem+json"


def _default(value: Any) -> Any:
    """What orjson cannot write by itself: read-only mappings, sets, pydantic models."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, Set):
        return list(value)
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    raise TypeError(f"a {type(value).__name__} is not a JSON value")


def dumps(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON."""
    try:
        return orjson.dumps(value, default=_default)
    except orjson.JSONEncodeError:
        text = json.dumps(
            value, default=_default, ensure_ascii=False, separators=(",", ":"), allow_nan=False
        )
        return text.encode()


def loads(data: bytes | str) -> Any:
    """Parse JSON; raises ``orjson.JSONDecodeError`` (a ``ValueError``) when it is not."""
    return orjson.loads(data)


def json_response(
    body: Any,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    content_type: str = JSON,
) -> Response:
    """A response whose body is ``body`` as JSON, built without Quart's conversions."""
    return Response(dumps(body), status, headers, content_type=content_type)


class OrjsonProvider(JSONProvider):
    """Quart's ``app.json``: what ``jsonify``, ``request.get_json`` and plugins use."""

    mimetype = JSON

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        if kwargs.get("indent"):
            return json.dumps(obj, default=_default, ensure_ascii=False, indent=kwargs["indent"])
        return dumps(obj).decode()

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return loads(s)

    def response(self, *args: Any, **kwargs: Any) -> Response:
        return json_response(self._prepare_response_obj(args, kwargs))
