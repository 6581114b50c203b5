"""``/api/v1/relationships``: create (one or a batch), read, delete, list (all of them or
by direction); the neighbourhood."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, request
from quart_schema import document_querystring, document_request, document_response, tag_blueprint
from werkzeug.exceptions import MethodNotAllowed

from butterflyfx.core.auth import requires
from butterflyfx.core.context import ServerContext
from butterflyfx.core.problems import Problem
from butterflyfx.core.relationships import NewRelationship
from butterflyfx.core.relationships import RelationshipPage as Page
from butterflyfx.core.store import Direction
from butterflyfx.interface.machine.models import (
    CreateRelationship,
    CreateRelationships,
    GraphBody,
    GraphQuery,
    ListAllRelationshipsQuery,
    ListRelationshipsQuery,
    NoContent,
    RelationshipBatch,
    RelationshipBatchBody,
    RelationshipBody,
    RelationshipPage,
)
from butterflyfx.kernel import Relationship, format_id, format_timestamp

from .bodies import read_body
from .json import dumps, json_response
from .querystring import name_list, refuse_unknown, required, whole_number
from .substrates import (
    BATCH,
    DEFAULT_PAGE,
    batch_response,
    bodiless,
    checked_id,
    path_id,
    problems,
    read_batch,
    substrate_dict,
)
from .tenancy import current_tenant

PREFIX = "/api/v1/relationships"


def relationship_dict(relationship: Relationship) -> dict[str, Any]:
    """A relationship as the API writes it: ends as ``0x`` ids, like substrates."""
    return {
        "relationship_id": relationship.relationship_id,
        "source_id": format_id(relationship.source),
        "target_id": format_id(relationship.target),
        "relationship_type": relationship.relationship_type,
        "bidirectional": relationship.bidirectional,
        "weight": relationship.weight,
        "metadata": relationship.metadata,
        "created_at": format_timestamp(relationship.created_at),
    }


def page_response(page: Page) -> Response:
    return json_response(
        {"items": [relationship_dict(r) for r in page.items], "next_cursor": page.next_cursor}
    )


class RelationshipRoutes:
    """The handlers, bound to one server context."""

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx

    def blueprint(self) -> Blueprint:
        bp = Blueprint("relationships", __name__, url_prefix=PREFIX)
        tag_blueprint(bp, ["relationships"])
        bp.add_url_rule("", view_func=self.create_relationship, methods=["POST"])
        bp.add_url_rule("", view_func=self.list_relationships, methods=["GET"])
        bp.add_url_rule(f"/{BATCH}", view_func=self.create_relationships, methods=["POST"])
        # Fixed segments outrank <relationship_id> in werkzeug's routing, whatever the order.
        bp.add_url_rule("/graph", view_func=self.relationship_graph, methods=["GET"])
        bp.add_url_rule(
            "/outgoing/<substrate_id>", view_func=self.outgoing_relationships, methods=["GET"]
        )
        bp.add_url_rule(
            "/incoming/<substrate_id>", view_func=self.incoming_relationships, methods=["GET"]
        )
        bp.add_url_rule("/<relationship_id>", view_func=self.get_relationship, methods=["GET"])
        bp.add_url_rule(
            "/<relationship_id>", view_func=self.delete_relationship, methods=["DELETE"]
        )
        return bp

    @document_request(CreateRelationship)
    @document_response(RelationshipBody, 201)
    @document_response(RelationshipBody, 200)
    @problems(400, 404, 413, 415, 422)
    @requires("write")
    async def create_relationship(self) -> Response:
        """Relate two substrates.

        201 with a Location header when it is new; 200 with the stored one (unchanged)
        when the same source, target and type are already related. 404 names the end
        (source_id or target_id) that does not exist.
        """
        body = await read_body(CreateRelationship)
        checked_id(body.source_id, "source_id")
        checked_id(body.target_id, "target_id")
        relationship, created = await self.ctx.relationships.create(
            current_tenant(), body.source_id, body.target_id, body.relationship_type,
            bidirectional=body.bidirectional, weight=body.weight, metadata=body.metadata,
        )  # fmt: skip
        headers = {"Location": f"{PREFIX}/{relationship.relationship_id}"} if created else None
        return Response(
            dumps(relationship_dict(relationship)),
            201 if created else 200,
            headers,
            content_type="application/json",
        )

    @document_request(CreateRelationships)
    @document_response(RelationshipBatchBody, 200)
    @problems(400, 413, 415, 422)
    @requires("write")
    async def create_relationships(self) -> Response:
        """Create up to 500 relationships in one request (one write for the rate limiter).

        200 with one result per item, in order: ``status`` 201 and the ``relationship``
        when it is new, 200 and the stored one when the same ends and type are already
        related, or a 4xx and the ``problem`` that refused that item alone: 404 naming
        ``source_id`` or ``target_id`` for a missing end, 422 for an unknown type or a
        self-loop. The valid items are stored in one transaction. A malformed body (no
        ``relationships`` array, an empty one, more than 500 items) is a 4xx problem.
        """
        read = await read_batch(RelationshipBatch, "relationships", CreateRelationship)
        wanted = [
            NewRelationship(
                item.source_id,
                item.target_id,
                item.relationship_type,
                item.bidirectional,
                item.weight,
                item.metadata,
            )  # fmt: skip
            for item in read
            if not isinstance(item, Problem)
        ]
        service = self.ctx.relationships
        outcomes = await service.create_many(current_tenant(), wanted) if wanted else []
        return batch_response(read, outcomes, "relationship", relationship_dict)

    @document_querystring(ListAllRelationshipsQuery)
    @document_response(RelationshipPage, 200)
    @problems(400, 422)
    @requires("read")
    async def list_relationships(self) -> Response:
        """Every relationship of the tenant, each once, in ascending id order, a page at
        a time. With ``type``, a page may hold fewer than ``limit`` items (even none)
        while ``next_cursor`` goes on: follow it until it is null."""
        args = request.args
        refuse_unknown(args, ("type", "limit", "cursor"))
        limit = whole_number(args, "limit")
        page = await self.ctx.relationships.list_all(
            current_tenant(), types=name_list(args, "type"),
            limit=DEFAULT_PAGE if limit is None else limit, cursor=args.get("cursor"),
        )  # fmt: skip
        return page_response(page)

    @document_response(RelationshipBody, 200)
    @problems(400, 404)
    @requires("read")
    async def get_relationship(self, relationship_id: str) -> Response:
        """Get a relationship."""
        found = await self.ctx.relationships.get(
            current_tenant(), path_id(relationship_id, "relationship_id")
        )
        return json_response(relationship_dict(found))

    @document_response(NoContent, 204)
    @problems(400, 404)
    @requires("write")
    async def delete_relationship(self, relationship_id: str) -> Response:
        """Delete a relationship (its substrates stay)."""
        if relationship_id == "graph":  # the neighbourhood is read-only, not a relationship id
            raise MethodNotAllowed(valid_methods=["GET", "HEAD"])
        await self.ctx.relationships.delete(
            current_tenant(), path_id(relationship_id, "relationship_id")
        )
        return bodiless(204)

    @document_querystring(ListRelationshipsQuery)
    @document_response(RelationshipPage, 200)
    @problems(400, 404, 422)
    @requires("read")
    async def outgoing_relationships(self, substrate_id: str) -> Response:
        """The substrate's outgoing relationships (with the bidirectional ones it ends)."""
        return await self.listing(substrate_id, "outgoing")

    @document_querystring(ListRelationshipsQuery)
    @document_response(RelationshipPage, 200)
    @problems(400, 404, 422)
    @requires("read")
    async def incoming_relationships(self, substrate_id: str) -> Response:
        """The substrate's incoming relationships (with the bidirectional ones it starts)."""
        return await self.listing(substrate_id, "incoming")

    async def listing(self, substrate_id: str, direction: Direction) -> Response:
        checked_id(substrate_id)
        args = request.args
        refuse_unknown(args, ("type", "limit", "cursor"))
        limit = whole_number(args, "limit")
        page = await self.ctx.relationships.list(
            current_tenant(), substrate_id, direction, types=name_list(args, "type"),
            limit=DEFAULT_PAGE if limit is None else limit, cursor=args.get("cursor"),
        )  # fmt: skip
        return page_response(page)

    @document_querystring(GraphQuery)
    @document_response(GraphBody, 200)
    @problems(400, 404, 422, 503)
    @requires("read")
    async def relationship_graph(self) -> Response:
        """The neighbourhood of a substrate: nodes within ``depth`` either way, and edges.

        ``nodes`` are whole substrates, so a client can label and draw them without one
        more request each; ``edges`` are every relationship (of the chosen types) between
        two of them. Breadth first from the root; ``truncated`` when ``max_nodes`` left
        some out. 503 when no graph engine plugin is loaded.
        """
        args = request.args
        refuse_unknown(args, ("root", "depth", "types", "max_nodes"))
        root = checked_id(required(args, "root"), "root")
        found = await self.ctx.queries.subgraph(
            current_tenant(), root, depth=whole_number(args, "depth"),
            types=name_list(args, "types"), max_nodes=whole_number(args, "max_nodes"),
        )  # fmt: skip
        return json_response(
            {
                "root": format_id(found.root),
                "depth": found.depth,
                "max_nodes": found.max_nodes,
                "relationship_types": list(found.types) if found.types else None,
                "nodes": [substrate_dict(s) for s in found.nodes],
                "edges": [relationship_dict(r) for r in found.edges],
                "truncated": found.truncated,
            }
        )
