"""``POST /api/v1/auth/login``: a user name and password in, a bearer token out.

The answer is the seed's: ``{"access_token", "token_type": "bearer", "expires_in"}``.
A wrong name and a wrong password get the same 401; too many failures a 429.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from pydantic import ValidationError
from quart import Blueprint, Response, jsonify, request
from quart_schema import document_request, document_response, tag_blueprint

from butterflyfx.core.auth import open_route
from butterflyfx.core.problems import Problem, ProblemError, invalid
from butterflyfx.interface.machine.access import LoginAnswer, LoginRequest

from .runtime import running
from .settings import settings_of

if TYPE_CHECKING:
    from butterflyfx.core.context import ServerContext


async def login_request() -> LoginRequest:
    """The body as a :class:`LoginRequest`; 400, 415 or 422 naming the field otherwise.
    Messages never repeat a value given: it may be a password."""
    data = await request.get_data(cache=False)
    mimetype = request.mimetype
    if data and mimetype != "application/json" and not mimetype.endswith("+json"):
        raise ProblemError(
            Problem(
                415, "unsupported-media-type", "Unsupported media type",
                "send the body as JSON with Content-Type: application/json",
            )
        )  # fmt: skip
    try:
        payload = json.loads(data) if data else None
    except ValueError:
        raise ProblemError(
            Problem(400, "malformed-json", "Malformed JSON", "the body is not JSON")
        ) from None
    if not isinstance(payload, dict):
        raise invalid("body", 'send a JSON object: {"username": "...", "password": "..."}')
    try:
        return LoginRequest.model_validate(payload)
    except ValidationError as error:
        first = error.errors(include_input=False)[0]
        field = ".".join(str(part) for part in first["loc"]) or "body"
        if first["type"] == "missing":
            message = f"{field} is required"
        elif first["type"] == "extra_forbidden":
            message = f"{field} is not a field of a login; send username and password"
        else:
            message = f"{field}: {first['msg']}"
        raise invalid(field, message) from None


def login_blueprint(ctx: ServerContext) -> Blueprint:
    blueprint = Blueprint("auth_jwt", __name__, url_prefix="/api/v1/auth")
    tag_blueprint(blueprint, ["auth"])
    lifetime = settings_of(ctx).token_seconds

    @blueprint.post("/login")
    @document_request(LoginRequest)
    @document_response(LoginAnswer, 200)
    @open_route
    async def login() -> Response:
        """Log in with a user name and password for a bearer token.

        A wrong name and a wrong password get the same 401. After ``login_attempts``
        failures in the window for one name or from one address, logins for it are 429
        (with ``Retry-After``) until the window moves on.
        """
        body = await login_request()
        auth = running(ctx)
        if auth is None:
            raise ProblemError(Problem(503, "unavailable", "Unavailable", "not started yet"))
        token = await auth.login(body.username, body.password, request.remote_addr or "unknown")
        response = jsonify(LoginAnswer(access_token=token, expires_in=lifetime).model_dump())
        response.headers["Cache-Control"] = "no-store"  # RFC 6749, 5.1: tokens are not cached
        return response

    return blueprint
