"""What each graph plugin promises beyond the shared contract: which one a server runs, what
each refuses at start-up, that graph.sql's statements search the indexes on both ends,
and that no question makes it run away."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Sequence
from typing import Any

import pytest

from butterflyfx.core.config import read_config
from butterflyfx.core.context import ServerContext
from butterflyfx.core.graph import GraphEngine
from butterflyfx.core.plugins import PluginError
from butterflyfx.kernel import Relationship
from butterflyfx.plugins.graph_memory import MemoryGraph
from butterflyfx.plugins.graph_sql import SqlGraph, SqlGraphError, statements
from butterflyfx.plugins.storage_sqlite import SqliteStore
from butterflyfx.testing.graph import graph_server
from butterflyfx.testing.storage import make_substrate

TENANT = "acme"


def run_started(ctx: ServerContext, story: Any) -> Any:
    async def main() -> Any:
        await ctx.start()
        try:
            return await story(ctx)
        finally:
            await ctx.stop()

    return asyncio.run(main())


# -- which engine a server runs --------------------------------------------------------------


def test_a_server_on_the_embedded_defaults_answers_graph_questions_with_graph_sql(tmp_path):
    ctx = ServerContext.build(read_config(None, {"BUTTERFLYFX_SERVER__DATA_DIR": str(tmp_path)}))

    async def story(ctx: ServerContext) -> tuple[str | None, str]:
        assert isinstance(ctx.graph, GraphEngine)
        return ctx.graph_plugin, ctx.graph.name

    assert run_started(ctx, story) == ("graph.sql", "sql")


def test_with_both_engines_listed_the_first_named_serves(tmp_path):
    async def story(ctx: ServerContext) -> str:
        assert ctx.graph is not None
        return ctx.graph.name

    memory_first = graph_server(tmp_path, ["storage.sqlite", "graph.memory", "graph.sql"])()
    sql_first = graph_server(tmp_path, ["storage.sqlite", "graph.sql", "graph.memory"])()
    assert (run_started(memory_first, story), run_started(sql_first, story)) == ("memory", "sql")


def test_without_a_graph_plugin_the_server_runs_with_no_engine(tmp_path):
    async def story(ctx: ServerContext) -> object:
        return ctx.graph

    assert run_started(graph_server(tmp_path, ["storage.memory"])(), story) is None


# -- what each refuses -----------------------------------------------------------------------


def test_graph_sql_refuses_a_store_that_is_not_a_sql_database_and_names_its_plugin(tmp_path):
    ctx = graph_server(tmp_path, ["storage.memory", "graph.sql"])()
    with pytest.raises(PluginError) as refused:
        asyncio.run(ctx.start())
    message = str(refused.value)
    assert "plugin 'graph.sql'" in message and "plugin 'storage.memory'" in message
    assert "graph.memory" in message  # what to use instead


def test_graph_memory_refuses_more_than_one_worker_because_it_would_miss_their_writes(tmp_path):
    ctx = graph_server(tmp_path, ["storage.sqlite", "graph.memory"], server="workers = 3")()
    with pytest.raises(PluginError, match=r"plugin 'graph.memory' keeps the graph in one process"):
        asyncio.run(ctx.start())
    with pytest.raises(PluginError, match=r"server.workers = 3\): use graph.sql"):
        asyncio.run(graph_server(tmp_path, ["storage.sqlite", "graph.memory"],
                                 server="workers = 3")().start())  # fmt: skip


class Unusable:
    """A SQL database graph.sql cannot use: an unknown dialect, or no relationships table."""

    def __init__(self, dialect: str) -> None:
        self.sql_dialect = dialect

    async def sql_fetch(self, sql: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        raise RuntimeError("no such table: relationships")


@pytest.mark.parametrize(
    ("dialect", "reason"),
    [("mysql", "graph.sql speaks sqlite and postgresql, not the store's 'mysql'"),
     ("sqlite", "no usable relationships table (RuntimeError: no such table")],
)  # fmt: skip
def test_graph_sql_says_why_it_cannot_open_on_a_database(dialect, reason):
    engine = SqlGraph(Unusable(dialect), node_budget=10)
    with pytest.raises(SqlGraphError, match=reason.replace("(", r"\(")):
        asyncio.run(engine.open())


def test_graph_memory_reports_what_it_has_loaded_in_health(tmp_path):
    async def story(ctx: ServerContext) -> dict[str, Any]:
        first, _ = await ctx.substrates.create("default", "lambda", "lambda **kw: 1")
        second, _ = await ctx.substrates.create("default", "lambda", "lambda **kw: 2")
        await ctx.relationships.create(
            "default", first.substrate_id, second.substrate_id, "dependency"
        )
        assert isinstance(ctx.graph, MemoryGraph)
        before = dict((await ctx.health())[1]["graph.memory"].detail)
        await ctx.graph.traverse(
            "default", first.identity, direction="out", max_depth=1, types=None, limit=10,
            node_budget=10,
        )  # fmt: skip
        after = dict((await ctx.health())[1]["graph.memory"].detail)
        return {"before": before, "after": after}

    states = run_started(graph_server(tmp_path, ["storage.memory", "graph.memory"])(), story)
    assert states == {
        "before": {"tenants_loaded": 0, "relationships": 0},
        "after": {"tenants_loaded": 1, "relationships": 1},
    }


# -- graph.sql's statements -------------------------------------------------------------------


def plan_of(store: SqliteStore, sql: str, parameters: Sequence[Any]) -> list[str]:
    rows = asyncio.run(_plan(store, sql, parameters))
    return [str(row[3]) for row in rows]


async def _plan(store: SqliteStore, sql: str, parameters: Sequence[Any]) -> list[tuple[Any, ...]]:
    await store.open()
    try:
        return await store.sql_fetch("EXPLAIN QUERY PLAN " + sql, parameters)
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("direction", "types"), list(itertools.product(("out", "in", "both"), (None, 2)))
)
def test_every_walk_searches_the_index_of_each_end_and_scans_no_relationships(
    tmp_path, direction, types
):
    store = SqliteStore(tmp_path / "plan.sqlite3")
    kinds = ["dependency", "lineage"][: types or 0]
    walk = plan_of(
        store,
        statements.reach(direction, types, "sqlite"),
        [0, TENANT, *kinds, TENANT, *kinds, 3, 100],
    )
    steps = plan_of(store, statements.steps(direction, 3, types), [TENANT, 1, 2, 3, *kinds] * 2)
    for plan in (walk, steps):
        searches = [step for step in plan if step.startswith("SEARCH e")]
        assert any("relationships_by_source" in s for s in searches), plan
        assert any("relationships_by_target" in s for s in searches), plan
        assert not any(step.startswith("SCAN e") for step in plan), plan
    assert not any("MATERIALIZE" in step for step in walk), walk  # streamed: LIMIT stops it


def test_relationships_are_read_by_key_and_by_source_index(tmp_path):
    store = SqliteStore(tmp_path / "plan.sqlite3")
    by_identity = plan_of(store, statements.by_identity(2), [TENANT, 1, 2])
    from_sources = plan_of(store, statements.from_sources(2, None), [TENANT, 1, 2])
    assert by_identity == [
        "SEARCH e USING INDEX sqlite_autoindex_relationships_1 (tenant=? AND identity_key=?)"
    ]
    assert from_sources == [
        "SEARCH e USING INDEX relationships_by_source (tenant=? AND source_key=?)"
    ]


class Counting:
    """The store's SQL database, counting the rows of every statement graph.sql runs."""

    sql_dialect = "sqlite"

    def __init__(self, store: SqliteStore) -> None:
        self.store = store
        self.walks: list[int] = []  # rows of each recursive walk
        self.other: list[int] = []

    async def sql_fetch(self, sql: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        rows = await self.store.sql_fetch(sql, parameters)
        (self.walks if sql.startswith("WITH RECURSIVE") else self.other).append(len(rows))
        return rows


def test_on_a_dense_graph_no_question_runs_past_its_budget(tmp_path):
    """Every node of 40 joined to every other both ways: a walk to depth 64 could make
    40 x 65 rows, and every path search could look everywhere."""
    nodes = [make_substrate(i).identity for i in range(40)]
    lonely = make_substrate(99).identity
    budget = 100

    async def main() -> dict[str, Any]:
        store = SqliteStore(tmp_path / "dense.sqlite3", synchronous="normal")
        await store.open()
        try:
            for i in [*range(40), 99]:
                await store.put_substrate(TENANT, make_substrate(i))
            for source, target in itertools.combinations(nodes, 2):
                await store.put_relationship(
                    TENANT, Relationship(source, target, "sibling", bidirectional=True)
                )
            database = Counting(store)
            engine = SqlGraph(database, node_budget=budget, first_rows=8)
            began = time.perf_counter()
            answers: dict[str, Any] = {}
            for limit in (1000, 5):
                answers[f"traversal {limit}"] = await engine.traverse(
                    TENANT, nodes[0], direction="both", max_depth=64, types=None, limit=limit,
                    node_budget=budget,
                )  # fmt: skip
                answers[f"walks {limit}"] = list(database.walks)
                database.walks.clear()
            for weighted in (False, True):
                answers[f"path {weighted}"] = await engine.shortest_path(
                    TENANT, nodes[0], lonely, weighted=weighted, direction="both", types=None,
                    max_depth=64, node_budget=budget,
                )  # fmt: skip
            answers["subgraph"] = await engine.subgraph(
                TENANT, nodes[0], depth=64, types=None, max_nodes=10_000
            )
            answers["seconds"] = time.perf_counter() - began
            answers["all walks"] = database.walks
            answers["steps statements"] = len(database.other)
            return answers
        finally:
            await store.close()

    answers = asyncio.run(main())
    # Depth 1 holds the other 39 nodes; the budget ends the walk in depth 2, which is left
    # out whole. Each run of the walk makes its row limit and the one row that shows it
    # went on: 8 and 32 rows do not finish depth 1, 100 (the budget) does.
    everyone = answers["traversal 1000"]
    assert [r.depth for r in everyone.nodes] == [0] + [1] * 39 and everyone.truncated
    assert answers["walks 1000"] == [9, 33, 101]
    five = answers["traversal 5"]
    assert [r.identity for r in five.nodes] == [nodes[0], *sorted(nodes[1:])[:4]]
    assert five.truncated and answers["walks 5"] == [9, 33, 101]
    assert all(rows <= budget + 1 for rows in answers["all walks"])
    assert answers["path False"] is None and answers["path True"] is None
    # Dijkstra expands at most the budget, asking for up to 64 nodes' steps at a time.
    assert answers["steps statements"] <= 2 + budget
    assert answers["subgraph"].truncated and len(answers["subgraph"].nodes) == 40
    assert answers["seconds"] < 10
