"""Reading a JSON request body into a request model, with a problem for every way it fails.

Parsed by hand rather than with quart-schema's ``validate_request`` so that each failure
gets its own status: not JSON at all is 415, broken JSON 400, a JSON value that is not
an object or has wrong fields 422 naming the field.
"""

from __future__ import annotations

from typing import TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from quart import request

from butterflyfx.core.problems import Problem, ProblemError

from .json import loads
from .problems import http_problem, validation_problem

M = TypeVar("M", bound=BaseModel)

_KINDS = {list: "an array", str: "a string", int: "a number", float: "a number",
          bool: "a boolean", type(None): "null"}  # fmt: skip


async def read_body(model: type[M]) -> M:
    """The body as ``model``; an empty body counts as ``{}``, so optional bodies may be omitted."""
    data = await request.get_data(cache=False)
    if not data:
        payload: object = {}
    else:
        mimetype = request.mimetype
        if mimetype != "application/json" and not mimetype.endswith("+json"):
            raise ProblemError(
                http_problem(
                    415,
                    f"send the body as JSON with Content-Type: application/json, "
                    f"not {mimetype or 'no content type'}",
                )
            )
        try:
            payload = loads(data)
        except orjson.JSONDecodeError as error:
            raise ProblemError(
                Problem(400, "malformed-json", "Malformed JSON", f"the body is not JSON: {error}")
            ) from None
        if type(payload) is not dict:
            kind = _KINDS.get(type(payload), type(payload).__name__)
            raise ProblemError(
                Problem(
                    422, "validation-failed", "Validation failed",
                    f"the request body must be a JSON object, not {kind}",
                )
            )  # fmt: skip
    try:
        return model.model_validate(payload)
    except ValidationError as error:
        raise ProblemError(validation_problem(error)) from None
