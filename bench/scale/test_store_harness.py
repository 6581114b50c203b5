"""The storage scale benchmark's harness on a few hundred rows: every store is written and
read through the contract (the harness checks each answer and raises on a wrong one), every
measure is in the table, and the schemas it made are gone. Nothing here is timed."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path

import asyncpg
import pytest

from butterflyfx.testing.services import missing

_spec = importlib.util.spec_from_file_location(
    "butterflyfx_bench_scale_store_run", Path(__file__).with_name("store_run.py")
)
assert _spec is not None and _spec.loader is not None
harness = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = harness  # dataclasses look their module up by name
_spec.loader.exec_module(harness)

STORES = ["storage.memory", "storage.sqlite", "storage.postgres", "storage.postgres, 3 partitions"]


async def bench_schemas() -> list[str]:
    db = await asyncpg.connect(harness.DSN, timeout=3)
    try:
        rows = await db.fetch("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'bench_scale_%'")
        return [row[0] for row in rows]
    finally:
        await db.close()


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    try:
        before = asyncio.run(bench_schemas())
    except (OSError, TimeoutError, asyncpg.PostgresError) as error:
        missing(f"no PostgreSQL answers at {harness.DSN} ({error})")
    sizes = harness.Sizes(rows=2500, tenants=3, queries=15, partitions=3)
    measured = harness.run(sizes, tmp_path_factory.mktemp("bench-scale"))
    measured["schemas left"] = sorted(set(asyncio.run(bench_schemas())) - set(before))
    return measured


def test_every_store_is_measured_on_every_question(result):
    assert [row["store"] for row in result["measures"]] == STORES
    for row in result["measures"]:
        assert set(row["per second"]) == {"put_substrates /s", "put_relationships /s"}
        assert all(rate > 0 for rate in row["per second"].values())
        reads = {"get_substrate", "get_substrates x100", "outgoing relationships"}
        if row["store"] != "storage.memory":
            reads.add("SELECT 1 (driver)")
        assert set(row["latency"]) == reads
        assert all(m["p99 ms"] >= m["p50 ms"] > 0 for m in row["latency"].values())
    assert result["table"].count("\n") == len(STORES) + 1


def test_the_copy_moves_every_substrate_and_relationship(result):
    assert result["copy"]["items"] == 2 * 2500
    assert result["copy"]["items /s"] > 0


def test_the_schemas_it_made_are_dropped(result):
    assert result["schemas left"] == []


def test_a_store_answering_wrongly_stops_the_run():
    class Forgetful(harness.MemoryStore):
        async def get_substrate(self, tenant, identity):
            return None

    sizes = harness.Sizes(rows=50, tenants=2, queries=3, partitions=2)
    with pytest.raises(AssertionError, match="get_substrate answered None"):
        asyncio.run(
            harness.measure_store("forgetful", Forgetful(), sizes, harness.data(sizes), None)
        )
