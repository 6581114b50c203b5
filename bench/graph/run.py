"""Graph benchmark: graph.sql and graph.memory over a synthetic graph in the real SQLite store,
against plain Python over a dict adjacency measured in the same run.

    .venv/bin/python bench/graph/run.py

It writes NODES substrates and RELATIONSHIPS relationships through ``SqliteStore``'s own
``put_substrates`` and ``put_relationships``, BATCH (10,000) to a transaction, then starts
a server on that file once per engine, exactly as ``butterflyfx serve`` would, and times
the engine's answers to the same questions from seeded random starts: depth-3 traversals
(limit 1000) out and in both directions, paths by hops and by weight between pairs joined
by a random walk of 4 steps, paths by hops between random pairs (mostly none within the
depth), and depth-2 subgraphs (the API's defaults). It prints p50 and p99 per question and
engine beside the baseline (breadth-first search and Dijkstra over a dict of lists holding
the same relationships), checks that both engines and the baseline agree on every answer,
and writes the table to .benchmarks/graph.json.

Environment: BENCH_GRAPH_NODES (100000), BENCH_GRAPH_RELATIONSHIPS (300000),
BENCH_GRAPH_QUERIES (200 per question), BENCH_GRAPH_SEED (7), BENCH_GRAPH_FILE (where the
SQLite file goes; default a temporary folder; a file made earlier with the same sizes and
seed is reused, and the table says so), BENCH_OUTPUT (.benchmarks/graph.json).

The graph: each relationship joins two substrates drawn uniformly, of one of five types,
one in ten bidirectional, weighted 0.5 to 10 (one in five without a weight), so the
average node has about 6.6 relationships. Stores run with ``synchronous = "normal"``:
FULL would time the disk's fsync, 400,000 times.
"""

from __future__ import annotations

import asyncio
import heapq
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from butterflyfx.core.config import read_config
from butterflyfx.core.context import ServerContext
from butterflyfx.core.graph import GraphEngine, GraphPath, Subgraph, Traversal
from butterflyfx.kernel import Relationship, Substrate
from butterflyfx.plugins.storage_sqlite import SqliteStore

ROOT = Path(__file__).resolve().parents[2]
TENANT = "bench"
TYPES = ("dependency", "sibling", "lineage", "containment", "adjacency")
BUDGET = 100_000  # the server's default graph_node_budget
BATCH = 10_000  # items per put_substrates / put_relationships transaction
TRAVERSE_LIMIT, TRAVERSE_DEPTH = 1000, 3
PATH_DEPTH, WALK = 6, 4
GOALS = {"traverse p50 ms": 20.0, "generation s": 60.0}
Adjacency = dict[int, list[tuple[int, int, float]]]  # node -> [(next, relationship, weight)]


@dataclass(frozen=True)
class Sizes:
    nodes: int
    relationships: int
    queries: int
    seed: int


@dataclass
class Measure:
    """One question asked ``len(ms)`` times of one answerer."""

    question: str
    answerer: str
    ms: list[float] = field(default_factory=list)

    @property
    def p50(self) -> float:
        return statistics.median(self.ms)

    @property
    def p99(self) -> float:
        ordered = sorted(self.ms)
        return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


# -- the graph ---------------------------------------------------------------------------------


def substrate(i: int) -> Substrate:
    return Substrate.create("lambda", f"lambda **kw: kw.get('x', 0) * {i} + {i % 7}", {"n": i})


def relationships_for(identities: Sequence[int], count: int, seed: int) -> list[Relationship]:
    """``count`` distinct relationships between random pairs of ``identities``."""
    chance = random.Random(seed)
    made: dict[int, Relationship] = {}
    while len(made) < count:
        source, target = chance.choice(identities), chance.choice(identities)
        if source == target:
            continue
        weight = None if chance.random() < 0.2 else round(chance.uniform(0.5, 10.0), 1)
        relationship = Relationship.create(
            source, target, chance.choice(TYPES),
            bidirectional=chance.random() < 0.1, weight=weight,
        )  # fmt: skip
        made.setdefault(relationship.identity, relationship)
    return list(made.values())


async def generate(path: Path, sizes: Sizes) -> dict[str, float]:
    """Write the graph through the store's own methods; seconds spent on each part."""
    started = time.perf_counter()
    substrates = [substrate(i) for i in range(sizes.nodes)]
    identities = [s.identity for s in substrates]
    relationships = relationships_for(identities, sizes.relationships, sizes.seed)
    made = time.perf_counter()
    store = SqliteStore(path, synchronous="normal")
    await store.open()
    try:
        for start in range(0, len(substrates), BATCH):
            await store.put_substrates(TENANT, substrates[start : start + BATCH])
        stored_substrates = time.perf_counter()
        for start in range(0, len(relationships), BATCH):
            await store.put_relationships(TENANT, relationships[start : start + BATCH])
        stored = time.perf_counter()
        assert await store.count_substrates(TENANT) == sizes.nodes
        assert sum((await store.count_relationships(TENANT)).values()) == sizes.relationships
    finally:
        await store.close()
    return {
        "kernel objects s": made - started,
        "put_substrates s": stored_substrates - made,
        "put_relationships s": stored - stored_substrates,
        "generation s": stored - started,
    }


async def prepared(sizes: Sizes, folder: Path) -> tuple[Path, dict[str, float] | None]:
    """The SQLite file with the graph: made now (and timed), or reused (None)."""
    wanted = os.environ.get("BENCH_GRAPH_FILE")
    path = Path(wanted) if wanted else folder / "graph.sqlite3"
    stamp = path.with_name(path.name + ".json")
    if path.exists() and stamp.exists() and json.loads(stamp.read_text()) == asdict(sizes):
        return path, None
    for suffix in ("", "-wal", "-shm", ".json"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    timings = await generate(path, sizes)
    stamp.write_text(json.dumps(asdict(sizes)))
    return path, timings


# -- the baseline: plain Python over a dict ------------------------------------------------------


async def adjacency(path: Path) -> tuple[Adjacency, Adjacency]:
    """Out and both-ways adjacency of every node, read once (not timed)."""
    store = SqliteStore(path)
    await store.open()
    out: Adjacency = {}
    both: Adjacency = {}
    try:
        after = None
        while page := await store.all_relationships(TENANT, limit=20_000, after=after):
            for r in page:
                weight = 1.0 if r.weight is None else r.weight
                out.setdefault(r.source, []).append((r.target, r.identity, weight))
                both.setdefault(r.source, []).append((r.target, r.identity, weight))
                both.setdefault(r.target, []).append((r.source, r.identity, weight))
                if r.bidirectional:
                    out.setdefault(r.target, []).append((r.source, r.identity, weight))
            after = page[-1].identity
    finally:
        await store.close()
    return out, both


def baseline_traverse(graph: Adjacency, start: int, depth: int, limit: int) -> list[int]:
    """Breadth first with a parent per node, sorted by depth then identity, cut at limit."""
    parent = {start: start}
    level, levels = [start], [[start]]
    for _ in range(depth):
        found = []
        for node in level:
            for far, _, _ in graph.get(node, ()):
                if far not in parent:
                    parent[far] = node
                    found.append(far)
        if not found:
            break
        levels.append(found)
        level = found
    ordered = [node for nodes in levels for node in sorted(nodes)][:limit]
    for node in ordered:  # the paths, as the engines return them
        path = [node]
        while path[-1] != start:
            path.append(parent[path[-1]])
    return ordered


def baseline_hops(graph: Adjacency, source: int, target: int, depth: int) -> int | None:
    """Hops of a shortest path by breadth first search, or None."""
    if source == target:
        return 0
    seen, level = {source}, [source]
    for hops in range(1, depth + 1):
        found = []
        for node in level:
            for far, _, _ in graph.get(node, ()):
                if far == target:
                    return hops
                if far not in seen:
                    seen.add(far)
                    found.append(far)
        level = found
    return None


def baseline_weight(graph: Adjacency, source: int, target: int, depth: int) -> float | None:
    """Dijkstra over (weight, hops) labels, at most ``depth`` steps: the least weight."""
    heap = [(0.0, 0, source)]
    fewest: dict[int, int] = {}
    while heap:
        weight, hops, node = heapq.heappop(heap)
        if node == target:
            return weight
        if fewest.get(node, hops + 1) <= hops:
            continue
        fewest[node] = hops
        if hops < depth:
            for far, _, cost in graph.get(node, ()):
                heapq.heappush(heap, (weight + cost, hops + 1, far))
    return None


def baseline_subgraph(graph: Adjacency, root: int, depth: int, limit: int) -> tuple[int, int]:
    nodes = set(baseline_traverse(graph, root, depth, limit))
    edges = {rel for node in nodes for far, rel, _ in graph.get(node, ()) if far in nodes}
    return len(nodes), len(edges)


# -- the questions -----------------------------------------------------------------------------


def questions(out: Adjacency, sizes: Sizes, identities: list[int]) -> dict[str, list[Any]]:
    """Seeded random inputs, the same for every answerer."""
    chance = random.Random(sizes.seed + 1)
    starts = [chance.choice(identities) for _ in range(sizes.queries)]
    walked = []
    while len(walked) < sizes.queries:
        source = node = chance.choice(identities)
        for _ in range(WALK):
            steps = out.get(node)
            if not steps:
                break
            node = chance.choice(steps)[0]
        if node != source:
            walked.append((source, node))
    strangers = [(chance.choice(identities), chance.choice(identities)) for _ in starts]
    return {"starts": starts, "walked": walked, "strangers": strangers}


Ask = Callable[[Any], Awaitable[Any]]


def engine_questions(engine: GraphEngine) -> dict[str, Ask]:
    async def traverse(start: int, direction: Any) -> Traversal:
        return await engine.traverse(
            TENANT, start, direction=direction, max_depth=TRAVERSE_DEPTH, types=None,
            limit=TRAVERSE_LIMIT, node_budget=BUDGET,
        )  # fmt: skip

    async def path(pair: tuple[int, int], weighted: bool) -> GraphPath | None:
        return await engine.shortest_path(
            TENANT, pair[0], pair[1], weighted=weighted, direction="out", types=None,
            max_depth=PATH_DEPTH, node_budget=BUDGET,
        )  # fmt: skip

    async def subgraph(root: int) -> Subgraph:
        return await engine.subgraph(TENANT, root, depth=2, types=None, max_nodes=1000)

    return {
        "traverse out, depth 3": lambda start: traverse(start, "out"),
        "traverse both, depth 3": lambda start: traverse(start, "both"),
        "path by hops, 4-step pairs": lambda pair: path(pair, False),
        "path by weight, 4-step pairs": lambda pair: path(pair, True),
        "path by hops, random pairs": lambda pair: path(pair, False),
        "subgraph, depth 2": subgraph,
    }


def baseline_questions(out: Adjacency, both: Adjacency) -> dict[str, Ask]:
    def answered(function: Callable[..., Any], *arguments: Any) -> Ask:
        async def ask(given: Any) -> Any:
            return function(*(given if isinstance(given, tuple) else (given,)), *arguments)

        return ask

    return {
        "traverse out, depth 3": answered(
            lambda s, *a: baseline_traverse(out, s, *a), TRAVERSE_DEPTH, TRAVERSE_LIMIT
        ),
        "traverse both, depth 3": answered(
            lambda s, *a: baseline_traverse(both, s, *a), TRAVERSE_DEPTH, TRAVERSE_LIMIT
        ),
        "path by hops, 4-step pairs": answered(
            lambda s, t, d: baseline_hops(out, s, t, d), PATH_DEPTH
        ),
        "path by weight, 4-step pairs": answered(
            lambda s, t, d: baseline_weight(out, s, t, d), PATH_DEPTH
        ),
        "path by hops, random pairs": answered(
            lambda s, t, d: baseline_hops(out, s, t, d), PATH_DEPTH
        ),
        "subgraph, depth 2": answered(lambda r, *a: baseline_subgraph(both, r, *a), 2, 1000),
    }


INPUTS = {
    "traverse out, depth 3": "starts",
    "traverse both, depth 3": "starts",
    "path by hops, 4-step pairs": "walked",
    "path by weight, 4-step pairs": "walked",
    "path by hops, random pairs": "strangers",
    "subgraph, depth 2": "starts",
}


async def timed(ask: Ask, inputs: Sequence[Any], measure: Measure) -> list[Any]:
    answers = []
    for given in inputs:
        started = time.perf_counter()
        answers.append(await ask(given))
        measure.ms.append((time.perf_counter() - started) * 1000)
    return answers


def summary(question: str, answer: Any) -> Any:
    """What every answerer must agree on for one answer."""
    if isinstance(answer, Traversal):
        return [r.identity for r in answer.nodes]
    if isinstance(answer, Subgraph):
        return len(answer.nodes), len(answer.edges)
    if isinstance(answer, GraphPath):
        return answer.total_weight if "weight" in question else len(answer.edges)
    return answer


def agree(question: str, given: Any, mine: Any, theirs: Any, who: str) -> None:
    ours, baseline = summary(question, mine), summary(question, theirs)
    if isinstance(ours, float) and isinstance(baseline, float):
        same = abs(ours - baseline) <= 1e-9 * max(1.0, abs(baseline))
    else:
        same = ours == baseline
    if not same:
        raise AssertionError(f"{who} answers {question!r} for {given!r} with {ours!r}, the "
                             f"baseline with {baseline!r}")  # fmt: skip


# -- running ---------------------------------------------------------------------------------------


def server(path: Path, engine_plugin: str, folder: Path) -> ServerContext:
    config = folder / f"{engine_plugin}.toml"
    config.write_text(
        f'plugins = ["storage.sqlite", "{engine_plugin}"]\n'
        f"[server]\ndata_dir = {str(folder)!r}\n"
        f'[storage.sqlite]\npath = {str(path)!r}\nsynchronous = "normal"\n',
        encoding="utf-8",
    )
    return ServerContext.build(read_config(config))


async def measure_all(sizes: Sizes, folder: Path) -> dict[str, Any]:
    path, generation = await prepared(sizes, folder)
    out, both = await adjacency(path)
    identities = sorted({*out, *both})
    store = SqliteStore(path)
    await store.open()
    try:  # substrates without any relationship are starts too
        after = None
        everyone: list[int] = []
        while page := await store.list_substrates(TENANT, limit=20_000, after=after):
            everyone.extend(s.identity for s in page)
            after = page[-1].identity
    finally:
        await store.close()
    identities = everyone or identities
    inputs = questions(out, sizes, identities)
    measures: list[Measure] = []
    baseline_answers: dict[str, list[Any]] = {}
    for question, ask in baseline_questions(out, both).items():
        measure = Measure(question, "baseline")
        baseline_answers[question] = await timed(ask, inputs[INPUTS[question]], measure)
        measures.append(measure)
    loads: dict[str, float] = {}
    for plugin in ("graph.sql", "graph.memory"):
        ctx = server(path, plugin, folder)
        await ctx.start()
        try:
            engine = ctx.graph
            assert engine is not None
            warm = time.perf_counter()  # graph.memory reads its index on the first question
            await engine.traverse(
                TENANT, identities[0], direction="out", max_depth=1, types=None, limit=1,
                node_budget=BUDGET,
            )  # fmt: skip
            loads[plugin] = time.perf_counter() - warm
            for question, ask in engine_questions(engine).items():
                measure = Measure(question, plugin)
                given = inputs[INPUTS[question]]
                answers = await timed(ask, given, measure)
                for one, mine, theirs in zip(given, answers, baseline_answers[question],
                                             strict=True):  # fmt: skip
                    agree(question, one, mine, theirs, plugin)
                measures.append(measure)
        finally:
            await ctx.stop()
    found = sum(answer is not None for answer in baseline_answers["path by hops, random pairs"])
    return {
        "sizes": asdict(sizes),
        "generation": generation,
        "first question s (index load)": loads,
        "random pairs with a path": f"{found} of {len(inputs['strangers'])}",
        "measures": [
            {
                "question": m.question,
                "answerer": m.answerer,
                "p50 ms": round(m.p50, 3),
                "p99 ms": round(m.p99, 3),
                "count": len(m.ms),
            }
            for m in measures
        ],  # fmt: skip
    }


def table(result: dict[str, Any]) -> str:
    rows: dict[str, dict[str, dict[str, float]]] = {}
    for m in result["measures"]:
        rows.setdefault(m["question"], {})[m["answerer"]] = m
    lines = [
        "| question | graph.sql p50 / p99 ms | graph.memory p50 / p99 ms "
        "| baseline p50 / p99 ms | sql / baseline (p50) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for question, by in rows.items():
        cells = [
            f"{by[a]['p50 ms']:.2f} / {by[a]['p99 ms']:.2f}"
            for a in ("graph.sql", "graph.memory", "baseline")
        ]
        ratio = by["graph.sql"]["p50 ms"] / max(by["baseline"]["p50 ms"], 1e-6)
        lines.append(f"| {question} | {' | '.join(cells)} | {ratio:,.0f}x |")
    return "\n".join(lines)


def run(sizes: Sizes, folder: Path) -> dict[str, Any]:
    result = asyncio.run(measure_all(sizes, folder))
    result["table"] = table(result)
    return result


def main() -> int:
    sizes = Sizes(
        nodes=int(os.environ.get("BENCH_GRAPH_NODES", 100_000)),
        relationships=int(os.environ.get("BENCH_GRAPH_RELATIONSHIPS", 300_000)),
        queries=int(os.environ.get("BENCH_GRAPH_QUERIES", 200)),
        seed=int(os.environ.get("BENCH_GRAPH_SEED", 7)),
    )
    output = Path(os.environ.get("BENCH_OUTPUT", ROOT / ".benchmarks" / "graph.json"))
    print(f"graph benchmark: {sizes.nodes:,} substrates, {sizes.relationships:,} relationships, "
          f"{sizes.queries} questions each; load average {os.getloadavg()[0]:.2f}",
          flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="butterflyfx-bench-graph-") as folder:
        result = run(sizes, Path(folder))
    generation = result["generation"]
    if generation is None:
        print("generation: reused the graph file made earlier (BENCH_GRAPH_FILE)")
    else:
        print("generation: " + ", ".join(f"{k} {v:.1f}" for k, v in generation.items()))
    print("first question (index load) s: " + ", ".join(
        f"{k} {v:.2f}" for k, v in result["first question s (index load)"].items()))  # fmt: skip
    print(f"random pairs with a path within {PATH_DEPTH}: {result['random pairs with a path']}")
    print(result["table"])
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"written to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
