"""``/api/v1/substrates``: create (one or a batch), read, list, patch, delete, divide,
invoke and multiply."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from quart import Blueprint, Response, request
from quart_schema import (
    document_querystring,
    document_request,
    document_response,
    tag_blueprint,
)
from werkzeug.exceptions import MethodNotAllowed

from butterflyfx.core.auth import requires
from butterflyfx.core.context import ServerContext
from butterflyfx.core.problems import Problem, ProblemError, invalid, problem_for
from butterflyfx.core.substrates import BatchOutcome, NewSubstrate
from butterflyfx.interface.machine.models import (
    CreateSubstrate,
    CreateSubstrates,
    DivideSubstrate,
    DivisionBody,
    InvocationBody,
    InvokeSubstrate,
    ListSubstratesQuery,
    MultiplySubstrates,
    NoContent,
    NotModified,
    ProblemBody,
    SubstrateBatch,
    SubstrateBatchBody,
    SubstrateBody,
    SubstratePage,
    UpdateSubstrate,
)
from butterflyfx.kernel import (
    ExpressionRejected,
    InvalidSubstrateId,
    Substrate,
    format_timestamp,
    parse_id,
)

from .bodies import read_body
from .json import dumps, json_response
from .problems import validation_problem
from .tenancy import current_tenant

PREFIX = "/api/v1/substrates"
DEFAULT_PAGE = 100
BATCH = "batch"  # the fixed segment of the batch routes, never an id
T = TypeVar("T", bound=Callable[..., Any])
M = TypeVar("M", bound=BaseModel)


def problems(*statuses: int) -> Callable[[T], T]:
    """Document the problem responses a route gives (bad input, missing substrate...)."""

    def decorate(func: T) -> T:
        for status in statuses:
            func = document_response(ProblemBody, status)(func)
        return func

    return decorate


def substrate_dict(substrate: Substrate) -> dict[str, Any]:
    """A substrate as the API writes it (seed field names)."""
    return {
        "substrate_id": substrate.substrate_id,
        "identity": substrate.identity,
        "created_at": format_timestamp(substrate.created_at),
        "expression_type": substrate.expression_type,
        "expression_code": substrate.expression_code,
        "metadata": substrate.metadata,
        "updated_at": format_timestamp(substrate.updated_at),
        "version": substrate.version,
    }


def entity_tag(substrate: Substrate, body: bytes) -> str:
    """A strong ETag: identity and version to read, a digest of the bytes to be exact
    (a substrate deleted and created again restarts at version 1 with other metadata)."""
    digest = hashlib.blake2b(body, digest_size=6).hexdigest()
    return f'"{substrate.identity:016x}-{substrate.version}-{digest}"'


def etag_matches(header: str, etag: str) -> bool:
    """RFC 9110 If-None-Match: weak comparison against any listed tag, or ``*``."""
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == etag:
            return True
    return False


def substrate_response(substrate: Substrate, status: int = 200) -> Response:
    body = dumps(substrate_dict(substrate))
    headers = {"ETag": entity_tag(substrate, body)}
    if status == 201:
        headers["Location"] = f"{PREFIX}/{substrate.substrate_id}"
    return Response(body, status, headers, content_type="application/json")


def bodiless(status: int, headers: dict[str, str] | None = None) -> Response:
    """A 204 or 304: no Content-Type, and no Content-Length (RFC 9110 8.6, 15.4.5)."""
    response = Response(b"", status, headers)
    del response.headers["Content-Type"]
    del response.headers["Content-Length"]
    return response


def checked_id(substrate_id: str, field: str = "substrate_id") -> str:
    """``substrate_id`` if well formed, else a 400 naming ``field``; checked before the body
    is read so a request wrong in both ways hears about the id first."""
    try:
        parse_id(substrate_id)
    except InvalidSubstrateId as error:
        raise problem_error(error, field) from None
    return substrate_id


def problem_error(error: Exception, field: str) -> ProblemError:
    """The kernel's ``error`` as a problem blaming ``field``."""
    problem = problem_for(error, field)
    if problem is None:
        raise error
    return ProblemError(problem)


def path_id(value: str, field: str) -> str:
    """An id from the URL path: ``batch`` there is the batch route, which only takes POST
    (405, not a 400 about a malformed id); anything else as :func:`checked_id`."""
    if value == BATCH:
        raise MethodNotAllowed(valid_methods=["POST"])
    return checked_id(value, field)


async def read_batch(envelope: type[BaseModel], key: str, item: type[M]) -> list[M | Problem]:
    """The items of a batch body, each read as ``item`` on its own: a malformed envelope
    (not an object, ``key`` missing, empty or too long, another field) refuses the whole
    request; a malformed item becomes its own 422 problem and the others go on."""
    body = await read_body(envelope)
    read: list[M | Problem] = []
    for raw in getattr(body, key):
        try:
            read.append(item.model_validate(raw))
        except ValidationError as error:
            read.append(validation_problem(error))
    return read


def batch_response(
    read: Sequence[object],
    outcomes: Sequence[BatchOutcome[Any]],
    key: str,
    to_dict: Callable[[Any], dict[str, Any]],
) -> Response:
    """200 with one result per item of ``read`` (in order) and the counts: the items that
    were read as problems, and the service's ``outcomes`` for the others, in turn."""
    results: list[dict[str, Any]] = []
    counts = {"created": 0, "existing": 0, "failed": 0}
    served = iter(outcomes)
    for item in read:
        outcome = BatchOutcome[Any](problem=item) if isinstance(item, Problem) else next(served)
        if outcome.problem is not None:
            counts["failed"] += 1
            results.append({"status": outcome.problem.status, "problem": outcome.problem.to_dict()})
        else:
            counts["created" if outcome.created else "existing"] += 1
            results.append(
                {"status": 201 if outcome.created else 200, key: to_dict(outcome.stored)}
            )
    return json_response({"results": results, **counts})


def page_limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_PAGE
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 7:
        raise invalid("limit", "limit must be a whole number from 1 to 1000", status=400)
    return int(raw)


class SubstrateRoutes:
    """The handlers, bound to one server context."""

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx

    def blueprint(self) -> Blueprint:
        bp = Blueprint("substrates", __name__, url_prefix=PREFIX)
        tag_blueprint(bp, ["substrates"])
        bp.add_url_rule("", view_func=self.create_substrate, methods=["POST"])
        bp.add_url_rule("", view_func=self.list_substrates, methods=["GET"])
        bp.add_url_rule(f"/{BATCH}", view_func=self.create_substrates, methods=["POST"])
        bp.add_url_rule("/multiply", view_func=self.multiply_substrates, methods=["POST"])
        bp.add_url_rule("/<substrate_id>", view_func=self.get_substrate, methods=["GET"])
        bp.add_url_rule("/<substrate_id>", view_func=self.update_substrate, methods=["PATCH"])
        bp.add_url_rule("/<substrate_id>", view_func=self.delete_substrate, methods=["DELETE"])
        bp.add_url_rule("/<substrate_id>/divide", view_func=self.divide_substrate, methods=["POST"])
        bp.add_url_rule("/<substrate_id>/invoke", view_func=self.invoke_substrate, methods=["POST"])
        return bp

    @document_request(CreateSubstrate)
    @document_response(SubstrateBody, 201)
    @document_response(SubstrateBody, 200)
    @problems(400, 413, 415, 422)
    @requires("write")
    async def create_substrate(self) -> Response:
        """Create a substrate.

        201 with a Location header when it is new; 200 with the stored one (unchanged)
        when the tenant already has the same expression.
        """
        body = await read_body(CreateSubstrate)
        substrate, created = await self.ctx.substrates.create(
            current_tenant(), body.expression_type, body.expression_code, body.metadata
        )
        return substrate_response(substrate, 201 if created else 200)

    @document_request(CreateSubstrates)
    @document_response(SubstrateBatchBody, 200)
    @problems(400, 413, 415, 422)
    @requires("write")
    async def create_substrates(self) -> Response:
        """Create up to 500 substrates in one request (one write for the rate limiter).

        200 with one result per item, in order: ``status`` 201 and the ``substrate`` when
        it is new, 200 and the stored one when the tenant already has the expression, or a
        4xx and the ``problem`` that refused that item alone (``field`` names the item's
        field). The valid items are stored in one transaction. A malformed body (no
        ``substrates`` array, an empty one, more than 500 items) is a 4xx problem.
        """
        read = await read_batch(SubstrateBatch, "substrates", CreateSubstrate)
        wanted = [
            NewSubstrate(item.expression_type, item.expression_code, item.metadata)
            for item in read
            if not isinstance(item, Problem)
        ]
        outcomes = await self.ctx.substrates.create_many(current_tenant(), wanted) if wanted else []
        return batch_response(read, outcomes, "substrate", substrate_dict)

    @document_querystring(ListSubstratesQuery)
    @document_response(SubstratePage, 200)
    @problems(400)
    @requires("read")
    async def list_substrates(self) -> Response:
        """List substrates in identity order, a page at a time."""
        args = request.args
        page = await self.ctx.substrates.list(
            current_tenant(), limit=page_limit(args.get("limit")), cursor=args.get("cursor")
        )
        return json_response(
            {"items": [substrate_dict(s) for s in page.items], "next_cursor": page.next_cursor}
        )

    @document_response(SubstrateBody, 200)
    @document_response(NotModified, 304)
    @problems(400, 404)
    @requires("read")
    async def get_substrate(self, substrate_id: str) -> Response:
        """Get a substrate.

        Carries a strong ETag; send it back in If-None-Match to get 304 when unchanged.
        """
        substrate = await self.ctx.substrates.get(
            current_tenant(), path_id(substrate_id, "substrate_id")
        )
        response = substrate_response(substrate)
        wanted = request.headers.get("If-None-Match")
        if wanted and etag_matches(wanted, response.headers["ETag"]):
            return bodiless(304, {"ETag": response.headers["ETag"]})
        return response

    @document_request(UpdateSubstrate)
    @document_response(SubstrateBody, 200)
    @problems(400, 404, 413, 415, 422)
    @requires("write")
    async def update_substrate(self, substrate_id: str) -> Response:
        """Update a substrate's metadata with a JSON merge patch (RFC 7396)."""
        path_id(substrate_id, "substrate_id")
        body = await read_body(UpdateSubstrate)
        service, tenant = self.ctx.substrates, current_tenant()
        if "metadata" not in body.model_fields_set:  # an empty patch changes nothing
            return substrate_response(await service.get(tenant, substrate_id))
        patch = body.metadata
        if patch is None:  # {"metadata": null} removes the whole object's members
            current = await service.get(tenant, substrate_id)
            patch = dict.fromkeys(current.metadata)
        return substrate_response(await service.update_metadata(tenant, substrate_id, patch))

    @document_response(NoContent, 204)
    @problems(400, 404)
    @requires("write")
    async def delete_substrate(self, substrate_id: str) -> Response:
        """Delete a substrate."""
        await self.ctx.substrates.delete(current_tenant(), path_id(substrate_id, "substrate_id"))
        return bodiless(204)

    @document_request(DivideSubstrate)
    @document_response(DivisionBody, 200)
    @problems(400, 404, 415, 422)
    @requires("read")
    async def divide_substrate(self, substrate_id: str) -> Response:
        """Divide a substrate into its nine dimensions (Fibonacci levels 0..21)."""
        checked_id(substrate_id)
        await read_body(DivideSubstrate)
        division = await self.ctx.substrates.divide(current_tenant(), substrate_id)
        return json_response(division.to_dict())

    @document_request(InvokeSubstrate)
    @document_response(InvocationBody, 200)
    @problems(400, 404, 413, 415, 422)
    @requires("invoke")
    async def invoke_substrate(self, substrate_id: str) -> Response:
        """Invoke a substrate's expression with parameters."""
        checked_id(substrate_id)
        body = await read_body(InvokeSubstrate)
        done = await self.ctx.substrates.invoke(current_tenant(), substrate_id, body.parameters)
        return json_response(
            {
                "substrate_id": done.substrate_id,
                "result": done.result,
                "invocation_time_ms": done.invocation_time_ms,
            }
        )

    @document_request(MultiplySubstrates)
    @document_response(SubstrateBody, 201)
    @document_response(SubstrateBody, 200)
    @problems(400, 404, 413, 415, 422)
    @requires("write")
    async def multiply_substrates(self) -> Response:
        """Multiply: rebuild a substrate from its dimensions, or compose a product.

        With ``dimensions`` (as divide returned them) the substrate they came from is
        rebuilt, same identity. With ``substrate_ids`` the product of those substrates is
        created. 201 when the result is new to the tenant, 200 when it already existed.
        """
        body = await read_body(MultiplySubstrates)
        service, tenant = self.ctx.substrates, current_tenant()
        if (body.dimensions is None) == (body.substrate_ids is None):
            both = body.dimensions is not None
            raise invalid(
                "substrate_ids" if both else "dimensions",
                "give exactly one of dimensions (to rebuild a substrate) or substrate_ids "
                f"(to compose a product), {'not both' if both else 'neither was given'}",
            )
        if body.dimensions is not None:
            dimensions = [dimension.model_dump() for dimension in body.dimensions]
            substrate, created = await service.multiply_dimensions(tenant, dimensions)
        else:
            ids = body.substrate_ids or []
            for index, substrate_id in enumerate(ids):
                checked_id(substrate_id, f"substrate_ids[{index}]")
            try:
                substrate, created = await service.multiply_substrates(tenant, ids)
            except ExpressionRejected as error:  # the product would pass the static limits
                raise problem_error(error, "substrate_ids") from None
        return substrate_response(substrate, 201 if created else 200)
