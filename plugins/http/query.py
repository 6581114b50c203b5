"""``/api/v1/query``: traverse, shortest path, search and statistics."""

from __future__ import annotations

from quart import Blueprint, Response
from quart_schema import document_request, document_response, tag_blueprint

from butterflyfx.core.auth import requires
from butterflyfx.core.context import ServerContext
from butterflyfx.core.queries import parse_instant
from butterflyfx.interface.machine.models import (
    PathBody,
    PathRequest,
    SearchRequest,
    StatsBody,
    SubstratePage,
    TraverseBody,
    TraverseRequest,
)
from butterflyfx.kernel import format_id, format_timestamp

from .bodies import read_body
from .json import json_response
from .relationships import relationship_dict
from .substrates import checked_id, problems, substrate_dict
from .tenancy import current_tenant

PREFIX = "/api/v1/query"


class QueryRoutes:
    """The handlers, bound to one server context."""

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx

    def blueprint(self) -> Blueprint:
        bp = Blueprint("query", __name__, url_prefix=PREFIX)
        tag_blueprint(bp, ["query"])
        bp.add_url_rule("/traverse", view_func=self.traverse, methods=["POST"])
        bp.add_url_rule("/path", view_func=self.shortest_path, methods=["POST"])
        bp.add_url_rule("/search", view_func=self.search, methods=["POST"])
        bp.add_url_rule("/stats", view_func=self.stats, methods=["GET"])
        return bp

    @document_request(TraverseRequest)
    @document_response(TraverseBody, 200)
    @problems(400, 404, 413, 415, 422, 503)
    @requires("read")
    async def traverse(self) -> Response:
        """Traverse the relationship graph breadth first from a substrate.

        Each substrate reached is listed once, at its smallest depth, with one shortest
        path from the start; the start itself comes first, at depth 0. Cycles end. The
        limits in force are echoed; ``truncated`` says the limit or the server's node
        budget stopped the walk. A limit above the server's ceiling is a 422 naming it.
        """
        body = await read_body(TraverseRequest)
        checked_id(body.start_id, "start_id")
        found = await self.ctx.queries.traverse(
            current_tenant(), body.start_id, direction=body.direction,
            max_depth=body.max_depth, types=body.relationship_types, limit=body.limit,
        )  # fmt: skip
        return json_response(
            {
                "start_id": format_id(found.start),
                "direction": found.direction,
                "max_depth": found.max_depth,
                "relationship_types": list(found.types) if found.types else None,
                "limit": found.limit,
                "node_budget": found.node_budget,
                "results": [
                    {
                        "substrate_id": format_id(node.identity),
                        "depth": node.depth,
                        "path": [format_id(step) for step in node.path],
                    }
                    for node in found.nodes
                ],
                "truncated": found.truncated,
            }
        )

    @document_request(PathRequest)
    @document_response(PathBody, 200)
    @problems(400, 404, 413, 415, 422, 503)
    @requires("read")
    async def shortest_path(self) -> Response:
        """The shortest path between two substrates, by hops or (weighted) by total weight.

        A relationship without a weight weighs 1. 404 ``no-path`` when none exists within
        ``max_depth``; 404 ``not-found`` naming source_id or target_id when one is missing.
        """
        body = await read_body(PathRequest)
        checked_id(body.source_id, "source_id")
        checked_id(body.target_id, "target_id")
        found = await self.ctx.queries.path(
            current_tenant(), body.source_id, body.target_id, weighted=body.weighted,
            direction=body.direction, max_depth=body.max_depth, types=body.relationship_types,
        )  # fmt: skip
        return json_response(
            {
                "source_id": format_id(found.source),
                "target_id": format_id(found.target),
                "weighted": found.weighted,
                "direction": found.direction,
                "max_depth": found.max_depth,
                "relationship_types": list(found.types) if found.types else None,
                "nodes": [format_id(node) for node in found.path.nodes],
                "edges": [relationship_dict(edge) for edge in found.path.edges],
                "hops": found.hops,
                "total_weight": found.path.total_weight,
            }
        )

    @document_request(SearchRequest)
    @document_response(SubstratePage, 200)
    @problems(400, 413, 415, 422)
    @requires("read")
    async def search(self) -> Response:
        """Search substrates: every filter given must hold; ascending identity, paginated."""
        body = await read_body(SearchRequest)
        after = before = None
        if body.created_after is not None:
            after = parse_instant(body.created_after, "created_after")
        if body.created_before is not None:
            before = parse_instant(body.created_before, "created_before")
        page = await self.ctx.queries.search(
            current_tenant(), expression_type=body.expression_type, metadata=body.metadata,
            name_prefix=body.name_prefix, code_contains=body.code_contains,
            created_after=after, created_before=before,
            has_relationship_type=body.has_relationship_type,
            limit=body.limit, cursor=body.cursor,
        )  # fmt: skip
        return json_response(
            {"items": [substrate_dict(s) for s in page.items], "next_cursor": page.next_cursor}
        )

    @document_response(StatsBody, 200)
    @requires("read")
    async def stats(self) -> Response:
        """Counts of substrates, relationships by type and invocations, with the storage
        and graph engine plugins in use and the uptime.

        Invocations other workers have not yet written (server.invocation_flush_seconds)
        are not counted.
        """
        found = await self.ctx.queries.stats(current_tenant())
        calls = found.invocations
        return json_response(
            {
                "substrates": found.substrates,
                "relationships": {
                    "total": sum(found.relationships.values()),
                    "by_type": dict(found.relationships),
                },
                "invocations": {
                    "count": calls.count,
                    "errors": calls.errors,
                    "total_ms": round(calls.total_ms, 6),
                    "mean_ms": round(calls.total_ms / calls.count, 6) if calls.count else None,
                    "last_invoked_at": format_timestamp(calls.last_invoked_at),
                },
                "storage": found.storage,
                "graph_engine": found.graph_engine,
                "uptime_seconds": found.uptime_seconds,
            },
            headers={"Cache-Control": "no-store"},
        )
