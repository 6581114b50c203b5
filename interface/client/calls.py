"""What a request is, before any I/O: the route table, :class:`Call`, and parsing answers.

Both clients build the same :class:`Call` objects and parse answers with :func:`parse`;
only sending (and sleeping between retries) differs between sync and async.

:data:`ROUTES` maps every operation of the API, as the OpenAPI document names it
(method, path template), to the client method that calls it; calls are built from the
table, so a method cannot call a route the table does not list (tests check the table
against the server's ``/api/v1/openapi.json`` both ways).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from .errors import error_for

ROUTES: dict[tuple[str, str], str] = {
    ("POST", "/api/v1/substrates"): "create_substrate",
    ("POST", "/api/v1/substrates/batch"): "create_substrates",
    ("GET", "/api/v1/substrates"): "substrate_page",
    ("GET", "/api/v1/substrates/{substrate_id}"): "get_substrate",
    ("PATCH", "/api/v1/substrates/{substrate_id}"): "update_substrate",
    ("DELETE", "/api/v1/substrates/{substrate_id}"): "delete_substrate",
    ("POST", "/api/v1/substrates/{substrate_id}/divide"): "divide",
    ("POST", "/api/v1/substrates/{substrate_id}/invoke"): "invoke",
    ("POST", "/api/v1/substrates/multiply"): "multiply",
    ("POST", "/api/v1/relationships"): "create_relationship",
    ("POST", "/api/v1/relationships/batch"): "create_relationships",
    ("GET", "/api/v1/relationships"): "relationship_page",
    ("GET", "/api/v1/relationships/{relationship_id}"): "get_relationship",
    ("DELETE", "/api/v1/relationships/{relationship_id}"): "delete_relationship",
    ("GET", "/api/v1/relationships/outgoing/{substrate_id}"): "outgoing_page",
    ("GET", "/api/v1/relationships/incoming/{substrate_id}"): "incoming_page",
    ("GET", "/api/v1/relationships/graph"): "graph",
    ("POST", "/api/v1/query/traverse"): "traverse",
    ("POST", "/api/v1/query/path"): "path",
    ("POST", "/api/v1/query/search"): "search_page",
    ("GET", "/api/v1/query/stats"): "stats",
    ("GET", "/api/v1/keys"): "list_keys",
    ("POST", "/api/v1/keys"): "create_key",
    ("GET", "/api/v1/keys/{key_id}"): "get_key",
    ("DELETE", "/api/v1/keys/{key_id}"): "revoke_key",
    ("POST", "/api/v1/auth/login"): "login",
    ("GET", "/api/v1/health"): "health",
    ("GET", "/api/v1/ready"): "ready",
    ("GET", "/api/status"): "server_status",
    ("GET", "/api/stats"): "server_stats",
    ("GET", "/api/connections"): "connections",
    ("GET", "/api/manifold/evaluate"): "manifold",
    ("GET", "/api/v1/metrics"): "metrics",
    ("GET", "/metrics"): "metrics_root",
}
_BY_NAME = {name: route for route, name in ROUTES.items()}

# What may be sent again after an answer of 429/503 or a lost connection (see retry.py):
# reads, deletes, and writes that are content-addressed (the same body names the same
# substrate or relationship, so a second create answers 200 with the first one).
REPEATABLE = frozenset(
    {
        "create_substrate", "substrate_page", "get_substrate", "update_substrate",
        "delete_substrate", "divide", "multiply", "create_relationship", "get_relationship",
        "delete_relationship", "outgoing_page", "incoming_page", "graph", "traverse", "path",
        "search_page", "stats", "list_keys", "get_key", "revoke_key", "health", "ready",
        "server_status", "server_stats", "connections", "manifold", "metrics", "metrics_root",
        "create_substrates", "create_relationships", "relationship_page",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Call:
    """One request to make: ``name`` is its entry in :data:`ROUTES`."""

    name: str
    method: str
    path: str
    params: Mapping[str, Any] | None = None
    body: Any = None
    model: type[BaseModel] | None = None  # parse a 2xx JSON answer into it; None: plain JSON
    text: bool = False  # the answer is text (Prometheus metrics), not JSON
    then: Callable[[Any], Any] | None = None  # applied to the parsed answer (login keeps it)

    @property
    def repeatable(self) -> bool:
        """Safe to send again whatever happened to the first one (see :data:`REPEATABLE`)."""
        return self.name in REPEATABLE


def call(name: str, ids: Mapping[str, str] | None = None, **options: Any) -> Call:
    """The :class:`Call` of route ``name``, its ``{placeholders}`` filled from ``ids``."""
    method, template = _BY_NAME[name]
    path = template
    for key, value in (ids or {}).items():
        path = path.replace("{" + key + "}", quote(str(value), safe=""))
    return Call(name, method, path, **options)


def without_none(**values: Any) -> dict[str, Any]:
    """``values`` without the ones left as None: the server's defaults apply to those."""
    return {key: value for key, value in values.items() if value is not None}


def parse(request: Call, response: httpx.Response) -> Any:
    """The answer to ``request``: its model, JSON, text or None (204); raises the
    :mod:`~.errors` exception of an error status."""
    if response.status_code >= 400:
        raise error_for(response)
    if response.status_code == 204 or not response.content:
        result: Any = None
    elif request.text:
        result = response.text
    elif request.model is not None:
        result = request.model.model_validate(response.json())
    else:
        result = response.json()
    return request.then(result) if request.then else result
