"""Both built-in stores keep the storage contract, proved by the suite third parties run."""

from __future__ import annotations

from pathlib import Path

import pytest

from butterflyfx.plugins.storage_memory import MemoryStore
from butterflyfx.plugins.storage_sqlite import SqliteStore
from butterflyfx.testing.storage import StoreConformance, StoreFactory


class TestMemoryStore(StoreConformance):
    @pytest.fixture
    def substrate_store_factory(self) -> StoreFactory:
        return StoreFactory(MemoryStore, persistent=False)


class TestSqliteStore(StoreConformance):
    @pytest.fixture
    def substrate_store_factory(self, tmp_path: Path) -> StoreFactory:
        return StoreFactory(lambda: SqliteStore(tmp_path / "store.sqlite3"), persistent=True)
