"""The query service: ceilings and defaults, the graph engine's answers as the API gives them,
searches and statistics; on a real context with each built-in graph engine."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from butterflyfx.core.config import read_config
from butterflyfx.core.context import ServerContext
from butterflyfx.core.problems import ProblemError
from butterflyfx.core.queries import parse_instant
from butterflyfx.kernel import Substrate, format_id

T = "default"
ENGINES = [
    pytest.param("storage.memory,graph.memory", id="graph.memory"),
    pytest.param("storage.sqlite,graph.sql", id="graph.sql"),
]


def run(
    tmp_path: Path,
    story: Callable[[ServerContext], Awaitable[Any]],
    plugins: str = "storage.memory",
    **server: Any,
) -> Any:
    config = read_config(
        None, {"BUTTERFLYFX_PLUGINS": plugins}, {"data_dir": tmp_path / "data", **server}
    )
    ctx = ServerContext.build(config)

    async def main() -> Any:
        await ctx.start()
        try:
            return await story(ctx)
        finally:
            await ctx.stop()

    return asyncio.run(main())


async def named(ctx: ServerContext, *names: str) -> dict[str, str]:
    """One substrate per name (metadata.name = the name); name -> substrate_id."""
    ids = {}
    for name in names:
        s, _ = await ctx.substrates.create(
            T, "lambda", f"lambda **kw: kw.get('{name}', 0)", {"name": name}
        )
        ids[name] = s.substrate_id
    return ids


async def relate(ctx: ServerContext, ids: dict[str, str], edges: str, **options: Any) -> None:
    """``"a>b c>d"``: a relationship of type ``options['kind']`` (dependency) per pair."""
    kind = options.pop("kind", "dependency")
    for pair in edges.split():
        source, target = pair.split(">")
        await ctx.relationships.create(T, ids[source], ids[target], kind, **options)


async def refused(call: Awaitable[Any]) -> Any:
    with pytest.raises(ProblemError) as caught:
        await call
    return caught.value.problem


# -- ceilings and defaults: the service's own, whatever the engine --------------------------


def test_asking_past_a_ceiling_is_a_422_naming_the_field_and_the_ceiling(tmp_path):
    async def story(ctx):
        (a,) = (await named(ctx, "a")).values()
        q = ctx.queries
        return [
            await refused(q.traverse(T, a, max_depth=7)),
            await refused(q.traverse(T, a, limit=10_001)),
            await refused(q.subgraph(T, a, depth=100)),
            await refused(q.subgraph(T, a, max_nodes=20_000)),
            await refused(q.path(T, a, a, max_depth=7)),
        ]

    problems = run(tmp_path, story)
    assert [(p.status, p.extra["field"], p.extra["ceiling"]) for p in problems] == [
        (422, "max_depth", 6), (422, "limit", 10_000), (422, "depth", 6),
        (422, "max_nodes", 10_000), (422, "max_depth", 6),
    ]  # fmt: skip
    assert problems[0].extra["setting"] == "server.graph_max_depth"
    assert "at most 6" in problems[0].detail


def test_the_ceilings_come_from_the_config(tmp_path):
    async def story(ctx):
        (a,) = (await named(ctx, "a")).values()
        return await refused(ctx.queries.traverse(T, a, max_depth=3))

    problem = run(tmp_path, story, graph_max_depth=2)
    assert (problem.extra["field"], problem.extra["ceiling"]) == ("max_depth", 2)


def test_below_the_minimum_is_refused_too(tmp_path):
    async def story(ctx):
        (a,) = (await named(ctx, "a")).values()
        q = ctx.queries
        return [
            await refused(q.traverse(T, a, max_depth=-1)),
            await refused(q.traverse(T, a, limit=0)),
            await refused(q.subgraph(T, a, max_nodes=0)),
            await refused(q.traverse(T, a, direction="sideways")),
            await refused(q.traverse(T, a, types=["dependency", "likes"])),
        ]

    problems = run(tmp_path, story)
    assert [(p.status, p.extra["field"]) for p in problems] == [
        (422, "max_depth"), (422, "limit"), (422, "max_nodes"), (422, "direction"),
        (422, "relationship_types[1]"),
    ]  # fmt: skip


def test_without_a_graph_engine_graph_queries_are_503_naming_the_plugins_to_add(tmp_path):
    async def story(ctx):
        a, b = (await named(ctx, "a", "b")).values()
        q = ctx.queries
        problems = [
            await refused(q.traverse(T, a)),
            await refused(q.path(T, a, b)),
            await refused(q.subgraph(T, a)),
        ]
        return problems, (await q.search(T, name_prefix="a")).items, await q.stats(T)

    problems, found, stats = run(tmp_path, story)
    for problem in problems:
        assert (problem.status, problem.slug) == (503, "graph-engine-unavailable")
        assert "graph.sql" in problem.detail and "graph.memory" in problem.detail
    assert [s.metadata["name"] for s in found] == ["a"]
    assert stats.graph_engine is None


# -- the graph, through each engine ------------------------------------------------------


@pytest.fixture(params=ENGINES)
def engine(request):
    return request.param


def test_a_traversal_reaches_each_node_once_at_its_depth_and_echoes_its_limits(tmp_path, engine):
    async def story(ctx):
        ids = await named(ctx, "a", "b", "c", "d", "e", "f")
        await relate(ctx, ids, "a>b b>c c>d d>a")  # a cycle of four
        await relate(ctx, ids, "a>e", kind="sibling", bidirectional=True)
        out = await ctx.queries.traverse(T, ids["a"])
        into = await ctx.queries.traverse(T, ids["a"], direction="in", max_depth=1)
        typed = await ctx.queries.traverse(T, ids["a"], types=["SIBLING"], limit=5)
        return ids, out, into, typed

    ids, out, into, typed = run(tmp_path, story, engine)
    name = {int(v, 16): k for k, v in ids.items()}
    assert (out.direction, out.max_depth, out.limit, out.types) == ("out", 3, 1000, None)
    assert out.node_budget == 100_000 and not out.truncated
    reached = [(name[n.identity], n.depth) for n in out.nodes]
    assert reached[0] == ("a", 0)
    assert sorted(reached) == [("a", 0), ("b", 1), ("c", 2), ("d", 3), ("e", 1)]
    assert [n.depth for n in out.nodes] == sorted(n.depth for n in out.nodes)
    assert [name[i] for i in out.nodes[-1].path] == ["a", "b", "c", "d"]
    assert sorted((name[n.identity], n.depth) for n in into.nodes) == [
        ("a", 0), ("d", 1), ("e", 1),
    ]  # fmt: skip
    assert typed.types == ("sibling",) and typed.limit == 5
    assert sorted(name[n.identity] for n in typed.nodes) == ["a", "e"]


def test_a_traversal_stops_at_its_limit_or_the_node_budget_and_says_so(tmp_path, engine):
    async def story(ctx):
        ids = await named(ctx, *(f"n{i}" for i in range(30)))
        await relate(ctx, ids, " ".join(f"n0>n{i}" for i in range(1, 30)))
        limited = await ctx.queries.traverse(T, ids["n0"], limit=10)
        return limited

    limited = run(tmp_path, story, engine)
    assert limited.truncated and len(limited.nodes) == 10
    assert limited.nodes[0].depth == 0

    budgeted = run(
        tmp_path / "budget",
        lambda ctx: _star_traversal(ctx, 30),
        engine,
        graph_node_budget=5,
    )
    assert budgeted.truncated and len(budgeted.nodes) <= 5 and budgeted.node_budget == 5


async def _star_traversal(ctx: ServerContext, size: int) -> Any:
    ids = await named(ctx, *(f"n{i}" for i in range(size)))
    await relate(ctx, ids, " ".join(f"n0>n{i}" for i in range(1, size)))
    return await ctx.queries.traverse(T, ids["n0"])


def test_the_shortest_path_by_hops_or_by_weight(tmp_path, engine):
    async def story(ctx):
        ids = await named(ctx, "s", "m1", "m2", "t", "island")
        await relate(ctx, ids, "s>t", weight=10)
        await relate(ctx, ids, "s>m1 m1>m2 m2>t", kind="adjacency", weight=1)
        q = ctx.queries
        hops = await q.path(T, ids["s"], ids["t"])
        weighed = await q.path(T, ids["s"], ids["t"], weighted=True)
        itself = await q.path(T, ids["s"], ids["s"])
        none = await refused(q.path(T, ids["s"], ids["island"]))
        against = await refused(q.path(T, ids["t"], ids["s"]))
        back = await q.path(T, ids["t"], ids["s"], direction="in")
        missing = await refused(q.path(T, ids["s"], "0x0000000000000001"))
        return ids, hops, weighed, itself, none, against, back, missing

    ids, hops, weighed, itself, none, against, back, missing = run(tmp_path, story, engine)
    name = {int(v, 16): k for k, v in ids.items()}
    assert [name[n] for n in hops.path.nodes] == ["s", "t"] and hops.hops == 1
    assert [name[n] for n in weighed.path.nodes] == ["s", "m1", "m2", "t"]
    assert weighed.hops == 3 and weighed.path.total_weight == 3.0
    assert [e.relationship_type for e in weighed.path.edges] == ["adjacency"] * 3
    assert itself.path.nodes == (int(ids["s"], 16),) and itself.hops == 0
    assert (none.status, none.slug) == (404, "no-path")
    assert against.slug == "no-path"
    assert [name[n] for n in back.path.nodes] == ["t", "s"]
    assert (missing.status, missing.slug, missing.extra["field"]) == (404, "not-found", "target_id")


def test_a_subgraph_gives_whole_substrates_and_the_relationships_among_them(tmp_path, engine):
    async def story(ctx):
        ids = await named(ctx, "root", "near", "far", "farther", "other")
        await relate(ctx, ids, "root>near far>near")  # far reaches root against the arrows
        await relate(ctx, ids, "far>farther", kind="lineage")
        deep = await ctx.queries.subgraph(T, ids["root"])
        shallow = await ctx.queries.subgraph(T, ids["root"], depth=1)
        capped = await ctx.queries.subgraph(T, ids["root"], max_nodes=2)
        typed = await ctx.queries.subgraph(T, ids["root"], depth=3, types=["dependency"])
        missing = await refused(ctx.queries.subgraph(T, "0x0000000000000001"))
        return ids, deep, shallow, capped, typed, missing

    ids, deep, shallow, capped, typed, missing = run(tmp_path, story, engine)
    assert (deep.depth, deep.max_nodes) == (2, 1000)
    assert all(isinstance(node, Substrate) for node in deep.nodes)
    assert sorted(n.metadata["name"] for n in deep.nodes) == ["far", "near", "root"]
    assert len(deep.edges) == 2 and not deep.truncated
    assert sorted(n.metadata["name"] for n in shallow.nodes) == ["near", "root"]
    assert capped.truncated and len(capped.nodes) == 2
    assert {e.source for e in capped.edges} | {e.target for e in capped.edges} <= {
        n.identity for n in capped.nodes
    }
    assert sorted(n.metadata["name"] for n in typed.nodes) == ["far", "near", "root"]
    assert (missing.status, missing.extra["field"]) == (404, "root")


def test_a_substrate_deleted_leaves_no_edge_behind_in_the_graph(tmp_path, engine):
    async def story(ctx):
        ids = await named(ctx, "a", "b", "c")
        await relate(ctx, ids, "a>b b>c")
        await ctx.substrates.delete(T, ids["b"])
        return ids, await ctx.queries.subgraph(T, ids["a"]), await ctx.queries.traverse(T, ids["a"])

    ids, graph, walk = run(tmp_path, story, engine)
    assert [n.substrate_id for n in graph.nodes] == [ids["a"]] and graph.edges == []
    assert [format_id(n.identity) for n in walk.nodes] == [ids["a"]]


# -- search and statistics ------------------------------------------------------------------


def test_search_filters_combine_and_page_in_identity_order(tmp_path):
    january = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)

    async def story(ctx):
        made = []
        for n in range(12):
            s = Substrate.create(
                "lambda", f"lambda **kw: kw.get('x', 0) * {n}",
                {"name": f"{'mul' if n % 2 else 'other'}_{n}", "team": "a" if n < 6 else "b"},
                created_at=january + timedelta(days=n),
            )  # fmt: skip
            made.append((await ctx.store.put_substrate(T, s))[0])
        constant, _ = await ctx.substrates.create(T, "constant", "7", {"name": "mul_constant"})
        await ctx.relationships.create(T, made[1].substrate_id, made[2].substrate_id, "lineage")
        q = ctx.queries
        found = {
            "mul": await q.search(T, name_prefix="mul_", limit=100),
            "team b odd": await q.search(T, metadata={"team": "b"}, name_prefix="mul"),
            "code": await q.search(T, code_contains="* 1"),
            "lambda": await q.search(T, expression_type="lambda"),
            "window": await q.search(
                T,
                created_after=january + timedelta(days=3),
                created_before=january + timedelta(days=5),
            ),  # fmt: skip
            "related": await q.search(T, has_relationship_type="LINEAGE"),
        }
        pages, cursor = [], None
        while True:
            page = await q.search(T, expression_type="lambda", limit=5, cursor=cursor)
            pages.append(page.items)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        return made, constant, found, pages

    made, constant, found, pages = run(tmp_path, story)
    names = {key: sorted(s.metadata["name"] for s in page.items) for key, page in found.items()}
    assert names["mul"] == sorted([f"mul_{n}" for n in range(1, 12, 2)] + ["mul_constant"])
    assert names["team b odd"] == ["mul_11", "mul_7", "mul_9"]
    assert names["code"] == ["mul_1", "mul_11", "other_10"]
    assert len(names["lambda"]) == 12
    assert names["window"] == ["mul_3", "other_4"]
    assert names["related"] == ["mul_1", "other_2"]
    for page in found.values():
        assert [s.identity for s in page.items] == sorted(s.identity for s in page.items)
    assert [len(p) for p in pages] == [5, 5, 2]
    everything = [s.identity for p in pages for s in p]
    assert everything == sorted(s.identity for s in made)


def test_search_refuses_what_can_never_match(tmp_path):
    async def story(ctx):
        q = ctx.queries
        return [
            await refused(q.search(T, expression_type="cobol")),
            await refused(q.search(T, has_relationship_type="likes")),
            await refused(q.search(T, limit=0)),
            await refused(q.search(T, cursor="forged")),
        ]

    problems = run(tmp_path, story)
    assert [(p.status, p.extra["field"]) for p in problems] == [
        (422, "expression_type"), (422, "has_relationship_type"), (422, "limit"),
        (400, "cursor"),
    ]  # fmt: skip
    assert problems[0].extra["known_types"] == ["constant", "lambda"]


@pytest.mark.parametrize(
    ("text", "instant"),
    [
        ("2026-02-09T12:34:56Z", datetime(2026, 2, 9, 12, 34, 56, tzinfo=UTC)),
        ("2026-02-09T14:34:56+02:00", datetime(2026, 2, 9, 12, 34, 56, tzinfo=UTC)),
        ("2026-02-09T12:34:56", datetime(2026, 2, 9, 12, 34, 56, tzinfo=UTC)),
        ("2026-02-09", datetime(2026, 2, 9, tzinfo=UTC)),
    ],
)
def test_instants_are_iso_8601_and_utc_when_no_offset_is_given(text, instant):
    assert parse_instant(text, "created_after") == instant


@pytest.mark.parametrize(
    "text",
    ["yesterday", "2026-13-01", "1707480000", "", "2026-02-09T25:00", "0001-01-01T00:00+01:00"],
)
def test_an_instant_that_is_not_iso_8601_names_the_field(text):
    with pytest.raises(ProblemError) as caught:
        parse_instant(text, "created_before")
    assert caught.value.problem.extra["field"] == "created_before"
    assert caught.value.problem.status == 422
