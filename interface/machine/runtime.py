"""The bodies of the runtime endpoints (seed 004): stats, status, connections, manifold."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

PoolName = Literal["http", "websocket", "api", "admin"]
StateName = Literal["new", "handshake", "active", "idle", "closing", "closed", "archived"]


class PoolTotals(BaseModel):
    """Seed 004's counts of one pool: open, active and idle now; created and closed ever."""

    total_connections: int = Field(description="Open now: new, handshake, active, idle, closing")
    active_connections: int
    idle_connections: int
    total_created: int = Field(description="Connections whose first request was in this pool")
    total_closed: int = Field(description="Connections closed while in this pool")


class PoolStats(PoolTotals):
    spiral: int = Field(description="The pool's number in seed 004: http 0 ... admin 3")
    refused: int = Field(description="New connections refused here: max_connections were open")


class RequestTotals(BaseModel):
    total_requests: int = Field(description="Requests received")
    total_processed: int = Field(description="Answered with a status below 500")
    total_errors: int = Field(description="Answered with a 5xx status")
    in_flight: int = Field(description="Received, not yet answered (this one included)")
    avg_processing_time_ms: float | None = Field(description="Mean time; null before any")
    success_rate: float | None = Field(description="Percent of answered requests not 5xx")
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


class StatsBody(BaseModel):
    """One worker's connections (by seed 004 spiral, and by pool name) and requests."""

    connections: dict[str, PoolTotals] = Field(description="spiral_0 (http) ... spiral_3 (admin)")
    pools: dict[PoolName, PoolStats]
    requests: RequestTotals
    worker: str = Field(description="The worker process that answered")


class Limits(BaseModel):
    max_connections: int
    backlog: int
    timeout: float
    archived_connections: int
    max_body_bytes: int
    workers: int
    graph_max_depth: int
    graph_max_nodes: int
    graph_node_budget: int


class StatusBody(BaseModel):
    """The server as this worker sees it: version, uptime, plugins and limits."""

    version: str
    worker: str
    run_id: str = Field(description="Shared by the workers of one `butterflyfx serve`")
    started_at: str
    uptime_seconds: float
    plugins: dict[str, str] = Field(description="Each plugin's state: loaded, started, ...")
    storage: str | None = Field(description="The storage plugin in use")
    graph: str | None = Field(description="The graph engine plugin in use, if any")
    limits: Limits


class PoolStates(BaseModel):
    spiral: int
    states: dict[StateName, int]
    refused: int


class ConnectionView(BaseModel):
    address: str
    pool: PoolName
    state: StateName
    age_seconds: float
    in_state_seconds: float
    requests: int


class ConnectionsBody(BaseModel):
    """This worker's connections by pool and state, and the most recently used ones."""

    worker: str
    open: int
    max_connections: int
    timeout: float
    pools: dict[PoolName, PoolStates]
    states: dict[StateName, int]
    recent: list[ConnectionView]


class ConnectionsQuery(BaseModel):
    limit: int | None = Field(None, ge=0, le=1000, description="Recent connections (default 50)")


class ManifoldQuery(BaseModel):
    spiral: int = Field(ge=0, le=1000)
    level: int = Field(ge=0, le=6)
    position: float = Field(ge=-1e6, le=1e6)


class ManifoldPointBody(BaseModel):
    """A point on the helix: theta = level * 2 pi / 7, radius = spiral + 1."""

    spiral: int
    level: int
    position: float
    theta: float
    radius: float
    x: float
    y: float
    z: float
