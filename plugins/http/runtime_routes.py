"""Seed 004's runtime endpoints: ``/api/status``, ``/api/stats``, ``/api/connections``.

Every figure is the answering worker's own (``core/runtime``), measured as it served;
each body names the worker (``worker``), as does the ``X-ButterflyFX-Worker`` header.
``/api/status`` and ``/api/stats`` need credentials of any scope, or none when
``http.public_status`` is true; ``/api/connections`` shows client addresses, so it
always needs ``admin``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from quart import Blueprint, Quart, Response, request
from quart_schema import document_querystring, document_response, tag_blueprint

from butterflyfx.core.auth import ATTRIBUTE, any_principal, open_route, requires
from butterflyfx.core.context import ServerContext
from butterflyfx.core.problems import invalid
from butterflyfx.core.runtime import POOLS, STATES, runtime_of
from butterflyfx.interface.machine.runtime import (
    ConnectionsBody,
    ConnectionsQuery,
    StatsBody,
    StatusBody,
)
from butterflyfx.kernel import format_timestamp

from .edge import POOL_KEY
from .json import json_response
from .querystring import refuse_unknown, whole_number
from .substrates import problems
from .system import server_version

WORKER_HEADER = "X-ButterflyFX-Worker"
DEFAULT_RECENT = 50
MAX_RECENT = 1000


def worker_headers(ctx: ServerContext) -> dict[str, str]:
    """Which worker answered, and that the figures are live."""
    return {WORKER_HEADER: ctx.worker_id, "Cache-Control": "no-store"}


def mark_admin_pool(app: Quart) -> None:
    """Count requests to routes marked ``requires("admin")`` in the ``admin`` pool.

    Runs before every other ``before_request`` function (the guard's included), so a
    refused admin request is counted there too.
    """
    admin: set[str] | None = None

    async def classify() -> None:
        nonlocal admin
        if admin is None:  # every blueprint is registered by the first request
            admin = {
                endpoint for endpoint, view in app.view_functions.items()
                if getattr(view, ATTRIBUTE, None) == "admin"
            }  # fmt: skip
        if request.endpoint in admin:
            request.scope[POOL_KEY] = "admin"

    app.before_request_funcs.setdefault(None, []).insert(0, classify)


class RuntimeRoutes:
    """The runtime endpoints, bound to one server context."""

    def __init__(self, ctx: ServerContext, public: bool = False) -> None:
        self.ctx = ctx
        self.runtime = runtime_of(ctx)
        self.public = public
        self.version = server_version()

    def blueprint(self) -> Blueprint:
        bp = Blueprint("runtime", __name__, url_prefix="/api")
        tag_blueprint(bp, ["system"])
        # The marks go on functions made here: whether they are open is this server's choice.
        mark = open_route if self.public else any_principal

        @document_response(StatusBody, 200)
        @problems(401)
        @mark
        async def server_status() -> Response:
            """Version, uptime, plugins and their states, engines and limits of this worker."""
            return json_response(self.status(), headers=worker_headers(self.ctx))

        @document_response(StatsBody, 200)
        @problems(401)
        @mark
        async def server_stats() -> Response:
            """This worker's connections by pool (seed 004 spirals) and request statistics."""
            body = {**self.runtime.stats(), "worker": self.ctx.worker_id}
            return json_response(body, headers=worker_headers(self.ctx))

        @document_querystring(ConnectionsQuery)
        @document_response(ConnectionsBody, 200)
        @problems(400, 401, 403, 422)
        @requires("admin")
        async def server_connections() -> Response:
            """This worker's connections by pool and state, and the most recent ones
            (address, pool, state, age). Admin keys only: it shows client addresses."""
            return json_response(self.connections(), headers=worker_headers(self.ctx))

        bp.add_url_rule("/status", view_func=server_status, methods=["GET"])
        bp.add_url_rule("/stats", view_func=server_stats, methods=["GET"])
        bp.add_url_rule("/connections", view_func=server_connections, methods=["GET"])
        return bp

    def status(self) -> dict[str, Any]:
        ctx, settings = self.ctx, self.ctx.settings
        return {
            "version": self.version,
            "worker": ctx.worker_id,
            "run_id": ctx.run_id,
            "started_at": format_timestamp(datetime.fromtimestamp(ctx.started_at, UTC)),
            "uptime_seconds": round(time.time() - ctx.started_at, 3),
            "plugins": dict(ctx.states),
            "storage": ctx.storage_plugin,
            "graph": ctx.graph_plugin,
            "limits": {
                "max_connections": settings.max_connections,
                "backlog": settings.backlog or settings.max_connections,
                "timeout": settings.timeout,
                "archived_connections": settings.archived_connections,
                "max_body_bytes": settings.max_body_bytes,
                "workers": settings.workers,
                "graph_max_depth": settings.graph_max_depth,
                "graph_max_nodes": settings.graph_max_nodes,
                "graph_node_budget": settings.graph_node_budget,
            },
        }

    def connections(self) -> dict[str, Any]:
        args = request.args
        refuse_unknown(args, ("limit",))
        limit = whole_number(args, "limit")
        if limit is None:
            limit = DEFAULT_RECENT
        elif limit > MAX_RECENT:
            raise invalid("limit", f"limit must be at most {MAX_RECENT}", maximum=MAX_RECENT)
        tracker = self.runtime.connections
        pools = {
            pool: {
                "spiral": spiral,
                "states": tracker.state_counts(pool),
                "refused": tracker.refused(pool),
            }
            for spiral, pool in enumerate(POOLS)
        }
        return {
            "worker": self.ctx.worker_id,
            "open": tracker.open_count,
            "max_connections": tracker.max_connections,
            "timeout": tracker.timeout,
            "pools": pools,
            "states": {
                state: sum(pools[pool]["states"][state] for pool in POOLS) for state in STATES
            },
            "recent": tracker.recent(limit),
        }
