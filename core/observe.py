"""What an interface reports about each request it served, for plugins that watch.

The HTTP plugin calls ``butterflyfx_on_request_started(method, path, pool, ctx)`` as a
request arrives and ``butterflyfx_on_request(record, ctx)`` once its response is sent:
exactly one record follows each start, whatever the answer (a 404, a 413, a 503 refusal,
an error). Both are rule *all*; a failing listener is logged, never the client's problem.
Metrics count these, the access log writes them, statistics aggregate them: one record,
many readers.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RequestRecord:
    """One served request.

    ``route`` is the route template (``/api/v1/substrates/<substrate_id>``), or None when no
    route matched (a 404 for an unknown path): group by it, never by ``path``, or every id
    makes a new series. ``tenant`` and ``subject`` are the principal's (None on open routes
    and before authentication). ``pool`` is the connection pool the request came through
    (``api``, ``admin``, ``http``, ``websocket``); ``started_pool`` the one
    ``butterflyfx_on_request_started`` was told, by path (an admin route moves its request
    from ``api`` to ``admin`` once matched; None: the same as ``pool``). ``duration_ms``
    runs from the request's first byte to the response's last.
    """

    method: str
    path: str
    route: str | None
    status: int
    duration_ms: float
    request_id: str | None = None
    tenant: str | None = None
    subject: str | None = None
    client: str | None = None
    pool: str = "http"
    worker: str = ""
    started_pool: str | None = None

    @property
    def failed(self) -> bool:
        """A server error: counted in ``total_errors``."""
        return self.status >= 500
