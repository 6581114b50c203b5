"""``graph.sql``: the default graph engine, recursive SQL in the store's own database.

It works with any store that keeps the shared relational schema and says so by being a
:class:`~butterflyfx.core.store.SqlDatabase` (``storage.sqlite`` now, a PostgreSQL store
later: its statements run on both). With a store that is not one, the server refuses to
start and names the store's plugin. No config section: the ceilings and the node budget
are the ``[server]`` settings ``graph_max_depth``, ``graph_max_nodes`` and
``graph_node_budget``. See :mod:`.engine` for what the node budget counts here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from butterflyfx.core.hookspecs import hookimpl
from butterflyfx.core.plugins import PluginError
from butterflyfx.core.store import SqlDatabase

from .engine import SqlGraph, SqlGraphError

if TYPE_CHECKING:
    from butterflyfx.core.context import ServerContext

__all__ = ["SqlGraph", "SqlGraphError"]

NAME = "graph.sql"


@hookimpl(trylast=True)
def butterflyfx_graph_engine(ctx: ServerContext) -> SqlGraph:
    store = ctx.store
    if not isinstance(store, SqlDatabase):
        raise PluginError(
            f"plugin {NAME!r} runs recursive SQL in the store's database, but the store of "
            f"plugin {ctx.storage_plugin!r} ({type(store).__name__}) is not a SQL database: "
            "use a SQL store such as storage.sqlite, or the graph.memory engine"
        )
    return SqlGraph(store, node_budget=ctx.settings.graph_node_budget)
