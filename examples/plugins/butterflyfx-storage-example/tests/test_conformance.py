"""storage.example keeps the promises every ButterflyFX store makes: the shared storage
conformance suite on the store itself, and the graph conformance suite with graph.memory
on servers that load the plugin by its entry point name, as a config file does.

``persistent=True``: every store the factory makes is on the same journal, so the suite
also checks that closing (and compacting) keeps every write, and that two stores open at
once on one file (as two workers are) agree on who created what.
"""

from __future__ import annotations

import pytest
from butterflyfx_storage_example import JournalStore

from butterflyfx.testing.graph import GraphConformance, graph_server
from butterflyfx.testing.storage import StoreConformance, StoreFactory


class TestJournalStore(StoreConformance):
    @pytest.fixture
    def substrate_store_factory(self, tmp_path):
        return StoreFactory(lambda: JournalStore(tmp_path / "store.jsonl"), persistent=True)


class TestJournalStoreWithoutCompaction(StoreConformance):
    """The journal as written, every line replayed at each open."""

    @pytest.fixture
    def substrate_store_factory(self, tmp_path):
        path = tmp_path / "store.jsonl"
        return StoreFactory(lambda: JournalStore(path, compact_at_close=False), persistent=True)


class TestMemoryGraphOnTheJournal(GraphConformance):
    @pytest.fixture
    def graph_server_factory(self, tmp_path):
        return graph_server(tmp_path, ["storage.example", "graph.memory"])
