"""Both graph engines keep the graph contract, proved by the suite third parties run:
graph.sql on the SQLite store, graph.memory on the memory store and on the SQLite store."""

from __future__ import annotations

from pathlib import Path

import pytest

from butterflyfx.core.hookspecs import hookimpl
from butterflyfx.plugins.graph_sql import SqlGraph
from butterflyfx.testing.graph import GraphConformance, graph_server


class TestSqlGraphOnSqlite(GraphConformance):
    @pytest.fixture
    def graph_server_factory(self, tmp_path: Path):
        return graph_server(tmp_path, ["storage.sqlite", "graph.sql"])


class TestMemoryGraphOnMemory(GraphConformance):
    @pytest.fixture
    def graph_server_factory(self, tmp_path: Path):
        return graph_server(tmp_path, ["storage.memory", "graph.memory"])


class TestMemoryGraphOnSqlite(GraphConformance):
    @pytest.fixture
    def graph_server_factory(self, tmp_path: Path):
        return graph_server(tmp_path, ["storage.sqlite", "graph.memory"])


class OneRowAtFirst:
    """graph.sql whose walks start with a one-row limit, so every answer above is reached
    through the engine's growing row limits rather than in one run."""

    @hookimpl
    def butterflyfx_graph_engine(self, ctx):
        return SqlGraph(ctx.store, node_budget=ctx.settings.graph_node_budget, first_rows=1)


class TestSqlGraphGrowingItsRowLimit(GraphConformance):
    @pytest.fixture
    def graph_server_factory(self, tmp_path: Path):
        return graph_server(
            tmp_path, ["storage.sqlite", "graph.small"], {"graph.small": OneRowAtFirst()}
        )
