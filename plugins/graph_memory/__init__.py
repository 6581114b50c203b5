"""``graph.memory``: the graph in this process, for small deployments and tests.

Each tenant's relationships are read from the store into adjacency dicts on the tenant's
first graph query, and kept current by the relationship and substrate events this
process hears. Another process's writes are never heard, so the plugin refuses to start
with ``server.workers`` above 1. It works with any store. No config section: the node
budget of subgraphs is ``[server] graph_node_budget``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from butterflyfx.core.events import Event
from butterflyfx.core.health import PluginHealth
from butterflyfx.core.hookspecs import hookimpl
from butterflyfx.core.plugins import PluginError

from .engine import MemoryGraph
from .index import TenantIndex

if TYPE_CHECKING:
    from butterflyfx.core.context import ServerContext

__all__ = ["MemoryGraph", "TenantIndex"]

NAME = "graph.memory"
log = structlog.get_logger("butterflyfx.graph")


@hookimpl(trylast=True)
def butterflyfx_graph_engine(ctx: ServerContext) -> MemoryGraph:
    workers = ctx.settings.workers
    if workers > 1:
        raise PluginError(
            f"plugin {NAME!r} keeps the graph in one process and would not see the writes "
            f"of the other {workers - 1} worker(s) (server.workers = {workers}): use "
            "graph.sql, or server.workers = 1"
        )
    if getattr(ctx.store, "shared_between_instances", False):
        log.warning(
            "graph_memory_sees_this_instance_only", storage=ctx.storage_plugin,
            detail=f"{NAME} keeps each tenant's graph in this process and hears only this "
            f"instance's writes: with other instances writing to {ctx.storage_plugin}, its "
            "answers miss their relationships until this server restarts. Run one instance, "
            "or use graph.sql over storage.postgres",
        )  # fmt: skip
    return MemoryGraph(ctx.store, node_budget=ctx.settings.graph_node_budget)


@hookimpl
async def butterflyfx_on_event(event: Event, ctx: ServerContext) -> None:
    engine = ctx.graph
    if isinstance(engine, MemoryGraph):  # only while it is the engine in use
        await engine.hear(event)


@hookimpl
def butterflyfx_health(ctx: ServerContext) -> PluginHealth | None:
    engine = ctx.graph
    if not isinstance(engine, MemoryGraph):
        return None  # another engine serves; this plugin's lifecycle state reports it
    return PluginHealth("ok", engine.state())
