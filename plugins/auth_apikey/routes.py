"""``/api/v1/keys``: an admin key lists, creates and revokes its own tenant's keys.

A key created here is of the caller's tenant, of a tier no higher than the caller's
(free < pro < enterprise) and with no scope the caller lacks: an admin hands out at most
what it holds. Another tenant's key id answers 404, as an id that does not exist.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from quart import Blueprint, Response, g, request
from quart_schema import document_request, document_response, tag_blueprint

from butterflyfx.core.auth import Principal, requires
from butterflyfx.core.problems import Problem, ProblemError, invalid
from butterflyfx.interface.machine.access import (
    ApiKeyBody,
    ApiKeyList,
    CreateApiKey,
    NewApiKeyBody,
)
from butterflyfx.interface.machine.models import NoContent, ProblemBody

from .keys import (
    KEY_ID,
    InvalidKeyField,
    checked_name,
    checked_scopes,
    checked_tier,
    tier_rank,
)

if TYPE_CHECKING:
    from .stores import KeyStorage

PREFIX = "/api/v1/keys"
FIELDS = tuple(CreateApiKey.model_fields)  # tier, scopes, name
F = TypeVar("F", bound=Callable[..., Any])


def _json(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(value), status, headers, content_type="application/json")


def _problems(*statuses: int) -> Callable[[F], F]:
    """Document the problem responses a route gives besides the guard's 401/403/429."""

    def decorate(func: F) -> F:
        for status in statuses:
            func = document_response(ProblemBody, status)(func)
        return func

    return decorate


def _refused(field: str, detail: str) -> ProblemError:
    return ProblemError(Problem(403, "forbidden", "Forbidden", detail, {"field": field}))


async def _body() -> dict[str, Any]:
    """The JSON object sent (an empty body is ``{}``): 415, 400 or 422 when it is not one."""
    data = await request.get_data(cache=False)
    if not data:
        return {}
    mimetype = request.mimetype
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise ProblemError(
            Problem(415, "unsupported-media-type", "Unsupported media type",
                    "send the body as JSON with Content-Type: application/json")
        )  # fmt: skip
    try:
        payload = json.loads(data)
    except ValueError as error:
        raise ProblemError(
            Problem(400, "malformed-json", "Malformed JSON", f"the body is not JSON: {error}")
        ) from None
    if not isinstance(payload, dict):
        raise invalid("body", "the request body must be a JSON object")
    for field in payload:
        if field not in FIELDS:
            raise invalid(field, f"unknown field {field!r}; a new key takes {', '.join(FIELDS)}")
    return payload


class KeyRoutes:
    """The routes, reading the key store through ``store()`` (open once the server runs)."""

    def __init__(self, store: Callable[[], KeyStorage]) -> None:
        self.store = store

    def blueprint(self) -> Blueprint:
        bp = Blueprint("auth_apikey", __name__, url_prefix=PREFIX)
        tag_blueprint(bp, ["keys"])
        bp.add_url_rule("", view_func=self.list_keys, methods=["GET"])
        bp.add_url_rule("", view_func=self.create_key, methods=["POST"])
        bp.add_url_rule("/<key_id>", view_func=self.get_key, methods=["GET"])
        bp.add_url_rule("/<key_id>", view_func=self.revoke_key, methods=["DELETE"])
        return bp

    @document_response(ApiKeyList, 200)
    @requires("admin")
    async def list_keys(self) -> Response:
        """The caller's tenant's keys, revoked ones included; never a secret."""
        keys = await self.store().list(tenant=_principal().tenant)
        return _json(ApiKeyList(keys=[key.body() for key in keys]).model_dump())

    @document_request(CreateApiKey)
    @document_response(NewApiKeyBody, 201)
    @_problems(400, 403, 415, 422)
    @requires("admin")
    async def create_key(self) -> Response:
        """A new key of the caller's tenant; the answer is the only time the key is shown."""
        principal = _principal()
        body = await _body()
        try:
            tier = checked_tier(body.get("tier", principal.tier))
            scopes = checked_scopes(body.get("scopes"))
            name = checked_name(body.get("name"))
        except InvalidKeyField as error:
            raise invalid(error.field, str(error)) from None
        if tier_rank(tier) > tier_rank(principal.tier):
            raise _refused(
                "tier", f"a {principal.tier} key cannot create a {tier} key: "
                "choose a tier no higher than your own",
            )  # fmt: skip
        beyond = [scope for scope in scopes if scope not in principal.scopes]
        if beyond:
            raise _refused(
                "scopes", f"this key cannot grant {', '.join(beyond)}: it lacks that scope"
            )
        issued = await self.store().create(principal.tenant, tier, scopes, name)
        new = NewApiKeyBody(**issued.key.body().model_dump(), key=issued.secret)
        return _json(
            new.model_dump(),
            201,
            {"Location": f"{PREFIX}/{issued.key.id}", "Cache-Control": "no-store"},
        )

    @document_response(ApiKeyBody, 200)
    @_problems(404)
    @requires("admin")
    async def get_key(self, key_id: str) -> Response:
        """One key of the caller's tenant; another tenant's key id is 404."""
        key = await self.store().get(_checked_id(key_id), tenant=_principal().tenant)
        if key is None:
            raise _missing(key_id)
        return _json(key.body().model_dump())

    @document_response(NoContent, 204)
    @_problems(404)
    @requires("admin")
    async def revoke_key(self, key_id: str) -> Response:
        """Revoke a key of the caller's tenant: it is refused from the next request on."""
        key = await self.store().revoke(_checked_id(key_id), tenant=_principal().tenant)
        if key is None:
            raise _missing(key_id)
        return Response("", 204)


def _principal() -> Principal:
    principal = getattr(g, "principal", None)
    if not isinstance(principal, Principal):  # the guard admits every marked route first
        raise RuntimeError("no principal: the request did not pass the guard")
    return principal


def _checked_id(key_id: str) -> str:
    if not KEY_ID.fullmatch(key_id):
        raise _missing(key_id)  # no key has such an id
    return key_id


def _missing(key_id: str) -> ProblemError:
    return ProblemError(
        Problem(404, "not-found", "API key not found", f"no API key {key_id}", {"field": "key_id"})
    )
