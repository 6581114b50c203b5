"""The graph conformance suite: does an engine keep the :class:`GraphEngine` contract?

A graph plugin passes it by subclassing :class:`GraphConformance` in one of its test
files and providing one fixture, ``graph_server_factory``, that returns a callable making
a new, unstarted :class:`~butterflyfx.core.context.ServerContext` on fresh data whose
plugins include a store and the engine. :func:`graph_server` builds such a factory::

    # tests/test_conformance.py of the plugin "butterflyfx-graph-acme"
    import pytest

    from butterflyfx.testing.graph import GraphConformance, graph_server
    import butterflyfx_graph_acme


    class TestAcmeGraph(GraphConformance):
        @pytest.fixture
        def graph_server_factory(self, tmp_path):
            # An installed plugin is named; an object is given by name as well.
            return graph_server(tmp_path, ["storage.sqlite", "acme.graph"],
                                {"acme.graph": butterflyfx_graph_acme})

The stories write as a user of the API would: substrates into the store (with chosen
identities, on both sides of the signed 64-bit boundary), relationships through the
relationship service and substrate deletes through the substrate service, so an engine
that keeps an index hears the same events it hears in production. Answers are compared
with an exhaustive search written here (every simple path of a small graph), so the
suite checks each rule of the contract, tie-breaking included, and not merely that an
engine agrees with itself. Each story runs with ``asyncio.run``; no pytest asyncio
plugin is needed.

Rules the contract leaves to this suite: an empty ``types`` (given, but naming none)
follows no relationship; of several relationships joining two consecutive nodes of a
path, the lightest is taken, then the one with the smallest identity; a hop path's
``total_weight`` is the sum of its relationships' weights (1 for none). An engine may
count its node budget as it likes (``truncated`` is set whenever it ran out, even if
nothing turned out to be missing), but what it returns under a budget is a prefix of the
full answer, at most ``node_budget`` nodes long, with ``truncated`` set when anything
was left out; a budget of 1 leaves only the start, and 10,000 is no limit for a graph
of 25 nodes.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from butterflyfx.core.config import read_config
from butterflyfx.core.context import ServerContext
from butterflyfx.core.graph import (
    GraphDirection,
    GraphEngine,
    GraphPath,
    Reached,
    Subgraph,
    Traversal,
)
from butterflyfx.core.relationships import RelationshipService
from butterflyfx.kernel import Relationship, format_id

from .storage import make_substrate

__all__ = ["GraphConformance", "GraphWorld", "graph_server", "node"]

T = TypeVar("T")
ServerFactory = Callable[[], ServerContext]
TENANT = "acme"
OTHER_TENANT = "globex"
DIRECTIONS: tuple[GraphDirection, ...] = ("out", "in", "both")
PLENTY = 1_000_000


def node(letter: str) -> int:
    """The identity of node ``A``, ``B``, ...: increasing in letter order, A to F below
    2**63 and G onwards from it, so a store keeping signed keys must still sort right."""
    return 2**63 + 10 * (ord(letter) - ord("G"))


A, B, C, D, E, F, G, H = (node(letter) for letter in "ABCDEFGH")


def graph_server(
    folder: Path,
    plugins: Sequence[str],
    objects: Mapping[str, object] | None = None,
    *,
    server: str = "",
) -> ServerFactory:
    """A factory of unstarted servers loading ``plugins`` (``objects`` are in-process
    plugins by name), each on a new data folder under ``folder``. ``server`` is extra
    TOML for the ``[server]`` section."""
    counter = itertools.count(1)

    def make() -> ServerContext:
        data = folder / f"graph-server-{next(counter)}"
        data.mkdir(parents=True, exist_ok=True)
        path = data / "butterflyfx.toml"
        text = f"plugins = {list(plugins)!r}\n[server]\ndata_dir = {str(data)!r}\n{server}\n"
        path.write_text(text, encoding="utf-8")
        return ServerContext.build(read_config(path), dict(objects or {}))

    return make


# -- a story's world ------------------------------------------------------------------------


@dataclass
class GraphWorld:
    """A started server, and what a story does with it. ``live`` is every relationship
    the story made and has not deleted, per tenant: what the exhaustive search reads."""

    ctx: ServerContext
    live: dict[str, dict[int, Relationship]] = field(default_factory=dict)

    @property
    def engine(self) -> GraphEngine:
        engine = self.ctx.graph
        assert engine is not None, "the server started without a graph engine"
        return engine

    @property
    def service(self) -> RelationshipService:
        """The relationship service the HTTP API uses (it tells plugins what changed)."""
        return self.ctx.relationships

    async def nodes(self, *identities: int, tenant: str = TENANT) -> None:
        """Substrates with these identities."""
        for number, identity in enumerate(identities):
            substrate = make_substrate(number, identity=identity)
            await self.ctx.store.put_substrate(tenant, substrate)

    async def relate(
        self,
        source: int,
        target: int,
        kind: str = "dependency",
        *,
        bidirectional: bool = False,
        weight: float | None = None,
        tenant: str = TENANT,
    ) -> Relationship:
        """A relationship made through the relationship service (which tells plugins)."""
        stored, _ = await self.service.create(
            tenant, format_id(source), format_id(target), kind,
            bidirectional=bidirectional, weight=weight, metadata={"story": "graph"},
        )  # fmt: skip
        self.live.setdefault(tenant, {})[stored.identity] = stored
        return stored

    async def unrelate(self, relationship: Relationship, *, tenant: str = TENANT) -> None:
        await self.service.delete(tenant, relationship.relationship_id)
        self.live.get(tenant, {}).pop(relationship.identity, None)

    async def delete_node(self, identity: int, *, tenant: str = TENANT) -> None:
        """Delete a substrate through the substrate service (its relationships go too)."""
        await self.ctx.substrates.delete(tenant, format_id(identity))
        kept = self.live.get(tenant, {})
        for key in [k for k, r in kept.items() if identity in (r.source, r.target)]:
            del kept[key]

    async def traverse(
        self,
        start: int,
        direction: GraphDirection = "out",
        *,
        max_depth: int = 10,
        types: Sequence[str] | None = None,
        limit: int = PLENTY,
        node_budget: int = PLENTY,
        tenant: str = TENANT,
    ) -> Traversal:
        return await self.engine.traverse(
            tenant, start, direction=direction, max_depth=max_depth, types=types,
            limit=limit, node_budget=node_budget,
        )  # fmt: skip

    async def path(
        self,
        source: int,
        target: int,
        direction: GraphDirection = "out",
        *,
        weighted: bool = False,
        max_depth: int = 10,
        types: Sequence[str] | None = None,
        node_budget: int = PLENTY,
        tenant: str = TENANT,
    ) -> GraphPath | None:
        return await self.engine.shortest_path(
            tenant, source, target, weighted=weighted, direction=direction, types=types,
            max_depth=max_depth, node_budget=node_budget,
        )  # fmt: skip

    async def subgraph(
        self,
        root: int,
        *,
        depth: int = 10,
        types: Sequence[str] | None = None,
        max_nodes: int = PLENTY,
        tenant: str = TENANT,
    ) -> Subgraph:
        return await self.engine.subgraph(
            tenant, root, depth=depth, types=types, max_nodes=max_nodes
        )

    def expected(self, tenant: str = TENANT) -> Exhaustive:
        return Exhaustive(list(self.live.get(tenant, {}).values()))


def on_server(factory: Any, story: Callable[[GraphWorld], Awaitable[T]]) -> T:
    """Start a new server, run ``story`` in its world, stop it; all in one event loop."""

    async def main() -> T:
        ctx = factory()
        await ctx.start()
        try:
            return await story(GraphWorld(ctx))
        finally:
            await ctx.stop()

    return asyncio.run(main())


# -- the exhaustive search the answers are checked against -------------------------------------


def _weight(relationship: Relationship) -> float:
    return 1.0 if relationship.weight is None else relationship.weight


@dataclass
class Exhaustive:
    """Answers found by listing every simple path of a small graph: slow and obviously
    right, and sharing no code with any engine."""

    relationships: list[Relationship]

    def joins(
        self, direction: GraphDirection, types: Sequence[str] | None
    ) -> dict[tuple[int, int], Relationship]:
        """For each (from, to) a walk can take, the relationship a path uses for it."""
        best: dict[tuple[int, int], Relationship] = {}
        for r in self.relationships:
            if types is not None and r.relationship_type not in types:
                continue
            pairs = []
            if direction in ("out", "both") or r.bidirectional:
                pairs.append((r.source, r.target))
            if direction in ("in", "both") or r.bidirectional:
                pairs.append((r.target, r.source))
            for pair in pairs:
                held = best.get(pair)
                if held is None or (_weight(r), r.identity) < (_weight(held), held.identity):
                    best[pair] = r
        return best

    def simple_paths(
        self, start: int, direction: GraphDirection, types: Sequence[str] | None, depth: int
    ) -> Iterator[tuple[int, ...]]:
        after: dict[int, list[int]] = {}
        for here, there in self.joins(direction, types):
            after.setdefault(here, []).append(there)

        def extend(path: tuple[int, ...]) -> Iterator[tuple[int, ...]]:
            yield path
            if len(path) - 1 < depth:
                for there in after.get(path[-1], []):
                    if there not in path:
                        yield from extend(path + (there,))

        yield from extend((start,))

    def traversal(
        self,
        start: int,
        direction: GraphDirection,
        *,
        max_depth: int = 10,
        types: Sequence[str] | None = None,
        limit: int = PLENTY,
    ) -> Traversal:
        first: dict[int, tuple[int, ...]] = {}
        for path in self.simple_paths(start, direction, types, max_depth):
            held = first.get(path[-1])
            if held is None or (len(path), path) < (len(held), held):
                first[path[-1]] = path
        reached = sorted(
            (Reached(n, len(p) - 1, p) for n, p in first.items()),
            key=lambda r: (r.depth, r.identity),
        )
        return Traversal(reached[:limit], len(reached) > limit)

    def path(
        self,
        source: int,
        target: int,
        direction: GraphDirection,
        *,
        weighted: bool = False,
        max_depth: int = 10,
        types: Sequence[str] | None = None,
    ) -> GraphPath | None:
        joins = self.joins(direction, types)
        best: tuple[Any, ...] | None = None
        for nodes in self.simple_paths(source, direction, types, max_depth):
            if nodes[-1] != target:
                continue
            edges = tuple(joins[pair] for pair in zip(nodes, nodes[1:], strict=False))
            total = 0.0
            for edge in edges:
                total += _weight(edge)
            key = (total, nodes) if weighted else (len(nodes), nodes)
            if best is None or key < best[0]:
                best = (key, GraphPath(nodes, edges, total))
        return None if best is None else best[1]


def same_path(found: GraphPath | None) -> Any:
    """What two paths must agree on: nodes, relationship identities and total weight."""
    if found is None:
        return None
    return found.nodes, [edge.identity for edge in found.edges], found.total_weight


# -- the stories -----------------------------------------------------------------------------


class GraphConformance:
    """Stories every :class:`GraphEngine` must pass; subclass it as ``Test<YourEngine>``."""

    # -- what an engine is ----------------------------------------------------------------
    def test_the_server_runs_the_engine_which_keeps_the_contract(
        self, graph_server_factory: Any
    ) -> None:
        async def story(world: GraphWorld) -> None:
            assert isinstance(world.engine, GraphEngine)
            assert isinstance(world.engine.name, str) and world.engine.name

        on_server(graph_server_factory, story)

    # -- traversals -------------------------------------------------------------------------
    def test_a_traversal_starts_at_depth_zero_and_lists_by_depth_then_identity(
        self, graph_server_factory: Any
    ) -> None:
        async def story(world: GraphWorld) -> None:
            await world.nodes(A, B, C, D, G, H)
            for source, target in ((A, H), (A, C), (H, B), (C, G), (A, D)):
                await world.relate(source, target)
            found = await world.traverse(A)
            assert [(r.identity, r.depth) for r in found.nodes] == [
                (A, 0), (C, 1), (D, 1), (H, 1), (B, 2), (G, 2),
            ]  # fmt: skip
            assert found.nodes[0].path == (A,)
            assert {r.identity: r.path for r in found.nodes}[B] == (A, H, B)
            assert found.truncated is False
            assert found == world.expected().traversal(A, "out")

        on_server(graph_server_factory, story)

    def test_a_cycle_ends_the_walk_with_each_node_once(self, graph_server_factory: Any) -> None:
        async def story(world: GraphWorld) -> None:
            await world.nodes(A, B, C)
            await world.relate(A, B)
            await world.relate(B, C)
            await world.relate(C, A, "cycle")
            await world.relate(B, B, "recursion")
            for direction in DIRECTIONS:
                found = await world.traverse(A, direction, max_depth=50)
                assert sorted(r.identity for r in found.nodes) == [A, B, C]
                assert found == world.expected().traversal(A, direction, max_depth=50)
            backwards = await world.traverse(A, "in")
            assert [(r.identity, r.path) for r in backwards.nodes] == [
                (A, (A,)), (C, (A, C)), (B, (A, C, B)),
            ]  # fmt: skip

        on_server(graph_server_factory, story)

    def test_a_bidirectional_relationship_is_followed_both_ways_a_plain_one_forwards_only(
        self, graph_server_factory: Any
    ) -> None:
        async def story(world: GraphWorld) -> None:
            await world.nodes(A, B, C)
            await world.relate(B, A, "sibling", bidirectional=True)
            await world.relate(B, C)
            from_a = await world.traverse(A, "out")
            assert [(r.identity, r.path) for r in from_a.nodes] == [
                (A, (A,)), (B, (A, B)), (C, (A, B, C)),
            ]  # fmt: skip
            from_c = await world.traverse(C, "out")
            assert [r.identity for r in from_c.nodes] == [C]
            into_a = await world.traverse(A, "in")
            assert [r.identity for r in into_a.nodes] == [A, B]
            into_c = await world.traverse(C, "in")
            assert [r.identity for r in into_c.nodes] == [C, B, A]

        on_server(graph_server_factory, story)

    def test_out_in_and_both_follow_relationships_as_the_contract_says(
        self, graph_server_factory: Any
    ) -> None:
        async def story(world: GraphWorld) -> None:
            await world.nodes(A, B, C, D, E)
            await world.relate(A, B)
            await world.relate(C, A)
            await world.relate(D, A, "adjacency", bidirectional=True)
            await world.relate(E, C)
            answers = {d: [r.identity for r in (await world.traverse(A, d)).nodes]
                       for d in DIRECTIONS}  # fmt: skip
            assert answers == {
                "out": [A, B, D],
                "in": [A, C, D, E],
                "both": [A, B, C, D, E],
            }
            for direction in DIRECTIONS:
                expected = world.expected().traversal(A, direction)
                assert await world.traverse(A, direction) == expected

        on_server(graph_server_factory, story)

    def test_types_keep_only_the_relationships_named(self, graph_server_factory: Any) -> None:
        async def story(world: GraphWorld) -> None:
            await world.nodes(A, B, C, D)
            await world.relate(A, B, "dependency")
            await world.relate(B, C, "lineage")
            await world.relate(A, D, "lineage")
            lineage = await world.traverse(A, types=["lineage"])
            assert [r.identity for r in lineage.nodes] == [A, D]
            both = await world.traverse(A, types=["lineage", "dependency"])
            assert [r.identity for r in both.nodes] == [A, B, D, C]
            assert [r.identity for r in (await world.traverse(A, types=[])).nodes] == [A]
            assert await world.path(A, C, types=["dependency"]) is None
            path = await world.path(A, C, types=["dependency", "lineage"])
            assert path is not None and path.nodes == (A, B, C)
            sub = await world.subgraph(A, types=["lineage"])
            assert (sub.nodes, [e.relationship_type for e in sub.edges]) == ([A, D], ["lineage"])

        on_server(graph_server_factory, story)

    def test_max_depth_stops_the_walk_without_truncating(self, graph_server_factory: Any) -> None:
        async def story(world: GraphWorld) -> None:
            await world.nodes(A, B, C, D, E)
            for source, target in ((A, B), (B, C), (C, D), (D, E)):
                await world.relate(source, target)
            for depth, reached in ((0, [A]), (1, [A, B]), (2, [A, B, C]), (9, [A, B, C, D, E])):
                found = await world.traverse(A, max_depth=depth)
                assert [r.identity for r in found.nodes] == reached
                assert found.truncated is False
            assert await world.path(A, E, max_depth=3) is None
            assert await world.path(A, E, max_depth=3, weighted=True) is None
            found_path = await world.path(A, E, max_depth=4)
            assert found_path is not None and len(found_path.edges) == 4

        on_server(graph_server_factory, story)

    def test_a_limit_keeps_whole_shallower_levels_first_and_truncates(
        self, graph_server_factory: Any
    ) -> None:
        async def story(world: GraphWorld) -> None:
            await world.nodes(A, B, C, D, E, F)
            # B and C sort before E and F but are a level deeper.
            for source, target in ((A, E), (A, F), (E, B), (F, C), (A, D)):
                await world.relate(source, target)
            every = [A, D, E, F, B, C]
            for limit in range(1, 8):
                found = await world.traverse(A, limit=limit)
                assert [r.identity for r in found.nodes] == every[:limit]
                assert found.truncated is (limit < len(every))
                assert found.nodes == world.expected().traversal(A, "out", limit=limit).nodes

        on_server(graph_server_factory, story)

    def test_a_node_budget_returns_a_prefix_of_the_answer_and_truncates(
        self, graph_server_factory: Any
    ) -> None:
        leaves = [node("A") - 1000 * i for i in range(1, 13)]
        grandchildren = [node("L") + 1000 * i for i in range(1, 13)]

        async def story(world: GraphWorld) -> None:
            await world.nodes(A, *leaves, *grandchildren)
            for leaf, grandchild in zip(leaves, grandchildren, strict=True):
                await world.relate(A, leaf)
                await world.relate(leaf, grandchild, "sibling", bidirectional=True)
            for direction in ("out", "both"):
                full = await world.traverse(A, direction)
                assert len(full.nodes) == 25 and full.truncated is False
                assert full == world.expected().traversal(A, direction)
                for budget in (1, 2, 3, 7, 12, 13, 14, 20, 24, 25, 26, 40, 80):
                    cut = await world.traverse(A, direction, node_budget=budget)
                    assert cut.nodes == full.nodes[: len(cut.nodes)], f"budget {budget}"
                    assert len(cut.nodes) <= budget
                    if len(cut.nodes) < len(full.nodes):
                        assert cut.truncated, f"budget {budget}"
                # An engine may count its budget as it likes, but a generous one is no limit.
                assert await world.traverse(A, direction, node_budget=10_000) == full
                only_start = await world.traverse(A, direction, node_budget=1)
                assert [r.identity for r in only_start.nodes] == [A] and only_start.truncated
                both_bounds = await world.traverse(A, direction, node_budget=1000, limit=5)
                assert both_bounds.nodes == full.nodes[:5] and both_bounds.truncated

        on_server(graph_server_factory, story)

    # -- deletions and later writes ---------------------------------------------------------
    def test_a_deleted_relationship_is_no_longer_followed(self, graph_server_factory: Any) -> None:
        async def story(world: GraphWorld) -> None:
            await world.nodes(A, B, C)
            first = await world.relate(A, B)
            await world.relate(B, C)
            assert [r.identity for r in (await world.traverse(A)).nodes] == [A, B, C]
            await world.unrelate(first)
            assert [r.identity for r in (await world.traverse(A)).nodes] == [A]
            assert await world.path(A, C) is None
            assert await world.path(A, C, weighted=True) is None
            sub = await world.subgraph(B)
            assert sub.nodes == [B, C] and [(e.source, e.target) for e in sub.edges] == [(B, C)]
            await world.relate(A, B, "lineage")
            path = await world.path(A, C)
            assert path is not None and [e.relationship_type for e in path.edges] == [
                "lineage", "dependency",
            ]  # fmt: skip

        on_server(graph_server_factory, story)

    def test_a_deleted_substrate_takes_its_relationships_out_of_every_answer(
        self, graph_server_factory: Any
    ) -> None:
        async def story(world: GraphWorld) -> None:
            await world.nodes(A, B, C, D)
            await world.relate(A, B)
            await world.relate(B, C, "sibling", bidirectional=True)
            await world.relate(A, D, weight=5)
            await world.relate(D, C, weight=5)
            path = await world.path(A, C, weighted=True)
            assert path is not None and path.nodes == (A, B, C)
            await world.delete_node(B)
            assert [r.identity for r in (await world.traverse(A)).nodes] == [A, D, C]
            assert [r.identity for r in (await world.traverse(C, "both")).nodes] == [C, D, A]
            path = await world.path(A, C, weighted=True)
            assert path is not None and (path.nodes, path.total_weight) == ((A, D, C), 10.0)
            sub = await world.subgraph(A)
            assert sub.nodes == [A, D, C]
            assert all(B not in (e.source, e.target) for e in sub.edges) and len(sub.edges) == 2

        on_server(graph_server_factory, story)

    def test_relationships_made_after_a_query_are_in_the_next_answer(
        self, graph_server_factory: Any
    ) -> None:
        async def story(world: GraphWorld) -> None:
            await world.nodes(A, B, C, D, tenant=TENANT)
            await world.relate(A, B)
            assert [r.identity for r in (await world.traverse(A)).nodes] == [A, B]
            await world.relate(B, C)
            await world.relate(D, A, bidirectional=True)
            assert [r.identity for r in (await world.traverse(A)).nodes] == [A, B, D, C]
            path = await world.path(D, C)
            assert path is not None and path.nodes == (D, A, B, C)
            assert path.edges[0].metadata == {"story": "graph"}

        on_server(graph_server_factory, story)

    # -- paths ------------------------------------------------------------------------------
    def test_the_fewest_hops_and_the_least_weight_can_be_different_paths(
        self, graph_server_factory: Any
    ) -> None:
        async def story(world: GraphWorld) -> None:
            await world.nodes(A, B, C, D)
            await world.relate(A, B, weight=10)
            await world.relate(A, C, weight=1)
            await world.relate(C, D, weight=1)
            await world.relate(D, B, weight=1.5)
            hops = await world.path(A, B)
            assert hops is not None and (hops.nodes, hops.total_weight) == ((A, B), 10.0)
            light = await world.path(A, B, weighted=True)
            assert light is not None and (light.nodes, light.total_weight) == ((A, C, D, B), 3.5)
            # The lightest path has three steps; within two, the heavy one is the answer.
            short = await world.path(A, B, weighted=True, max_depth=2)
            assert short is not None and (short.nodes, short.total_weight) == ((A, B), 10.0)
            for weighted in (False, True):
                for depth in (1, 2, 3):
                    found = await world.path(A, B, weighted=weighted, max_depth=depth)
                    expected = world.expected().path(
                        A, B, "out", weighted=weighted, max_depth=depth
                    )
                    assert same_path(found) == same_path(expected)

        on_server(graph_server_factory, story)

    def test_a_relationship_without_a_weight_weighs_one(self, graph_server_factory: Any) -> None:
        async def story(world: GraphWorld) -> None:
            await world.nodes(A, B, C)
            await world.relate(A, B)
            await world.relate(B, C)
            await world.relate(A, C, weight=2.5)
            light = await world.path(A, C, weighted=True)
            assert light is not None and (light.nodes, light.total_weight) == ((A, B, C), 2.0)
            hops = await world.path(A, C)
            assert hops is not None and (hops.nodes, hops.total_weight) == ((A, C), 2.5)

        on_server(graph_server_factory, story)

    def test_without_a_path_the_answer_is_none(self, graph_server_factory: Any) -> None:
        async def story(world: GraphWorld) -> None:
            await world.nodes(A, B, C, D)
            await world.relate(A, B)
            await world.relate(B, C)
            for weighted in (False, True):
                assert await world.path(A, D, weighted=weighted) is None
                assert await world.path(C, A, weighted=weighted) is None  # against the arrows
                back = await world.path(C, A, "in", weighted=weighted)
                assert back is not None and back.nodes == (C, B, A)
                either = await world.path(C, A, "both", weighted=weighted)
                assert either is not None and either.nodes == (C, B, A)
                assert await world.path(A, C, weighted=weighted, node_budget=1) is None

        on_server(graph_server_factory, story)

    def test_a_path_from_a_node_to_itself_is_that_node_alone(
        self, graph_server_factory: Any
    ) -> None:
        async def story(world: GraphWorld) -> None:
            await world.nodes(A, B)
            await world.relate(A, B)
            await world.relate(A, A, "recursion", weight=3)
            for weighted in (False, True):
                for subject in (A, B):
                    found = await world.path(subject, subject, weighted=weighted)
                    assert found == GraphPath((subject,), (), 0.0)

        on_server(graph_server_factory, story)

    def test_path_edges_are_the_stored_relationships_joining_each_pair_of_nodes(
        self, graph_server_factory: Any
    ) -> None:
        async def story(world: GraphWorld) -> None:
            await world.nodes(A, B, C, H)
            against = await world.relate(B, A, "sibling", bidirectional=True, weight=0.5)
            await world.relate(B, H, weight=2)
            await world.relate(H, C, "lineage")
            for weighted in (False, True):
                found = await world.path(A, C, weighted=weighted)
                assert found is not None and found.nodes == (A, B, H, C)
                assert found.edges[0] == against  # followed against its direction
                for edge, here, there in zip(
                    found.edges, found.nodes, found.nodes[1:], strict=False
                ):
                    assert {edge.source, edge.target} == {here, there}
                    assert await world.ctx.store.get_relationship(TENANT, edge.identity) == edge
                assert found.total_weight == 3.5

        on_server(graph_server_factory, story)

    # -- ties ---------------------------------------------------------------------------------
    def test_ties_go_to_the_path_whose_identities_sort_first(
        self, graph_server_factory: Any
    ) -> None:
        async def story(world: GraphWorld) -> None:
            await world.nodes(A, B, C, D, H)
            # Two shortest routes to H: A-C-H and A-B-D-H is longer; A-B-H ties A-C-H.
            for source, target in ((A, C), (C, H), (A, B), (B, H), (B, D), (D, H)):
                await world.relate(source, target)
            reached = {r.identity: r.path for r in (await world.traverse(A)).nodes}
            assert reached[H] == (A, B, H)
            hops = await world.path(A, H)
            assert hops is not None and hops.nodes == (A, B, H)
            light = await world.path(A, H, weighted=True)
            assert light is not None and light.nodes == (A, B, H)
            back = await world.path(H, A, "in")
            assert back is not None and back.nodes == (H, B, A)

        on_server(graph_server_factory, story)

    def test_of_parallel_relationships_a_path_takes_the_lightest_then_the_smallest_identity(
        self, graph_server_factory: Any
    ) -> None:
        async def story(world: GraphWorld) -> None:
            await world.nodes(A, B)
            await world.relate(A, B, "dependency", weight=2)
            light = await world.relate(A, B, "sibling", weight=1)
            for weighted in (False, True):
                found = await world.path(A, B, weighted=weighted)
                assert found is not None and found.edges == (light,)
            same = [await world.relate(A, B, kind, weight=1) for kind in ("lineage", "boundary")]
            first = min([light, *same], key=lambda r: r.identity)
            for weighted in (False, True):
                found = await world.path(A, B, weighted=weighted)
                assert found is not None and found.edges == (first,)
                assert found.total_weight == 1.0

        on_server(graph_server_factory, story)

    # -- subgraphs ----------------------------------------------------------------------------
    def test_a_subgraph_holds_the_relationships_among_its_nodes_only(
        self, graph_server_factory: Any
    ) -> None:
        async def story(world: GraphWorld) -> None:
            await world.nodes(A, B, C, D, E)
            ab = await world.relate(A, B)
            bc = await world.relate(B, C)
            ea = await world.relate(E, A, "lineage")
            cd = await world.relate(C, D)
            ca = await world.relate(C, A, "cycle")

            def ids(edges: list[Relationship]) -> list[int]:
                return [edge.identity for edge in edges]

            near = await world.subgraph(A, depth=1)
            assert near.nodes == [A, B, C, E]
            assert ids(near.edges) == sorted(ids([ab, bc, ea, ca])) and not near.truncated
            everything = await world.subgraph(A, depth=2)
            assert everything.nodes == [A, B, C, E, D]
            assert ids(everything.edges) == sorted(ids([ab, bc, ea, cd, ca]))
            cut = await world.subgraph(A, depth=2, max_nodes=3)
            assert cut.nodes == [A, B, C] and cut.truncated
            assert ids(cut.edges) == sorted(ids([ab, bc, ca]))
            alone = await world.subgraph(A, depth=0)
            assert (alone.nodes, alone.edges, alone.truncated) == ([A], [], False)

        on_server(graph_server_factory, story)

    # -- tenants and identities ---------------------------------------------------------------
    def test_tenants_never_see_each_others_relationships(self, graph_server_factory: Any) -> None:
        async def story(world: GraphWorld) -> None:
            await world.nodes(A, B, C)
            await world.nodes(A, B, C, tenant=OTHER_TENANT)
            await world.relate(A, B)
            await world.relate(A, C, tenant=OTHER_TENANT)
            ours = await world.traverse(A)
            theirs = await world.traverse(A, tenant=OTHER_TENANT)
            assert [r.identity for r in ours.nodes] == [A, B]
            assert [r.identity for r in theirs.nodes] == [A, C]
            assert await world.path(A, C) is None
            assert await world.path(A, B, tenant=OTHER_TENANT) is None
            sub = await world.subgraph(A, tenant=OTHER_TENANT)
            assert sub.nodes == [A, C] and [(e.source, e.target) for e in sub.edges] == [(A, C)]
            assert [r.identity for r in (await world.traverse(A, tenant="initech")).nodes] == [A]

        on_server(graph_server_factory, story)

    def test_identities_at_both_ends_of_64_bits_walk_and_sort_right(
        self, graph_server_factory: Any
    ) -> None:
        smallest, below, above, largest = 0, 2**63 - 1, 2**63, 2**64 - 1

        async def story(world: GraphWorld) -> None:
            await world.nodes(smallest, below, above, largest)
            await world.relate(largest, smallest)
            await world.relate(largest, above)
            await world.relate(above, below, bidirectional=True)
            found = await world.traverse(largest)
            assert [(r.identity, r.depth) for r in found.nodes] == [
                (largest, 0), (smallest, 1), (above, 1), (below, 2),
            ]  # fmt: skip
            path = await world.path(largest, below, weighted=True)
            assert path is not None and path.nodes == (largest, above, below)
            back = await world.path(below, largest, "in")
            assert back is not None and back.nodes == (below, above, largest)

        on_server(graph_server_factory, story)

    # -- determinism --------------------------------------------------------------------------
    def test_random_graphs_get_the_answers_an_exhaustive_search_gives(
        self, graph_server_factory: Any
    ) -> None:
        names = [node(letter) for letter in "ABCDEFGHI"]

        async def story(world: GraphWorld) -> None:
            for seed in range(3):
                tenant = f"random-{seed}"
                chance = random.Random(seed)
                await world.nodes(*names, tenant=tenant)
                for _ in range(18):
                    source, target = chance.choice(names), chance.choice(names)
                    kind = (
                        "recursion"
                        if source == target
                        else chance.choice(["dependency", "sibling", "lineage"])
                    )
                    await world.relate(
                        source, target, kind, tenant=tenant,
                        bidirectional=chance.random() < 0.3,
                        weight=chance.choice([None, 0.5, 1.0, 2.0, 3.0]),
                    )  # fmt: skip
                await world.delete_node(chance.choice(names), tenant=tenant)
                expected = world.expected(tenant)
                for direction in DIRECTIONS:
                    types = None if seed != 1 else ["sibling", "lineage", "recursion"]
                    for start in names:
                        for depth in (2, 4):
                            answer = await world.traverse(
                                start, direction, max_depth=depth, types=types, tenant=tenant
                            )
                            assert answer == expected.traversal(
                                start, direction, max_depth=depth, types=types
                            ), (seed, direction, start, depth)
                        for target in names:
                            for weighted in (False, True):
                                found = await world.path(
                                    start, target, direction, weighted=weighted, max_depth=3,
                                    types=types, tenant=tenant,
                                )  # fmt: skip
                                wanted = expected.path(
                                    start, target, direction, weighted=weighted, max_depth=3,
                                    types=types,
                                )  # fmt: skip
                                if wanted is None:
                                    assert found is None, (seed, direction, start, target)
                                else:
                                    assert same_path(found) == same_path(wanted), (
                                        seed, direction, start, target, weighted,
                                    )  # fmt: skip

        on_server(graph_server_factory, story)

    def test_the_same_question_gets_the_same_answer(self, graph_server_factory: Any) -> None:
        async def story(world: GraphWorld) -> None:
            await world.nodes(A, B, C, D, E, F)
            for source, target in ((A, B), (A, C), (B, D), (C, D), (D, E), (E, A), (C, F)):
                await world.relate(source, target, weight=1)
            first = (
                await world.traverse(A, "both"),
                await world.path(A, E),
                await world.path(A, E, weighted=True),
                await world.subgraph(A, depth=2),
            )
            for _ in range(3):
                again = (
                    await world.traverse(A, "both"),
                    await world.path(A, E),
                    await world.path(A, E, weighted=True),
                    await world.subgraph(A, depth=2),
                )
                assert again == first

        on_server(graph_server_factory, story)
