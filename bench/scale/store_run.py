"""Storage scale benchmark: the same substrates and relationships in storage.sqlite, plain
storage.postgres and storage.postgres partitioned by tenant, beside storage.memory (the
contract with no database: the baseline) and each database's bare round trip, in one run.

    .venv/bin/python bench/scale/store_run.py

Each store gets ROWS substrates spread over TENANTS tenants, written through its own
``put_substrates`` in batches of BATCH (1,000), then one relationship per substrate (to
another of its tenant's, drawn at random) through ``put_relationships``; then QUERIES
lookups of a random substrate (``get_substrate``), reads of 100 at once (``get_substrates``),
and pages of a random substrate's outgoing relationships (``list_relationships``, limit 100),
each timed alone, one after another. Beside them, ``SELECT 1`` through the store's driver
(aiosqlite, asyncpg) is the floor no query of that database goes under. Last, ``butterflyfx
copy``'s own code moves the SQLite store into a new PostgreSQL schema and the rate is printed.

Every answer is checked against what was written; a store that answers wrongly stops the run.
Stores run as shipped: SQLite with ``synchronous = "full"``, PostgreSQL with its server's
settings (``synchronous_commit`` on here). It prints a table and writes it to BENCH_OUTPUT.

Environment: BENCH_SCALE_ROWS (100000), BENCH_SCALE_TENANTS (8), BENCH_SCALE_QUERIES (2000),
BENCH_SCALE_PARTITIONS (8), BENCH_SCALE_DSN (postgresql://postgres@127.0.0.1:5432/test),
BENCH_OUTPUT (.benchmarks/scale.json). PostgreSQL schemas it makes are dropped at the end.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiosqlite
import asyncpg

from butterflyfx.core.store import SubstrateStore
from butterflyfx.kernel import Relationship, Substrate
from butterflyfx.plugins.storage_memory import MemoryStore
from butterflyfx.plugins.storage_postgres import PostgresStore
from butterflyfx.plugins.storage_postgres.layout import Layout
from butterflyfx.plugins.storage_sqlite import SqliteStore
from butterflyfx.server.store_copy import copy_tenant

ROOT = Path(__file__).resolve().parents[2]
BATCH = 1000
PAGE = 100
DSN = os.environ.get("BENCH_SCALE_DSN") or "postgresql://postgres@127.0.0.1:5432/test"
BASELINE = "storage.memory"


@dataclass(frozen=True)
class Sizes:
    rows: int
    tenants: int
    queries: int
    partitions: int
    seed: int = 11


@dataclass
class Measure:
    store: str
    writes: dict[str, float] = field(default_factory=dict)  # items per second
    reads: dict[str, list[float]] = field(default_factory=dict)  # ms per call

    def row(self) -> dict[str, Any]:
        latencies = {
            name: {"p50 ms": statistics.median(ms), "p99 ms": percentile(ms, 0.99)}
            for name, ms in self.reads.items()
        }
        return {"store": self.store, "per second": self.writes, "latency": latencies}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# -- the data ------------------------------------------------------------------------------------


def tenant_of(i: int, sizes: Sizes) -> str:
    return f"tenant-{(i // BATCH) % sizes.tenants}"


def data(sizes: Sizes) -> tuple[dict[str, list[Substrate]], dict[str, list[Relationship]]]:
    """Substrates by tenant (a batch of BATCH to each in turn), one relationship each."""
    substrates: dict[str, list[Substrate]] = {}
    for i in range(sizes.rows):
        made = Substrate.create("lambda", f"lambda **kw: kw.get('x', 0) * {i} + 1", {"n": i})
        substrates.setdefault(tenant_of(i, sizes), []).append(made)
    chance = random.Random(sizes.seed)
    relationships: dict[str, list[Relationship]] = {}
    for tenant, mine in substrates.items():
        made: dict[int, Relationship] = {}
        for i, source in enumerate(mine):
            # another of the tenant's: a random step forward, never itself
            target = (
                mine[(i + chance.randrange(1, len(mine))) % len(mine)] if len(mine) > 1 else None
            )
            if target is not None:
                r = Relationship.create(source.identity, target.identity, "dependency")
                made.setdefault(r.identity, r)
        relationships[tenant] = list(made.values())
    return substrates, relationships


# -- measuring -----------------------------------------------------------------------------------


async def timed_ms(call: Callable[..., Awaitable[Any]], *args: Any, **kw: Any) -> tuple[float, Any]:
    """Milliseconds ``call(*args, **kw)`` took, and its answer."""
    started = time.perf_counter_ns()
    answer = await call(*args, **kw)
    return (time.perf_counter_ns() - started) / 1e6, answer


async def write_all(
    store: SubstrateStore,
    substrates: dict[str, list[Substrate]],
    relationships: dict[str, list[Relationship]],
    measure: Measure,
) -> None:
    for what, items, put in (
        ("put_substrates", substrates, store.put_substrates),
        ("put_relationships", relationships, store.put_relationships),
    ):
        batches = [(t, mine[i : i + BATCH]) for t, mine in items.items()
                   for i in range(0, len(mine), BATCH)]  # fmt: skip
        batches.sort(key=lambda batch: batch[1][0].identity)  # tenants interleaved
        started = time.perf_counter()
        for tenant, batch in batches:
            answers = await put(tenant, batch)  # type: ignore[operator]
            assert all(created for _, created in answers), f"{measure.store}: {what} lost one"
        count = sum(len(mine) for mine in items.values())
        measure.writes[f"{what} /s"] = count / (time.perf_counter() - started)


async def read_all(
    store: SubstrateStore,
    substrates: dict[str, list[Substrate]],
    sizes: Sizes,
    measure: Measure,
) -> None:
    chance = random.Random(sizes.seed + 1)
    tenants = sorted(substrates)
    reads: dict[str, list[float]] = {"get_substrate": [], "get_substrates x100": [],
                                     "outgoing relationships": []}  # fmt: skip
    for _ in range(sizes.queries):
        tenant = chance.choice(tenants)
        wanted = chance.choice(substrates[tenant])
        ms, found = await timed_ms(store.get_substrate, tenant, wanted.identity)
        assert found == wanted, f"{measure.store}: get_substrate answered {found!r}"
        reads["get_substrate"].append(ms)
    for _ in range(max(1, sizes.queries // 10)):
        tenant = chance.choice(tenants)
        some = chance.sample(substrates[tenant], min(PAGE, len(substrates[tenant])))
        ms, many = await timed_ms(store.get_substrates, tenant, [s.identity for s in some])
        assert len(many) == len(some), f"{measure.store}: get_substrates lost some"
        reads["get_substrates x100"].append(ms)
    for _ in range(sizes.queries):
        tenant = chance.choice(tenants)
        start = chance.choice(substrates[tenant]).identity
        ms, page = await timed_ms(store.list_relationships, tenant, start, "outgoing", limit=PAGE)
        assert page and any(r.source == start for r in page), f"{measure.store}: no outgoing"
        reads["outgoing relationships"].append(ms)
    measure.reads.update(reads)


async def round_trips(queries: int, query: Callable[[], Awaitable[Any]], measure: Measure) -> None:
    measure.reads["SELECT 1 (driver)"] = [(await timed_ms(query))[0] for _ in range(queries)]


# -- the stores ----------------------------------------------------------------------------------


@asynccontextmanager
async def schemas(dsn: str) -> AsyncIterator[Callable[[], str]]:
    """New PostgreSQL schema names; every one handed out is dropped at the end."""
    made: list[str] = []

    def new() -> str:
        made.append(f"bench_scale_{uuid.uuid4().hex[:10]}")
        return made[-1]

    try:
        yield new
    finally:
        db = await asyncpg.connect(dsn)
        try:
            for schema in made:
                await db.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await db.close()


async def measure_store(
    name: str,
    store: SubstrateStore,
    sizes: Sizes,
    world: tuple[dict[str, list[Substrate]], dict[str, list[Relationship]]],
    round_trip: Callable[[], Awaitable[Any]] | None,
) -> Measure:
    measure = Measure(name)
    await store.open()
    try:
        await write_all(store, *world, measure)
        counted = sum([await store.count_substrates(t) for t in world[0]])
        assert counted == sizes.rows, f"{name}: {counted} substrates, not {sizes.rows}"
        await read_all(store, world[0], sizes, measure)
    finally:
        await store.close()
    if round_trip is not None:
        await round_trips(sizes.queries, round_trip, measure)
    print(f"  {name}: done", flush=True)
    return measure


async def measure_all(sizes: Sizes, folder: Path, dsn: str = DSN) -> dict[str, Any]:
    world = data(sizes)
    measures: list[Measure] = []
    copied: dict[str, float] = {}
    async with schemas(dsn) as new_schema:
        measures.append(await measure_store(BASELINE, MemoryStore(), sizes, world, None))
        sqlite_file = folder / "scale.sqlite3"
        async with aiosqlite.connect(sqlite_file) as lite:
            measures.append(await measure_store(
                "storage.sqlite", SqliteStore(sqlite_file), sizes, world,
                lambda: lite.execute_fetchall("SELECT 1"),
            ))  # fmt: skip
        pg = await asyncpg.connect(dsn)
        try:
            for name, layout in (
                ("storage.postgres", Layout(0)),
                (f"storage.postgres, {sizes.partitions} partitions", Layout(sizes.partitions)),
            ):
                store = PostgresStore(dsn, schema=new_schema(), layout=layout)
                measures.append(await measure_store(
                    name, store, sizes, world, lambda: pg.fetchval("SELECT 1")
                ))  # fmt: skip
            version = await pg.fetchval("SHOW server_version")
        finally:
            await pg.close()
        copied = await copy_rate(SqliteStore(sqlite_file), PostgresStore(dsn, schema=new_schema()))
    return {
        "sizes": asdict(sizes),
        "postgresql": version,
        "load average": os.getloadavg()[0],
        "measures": [m.row() for m in measures],
        "copy": copied,
    }


async def copy_rate(source: SubstrateStore, target: SubstrateStore) -> dict[str, float]:
    """``butterflyfx copy``'s code, SQLite to a new PostgreSQL schema: items per second."""
    await source.open()
    await target.open()
    try:
        started = time.perf_counter()
        items = 0
        for tenant in await source.tenants():  # type: ignore[attr-defined]
            done = await copy_tenant(source, target, tenant, batch=BATCH)
            assert done.substrates_new == done.substrates, "the copy found rows already there"
            items += done.substrates + done.relationships
        seconds = time.perf_counter() - started
    finally:
        await source.close()
        await target.close()
    return {"items": items, "seconds": seconds, "items /s": items / seconds}


# -- the report ----------------------------------------------------------------------------------


def table(result: dict[str, Any]) -> str:
    """One row per store; the last column is each database's get against its own floor."""
    lines = [
        "| store | put_substrates /s | put_relationships /s | get_substrate p50 / p99 ms "
        "| get_substrates x100 p50 ms | outgoing relationships p50 ms | SELECT 1 p50 ms "
        "| get p50 / SELECT 1 p50 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in result["measures"]:
        latency, writes = row["latency"], row["per second"]
        floor = latency.get("SELECT 1 (driver)")
        get = latency["get_substrate"]
        ratio = "—" if floor is None else f"{get['p50 ms'] / max(floor['p50 ms'], 1e-6):.1f}x"
        lines.append(
            f"| {row['store']} | {writes['put_substrates /s']:,.0f} "
            f"| {writes['put_relationships /s']:,.0f} "
            f"| {get['p50 ms']:.3f} / {get['p99 ms']:.3f} "
            f"| {latency['get_substrates x100']['p50 ms']:.3f} "
            f"| {latency['outgoing relationships']['p50 ms']:.3f} "
            f"| {'—' if floor is None else format(floor['p50 ms'], '.3f')} | {ratio} |"
        )
    return "\n".join(lines)


def run(sizes: Sizes, folder: Path, dsn: str = DSN) -> dict[str, Any]:
    result = asyncio.run(measure_all(sizes, folder, dsn))
    result["table"] = table(result)
    return result


def main() -> int:
    sizes = Sizes(
        rows=int(os.environ.get("BENCH_SCALE_ROWS", 100_000)),
        tenants=int(os.environ.get("BENCH_SCALE_TENANTS", 8)),
        queries=int(os.environ.get("BENCH_SCALE_QUERIES", 2000)),
        partitions=int(os.environ.get("BENCH_SCALE_PARTITIONS", 8)),
    )
    output = Path(os.environ.get("BENCH_OUTPUT", ROOT / ".benchmarks" / "scale.json"))
    print(f"storage scale benchmark: {sizes.rows:,} substrates and as many relationships over "
          f"{sizes.tenants} tenants, {sizes.queries} reads each; "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="butterflyfx-bench-scale-") as folder:
        result = run(sizes, Path(folder))
    print(f"PostgreSQL {result['postgresql']}")
    print(result["table"])
    copy = result["copy"]
    print(f"butterflyfx copy, SQLite to PostgreSQL: {copy['items']:,} substrates and "
          f"relationships in {copy['seconds']:.1f} s ({copy['items /s']:,.0f} /s)")  # fmt: skip
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"written to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
