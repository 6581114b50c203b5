"""``GET /api/v1/metrics`` and ``GET /metrics``: the Prometheus text exposition."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from quart import Blueprint, Response
from quart_schema import tag_blueprint

from butterflyfx.core.auth import open_route, requires
from butterflyfx.core.problems import Problem, ProblemError

from .store_counts import count_store

if TYPE_CHECKING:
    from butterflyfx.core.context import ServerContext

    from .instruments import Instruments

# endpoint -> path; /metrics is where scrapers look when told nothing else
PATHS = {"api_metrics": "/api/v1/metrics", "metrics": "/metrics"}


def metrics_blueprint(
    ctx: ServerContext, public: bool, instruments_of: Callable[[], Instruments | None]
) -> Blueprint:
    """The routes, open to anyone when ``public``, else to principals with ``admin``."""

    async def metrics() -> Response:
        """Prometheus metrics, in the text exposition format.

        Requests by route template and status, latency, requests in flight, connections
        by pool and state, invocations, evaluation errors, auth failures, rate-limit
        refusals, the store's size. Needs the admin scope unless ``[metrics] public`` is
        true.
        """
        instruments = instruments_of()
        if instruments is None:
            raise ProblemError(
                Problem(503, "metrics-unavailable", "Metrics unavailable",
                        "the metrics plugin has not started", headers={"Retry-After": "5"})
            )  # fmt: skip
        body = instruments.exposition(await count_store(ctx))
        return Response(
            body, 200, content_type=instruments.content_type,
            headers={"Cache-Control": "no-store"},
        )  # fmt: skip

    mark: Callable[[Callable[[], Awaitable[Response]]], Callable[[], Awaitable[Response]]]
    mark = open_route if public else requires("admin")
    view = mark(metrics)
    bp = Blueprint("metrics", __name__)
    tag_blueprint(bp, ["system"])
    for endpoint, path in PATHS.items():
        bp.add_url_rule(path, endpoint, view_func=view, methods=["GET"])
    return bp
