"""Every error as an RFC 9457 ``application/problem+json`` response.

Services and the kernel raise typed errors; :func:`butterflyfx.core.problems.problem_for`
names the problem. This module adds what only HTTP knows (routing, methods, sizes, JSON
syntax, content types) and the last resort: an unexpected exception is logged with the
request id and answered with a 500 that reveals nothing of the server's insides. A store
that is away is not unexpected: 503 with ``Retry-After``, logged as a warning.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

import structlog
from pydantic import ValidationError
from quart import Quart, Response, current_app, has_request_context, request, websocket
from quart_schema import RequestSchemaValidationError
from werkzeug.exceptions import HTTPException

from butterflyfx.core.problems import Problem, ProblemError, problem_for
from butterflyfx.core.store import StoreUnavailable
from butterflyfx.kernel import InvalidSubstrateId, KernelError

from .json import PROBLEM_JSON, dumps
from .request_id import request_id

log = structlog.get_logger("butterflyfx.http")
OUTAGE_LOG_SECONDS = 10.0
_outages_said: dict[str, tuple[float, int]] = {}  # store -> (when last logged, 503s since)

# The stable ``type`` slug and title of each HTTP-level status (titles fixed here, not
# taken from ``http.HTTPStatus``, whose phrases change between Python versions).
STATUSES = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Unauthorized"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    408: ("request-timeout", "Request timeout"),
    409: ("conflict", "Conflict"),
    411: ("length-required", "Length required"),
    412: ("precondition-failed", "Precondition failed"),
    413: ("payload-too-large", "Content too large"),
    414: ("uri-too-long", "URI too long"),
    415: ("unsupported-media-type", "Unsupported media type"),
    416: ("range-not-satisfiable", "Range not satisfiable"),
    422: ("validation-failed", "Validation failed"),
    429: ("too-many-requests", "Too many requests"),
    500: ("internal-error", "Internal server error"),
    501: ("not-implemented", "Not implemented"),
    503: ("unavailable", "Service unavailable"),
}


def http_problem(status: int, detail: str, **extra: Any) -> Problem:
    """A problem named after an HTTP status (``payload-too-large``, ``not-found``...)."""
    known = STATUSES.get(status)
    if known is None:
        phrase = HTTPStatus(status).phrase
        known = (phrase.lower().replace(" ", "-"), phrase)
    return Problem(status, known[0], known[1], detail, extra)


def incoming() -> Any:
    """What is being answered: the HTTP request, or a WebSocket's handshake (a route
    that does not exist, or refuses the handshake, is answered with a problem too)."""
    return request if has_request_context() else websocket


def problem_response(
    problem: Problem, instance: str | None = None, headers: Mapping[str, str] | None = None
) -> Response:
    """The response for ``problem``; ``instance`` defaults to the request's path."""
    if instance is None:
        instance = incoming().path
    return Response(
        dumps(problem.to_dict(instance)),
        problem.status,
        {**problem.headers, **(headers or {})},
        content_type=PROBLEM_JSON,
    )


def field_path(location: Sequence[str | int]) -> str:
    """pydantic's location as the API names fields: ``dimensions[3].content``."""
    text = ""
    for part in location:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


# pydantic's words for the commonest mistakes, said in JSON's terms.
MESSAGES = {
    "missing": "is required",
    "extra_forbidden": "is not a field of this request",
    "dict_type": "must be a JSON object",
    "model_type": "must be a JSON object",
    "list_type": "must be an array",
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "bool_type": "must be true or false",
}
# Lists of the wrong length, with the bound pydantic checked (``ctx``).
BOUNDED = {
    "too_short": lambda ctx: (
        "must not be empty"
        if ctx["min_length"] == 1
        else f"must hold at least {ctx['min_length']} items"
    ),
    "too_long": lambda ctx: f"must hold at most {ctx['max_length']} items",
}


def _message(item: Any) -> str:
    if item["type"] == "value_error" and "error" in item.get("ctx", {}):
        return str(item["ctx"]["error"])  # our own validators' words, without "Value error, "
    if item["type"] in BOUNDED and "ctx" in item:
        return BOUNDED[item["type"]](item["ctx"])
    return MESSAGES.get(item["type"], item["msg"])


def validation_problem(error: ValidationError) -> Problem:
    """A 422 naming the first wrong field, with every error listed under ``errors``."""
    errors = [
        {"field": field_path(item["loc"]), "message": _message(item), "type": item["type"]}
        for item in error.errors(include_url=False, include_input=False)
    ]
    first = errors[0] if errors else {"field": "", "message": "invalid"}
    field = first["field"]
    message = str(first["message"])
    joiner = " " if message in MESSAGES.values() or first.get("type") in BOUNDED else ": "
    detail = f"{field}{joiner}{message}" if field else message
    extra: dict[str, Any] = {"errors": errors}
    if field:
        extra = {"field": field, **extra}
    return Problem(422, "validation-failed", "Validation failed", detail, extra)


# -- handlers ---------------------------------------------------------------------


async def on_problem(error: ProblemError) -> Response:
    return problem_response(error.problem)


async def on_kernel_error(error: KernelError) -> Response:
    # A malformed id that reaches a service came from the URL path: routes check body ids.
    field = "substrate_id" if isinstance(error, InvalidSubstrateId) else None
    problem = problem_for(error, field)
    if problem is None:
        return await on_unexpected(error)
    return problem_response(problem)


async def on_store_unavailable(error: StoreUnavailable) -> Response:
    """503 naming the store, with ``Retry-After``; the reason (its address, the driver's
    error) goes to the log only, at most once per store every ``OUTAGE_LOG_SECONDS``
    (the access log has every refused request)."""
    now = time.monotonic()
    said = _outages_said.get(error.store)
    if said is None or now - said[0] >= OUTAGE_LOG_SECONDS:
        _outages_said[error.store] = (now, 0)
        log.warning(
            "store_unavailable", request_id=request_id(), method=incoming().method,
            path=incoming().path, store=error.store, error=error.reason,
            unlogged_since_last=said[1] if said else 0,
        )  # fmt: skip
    else:
        _outages_said[error.store] = (said[0], said[1] + 1)
    problem = problem_for(error)
    if problem is None:  # pragma: no cover - problem_for knows StoreUnavailable
        return await on_unexpected(error)
    return problem_response(problem)


async def on_http_exception(error: HTTPException) -> Response:
    status = error.code or 500
    if status >= 500:
        return await on_unexpected(getattr(error, "original_exception", None) or error)
    headers: dict[str, str] = {}
    if status == 405:
        detail = f"{incoming().method} is not allowed on {incoming().path}"
        allowed = [value for name, value in error.get_headers() if name.lower() == "allow"]
        if allowed:
            headers["Allow"] = allowed[0]
            detail += f"; allowed: {allowed[0]}"
    elif status == 404:
        detail = f"no route matches {incoming().path}"
    elif status == 413:
        limit = current_app.config["MAX_CONTENT_LENGTH"]
        return problem_response(
            http_problem(413, f"the request body may be at most {limit} bytes", limit_bytes=limit)
        )
    else:
        detail = error.description or HTTPStatus(status).phrase
    return problem_response(http_problem(status, detail), headers=headers)


async def on_schema_validation(error: RequestSchemaValidationError) -> Response:
    """quart-schema's validators (used by other plugins' blueprints) answer like ours."""
    cause = error.validation_error
    if isinstance(cause, ValidationError):
        return problem_response(validation_problem(cause))
    # Other causes are the library's own TypeErrors, whose words would only confuse.
    return problem_response(
        http_problem(422, "the request does not have the fields this endpoint expects")
    )


async def on_unexpected(error: BaseException) -> Response:
    log.error(
        "unhandled_error",
        request_id=request_id(),
        method=incoming().method,
        path=incoming().path,
        exc_info=error,
    )
    return problem_response(
        http_problem(
            500,
            "the server failed to answer this request; quote the X-Request-ID "
            "header when reporting it",
            request_id=request_id(),
        )
    )


def install(app: Quart) -> None:
    """Register the handlers; the most specific class wins, so order does not matter."""
    app.register_error_handler(ProblemError, on_problem)
    app.register_error_handler(KernelError, on_kernel_error)
    app.register_error_handler(StoreUnavailable, on_store_unavailable)
    app.register_error_handler(RequestSchemaValidationError, on_schema_validation)
    app.register_error_handler(HTTPException, on_http_exception)
    app.register_error_handler(Exception, on_unexpected)
