"""The SQL graph engine: recursive SQL next to the data, through the ``SqlDatabase`` protocol.

A traversal is one ``WITH RECURSIVE`` walk whose rows carry the node each node was
reached from, so paths need no second statement; a path by hops is met in the middle by
two walks (one from each end, to half the depth each) and then followed down; a weighted
path is Dijkstra in Python over batches of neighbours (up to 64 nodes per statement).
What comes back is shaped by :mod:`butterflyfx.core.graph_search`, which ``graph.memory``
shares, so both engines break ties alike.

**The node budget is a row budget here**, for each walk. A walk visits a node once per
depth (and parent) it is reached at, and every visit is a row the database makes, so
``node_budget`` bounds those rows. A walk starts with a row limit (4 x (limit + 1) for a
traversal, 1,024 otherwise) and, when the answer is not decided within it, runs again with
four times as many rows, up to the budget: one run for the common answer, and at most
about 4/3 of the budget in all for the largest. When the budget ends a walk, the levels it
finished are the answer (a prefix of the full one) and ``truncated`` is set, even when
nothing turned out to be missing. Dijkstra counts expansions against the budget instead.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from butterflyfx.core.graph import GraphDirection, GraphPath, Subgraph, Traversal
from butterflyfx.core.graph_search import (
    REVERSED,
    FoundPath,
    Step,
    first_by_depth,
    lightest_path,
    path_weight,
    paths_by_rank,
    walk_down,
    ways,
    weight_of,
)
from butterflyfx.core.relational import KEY_OFFSET
from butterflyfx.core.relational import identity_key as key_of
from butterflyfx.core.store import SqlDatabase
from butterflyfx.kernel import Relationship, parse_timestamp

from . import statements
from .statements import CHUNK

DIALECTS = ("sqlite", "postgresql")
FIRST_ROWS = 1024  # the row limit of a walk's first run (a traversal's: 4 x (limit + 1))


class SqlGraphError(Exception):
    """The database cannot serve ``graph.sql``; the message says why."""


def relationship_from_row(row: Sequence[Any]) -> tuple[int, Relationship]:
    """(identity, relationship) from ``identity_key`` and ``RELATIONSHIP_COLUMNS``, read as
    the SQL stores write them: metadata as JSON text, times as ISO 8601 text in UTC."""
    key, source, target, kind, bidirectional, weight, metadata, created_at = row
    relationship = Relationship(
        int(source) + KEY_OFFSET,
        int(target) + KEY_OFFSET,
        kind,
        bool(bidirectional),
        None if weight is None else float(weight),
        json.loads(metadata) if metadata else {},
        parse_timestamp(created_at),
    )
    return int(key) + KEY_OFFSET, relationship


def _chunks(items: Sequence[int]) -> list[Sequence[int]]:
    return [items[i : i + CHUNK] for i in range(0, len(items), CHUNK)]


class SqlGraph:
    """A :class:`~butterflyfx.core.graph.GraphEngine` over a store's SQL database.

    ``node_budget`` is the budget of subgraphs, whose callers give none. ``first_rows``,
    when given, is every walk's first row limit instead of the defaults (tests make it
    small so that walks must grow)."""

    name = "sql"

    def __init__(
        self, database: SqlDatabase, *, node_budget: int, first_rows: int | None = None
    ) -> None:
        self.database = database
        self.node_budget = node_budget  # for subgraphs, whose callers give none
        self.first_rows = first_rows

    async def open(self) -> None:
        """Check the dialect and that the relationships table answers."""
        dialect = getattr(self.database, "sql_dialect", None)
        if dialect not in DIALECTS:
            raise SqlGraphError(
                f"graph.sql speaks {' and '.join(DIALECTS)}, not the store's {dialect!r}"
            )
        try:
            await self.database.sql_fetch(statements.PROBE, ("", 0))
        except Exception as error:
            raise SqlGraphError(
                f"the store's database has no usable relationships table "
                f"({type(error).__name__}: {error}); is its schema up to date?"
            ) from error

    async def close(self) -> None:
        return None

    @property
    def dialect(self) -> str:
        return str(self.database.sql_dialect)

    # -- the contract ----------------------------------------------------------------------
    async def traverse(
        self,
        tenant: str,
        start: int,
        *,
        direction: GraphDirection,
        max_depth: int,
        types: Sequence[str] | None,
        limit: int,
        node_budget: int,
    ) -> Traversal:
        limit = max(limit, 1)
        predecessors: dict[int, list[int]] = {}
        depths, truncated = await self._reach(
            tenant, start, direction, max_depth, types, limit, node_budget, predecessors
        )
        chosen = first_by_depth(depths, limit)
        return Traversal(paths_by_rank(start, chosen, predecessors), truncated)

    async def shortest_path(
        self,
        tenant: str,
        source: int,
        target: int,
        *,
        weighted: bool,
        direction: GraphDirection,
        types: Sequence[str] | None,
        max_depth: int,
        node_budget: int,
    ) -> GraphPath | None:
        if source == target:
            return GraphPath((source,), (), 0.0)
        if max_depth < 1 or (types is not None and not types):
            return None

        async def steps_of(nodes: Sequence[int]) -> Mapping[int, Sequence[Step]]:
            return await self._steps(tenant, nodes, direction, types)

        if weighted:
            found = await lightest_path(
                source, target, steps_of, max_depth=max_depth, node_budget=max(node_budget, 1)
            )
        else:
            found = await self._fewest_hops(
                tenant, source, target, direction, max_depth, types, node_budget, steps_of
            )
        if found is None:
            return None
        nodes, taken = found
        edges = await self._relationships(tenant, [step.relationship for step in taken])
        if len(edges) != len(taken):
            return None  # a relationship on the path was deleted meanwhile
        return GraphPath(nodes, tuple(edges), path_weight(taken))

    async def subgraph(
        self,
        tenant: str,
        root: int,
        *,
        depth: int,
        types: Sequence[str] | None,
        max_nodes: int,
    ) -> Subgraph:
        max_nodes = max(max_nodes, 1)
        depths, truncated = await self._reach(
            tenant, root, "both", depth, types, max_nodes, self.node_budget
        )
        nodes = [node for node, _ in first_by_depth(depths, max_nodes)]
        included = set(nodes)
        keys = [key for node in nodes if (key := key_of(node)) is not None]
        kinds = self._kinds(types)
        edges: dict[int, Relationship] = {}
        if kinds != ():
            for chunk in _chunks(keys):
                rows = await self.database.sql_fetch(
                    statements.from_sources(len(chunk), None if kinds is None else len(kinds)),
                    [tenant, *chunk, *(kinds or ())],
                )
                for row in rows:
                    identity, relationship = relationship_from_row(row)
                    if relationship.target in included:
                        edges[identity] = relationship
        return Subgraph(nodes, [edges[i] for i in sorted(edges)], truncated)

    # -- walking ---------------------------------------------------------------------------
    @staticmethod
    def _kinds(types: Sequence[str] | None) -> tuple[str, ...] | None:
        return None if types is None else tuple(dict.fromkeys(types))

    async def _walk(
        self,
        tenant: str,
        start_key: int,
        direction: GraphDirection,
        max_depth: int,
        kinds: tuple[str, ...] | None,
        rows: int,
        predecessors: dict[int, list[int]] | None = None,
    ) -> tuple[dict[int, int], int, bool]:
        """One run of the recursive walk with at most ``rows`` rows: each node's smallest
        depth, the deepest depth seen, and whether the row limit cut the walk short (then
        only the levels above the deepest are whole). ``predecessors``, when given, is
        filled with the nodes each node was reached from (at any depth)."""
        parameters = [start_key, tenant, *(kinds or ()), tenant, *(kinds or ())]
        statement = statements.reach(
            direction, None if kinds is None else len(kinds), self.dialect,
            parents=predecessors is not None,
        )  # fmt: skip
        found = await self.database.sql_fetch(statement, [*parameters, max_depth, rows + 1])
        depths: dict[int, int] = {}
        deepest = 0
        if predecessors is not None:
            predecessors.clear()
        for row in found:
            node, depth = int(row[0]) + KEY_OFFSET, int(row[1])
            if depths.get(node, depth + 1) > depth:
                depths[node] = depth
            deepest = max(deepest, depth)
            if predecessors is not None and row[2] is not None:
                predecessors.setdefault(node, []).append(int(row[2]) + KEY_OFFSET)
        return depths, deepest, len(found) > rows

    async def _reach(
        self,
        tenant: str,
        start: int,
        direction: GraphDirection,
        max_depth: int,
        types: Sequence[str] | None,
        limit: int,
        node_budget: int,
        predecessors: dict[int, list[int]] | None = None,
    ) -> tuple[dict[int, int], bool]:
        """The smallest depth of every node in whole levels, enough of them for the first
        ``limit``, and whether any node within ``max_depth`` is left out (``predecessors``
        as in :meth:`_walk`)."""
        kinds = self._kinds(types)
        start_key = key_of(start)
        if start_key is None or max_depth < 1 or kinds == ():
            return {start: 0}, False
        budget = max(node_budget, 1)
        rows = min(budget, self.first_rows or max(FIRST_ROWS, 4 * (limit + 1)))
        while True:
            depths, deepest, cut = await self._walk(
                tenant, start_key, direction, max_depth, kinds, rows, predecessors
            )
            if not cut:
                return depths, len(depths) > limit
            whole = {node: depth for node, depth in depths.items() if depth < deepest}
            more = len(whole) < len(depths)  # a node first seen on the cut level
            if len(whole) > limit or (len(whole) == limit and more) or rows >= budget:
                return whole, True
            rows = min(budget, rows * 4)

    async def _levels(
        self,
        tenant: str,
        start: int,
        direction: GraphDirection,
        depth: int,
        kinds: tuple[str, ...] | None,
        budget: int,
    ) -> tuple[dict[int, int], int]:
        """The smallest depth of every node within ``depth``, and the depth up to which
        that is complete (less than ``depth`` when the row budget cut the walk)."""
        start_key = key_of(start)
        if start_key is None or depth < 1 or kinds == ():
            return {start: 0}, depth
        rows = min(budget, self.first_rows or FIRST_ROWS)
        while True:
            depths, deepest, cut = await self._walk(
                tenant, start_key, direction, depth, kinds, rows
            )
            if not cut:
                return depths, depth
            if rows >= budget:
                return {n: d for n, d in depths.items() if d < deepest}, deepest - 1
            rows = min(budget, rows * 4)

    async def _fewest_hops(
        self,
        tenant: str,
        source: int,
        target: int,
        direction: GraphDirection,
        max_depth: int,
        types: Sequence[str] | None,
        node_budget: int,
        steps_of: Callable[[Sequence[int]], Awaitable[Mapping[int, Sequence[Step]]]],
    ) -> FoundPath | None:
        """The first shortest path by hops, met in the middle: a walk from ``source`` to
        half the depth and one back from ``target`` to the other half find how many hops
        it takes (far fewer rows than one walk to the whole depth, above all when there
        is no path); then the walk back from ``target``, made as deep as the path if it
        was not, says which step of each node leads on, and ``walk_down`` takes them.
        Each walk has the whole row budget."""
        kinds, budget = self._kinds(types), max(node_budget, 1)
        backwards = REVERSED[direction]
        ahead = (max_depth + 1) // 2
        forward, _ = await self._levels(tenant, source, direction, ahead, kinds, budget)
        behind, known = await self._levels(
            tenant, target, backwards, max_depth - ahead, kinds, budget
        )
        meetings = [forward[node] + behind[node] for node in forward.keys() & behind.keys()]
        if not meetings:
            return None  # none within the depth (or within what the budget let us see)
        hops = min(meetings)
        if known < hops - 1:
            behind, known = await self._levels(tenant, target, backwards, hops - 1, kinds, budget)
            if known < hops - 1:
                return None
        distance = {node: depth for node, depth in behind.items() if depth < hops}
        distance[source] = hops
        return await walk_down(source, distance, steps_of)

    async def _steps(
        self,
        tenant: str,
        nodes: Sequence[int],
        direction: GraphDirection,
        types: Sequence[str] | None,
    ) -> dict[int, list[Step]]:
        """The steps a walk in ``direction`` takes from each of ``nodes``."""
        kinds = self._kinds(types)
        found: dict[int, list[Step]] = {node: [] for node in nodes}
        if kinds == ():
            return found
        keys = [key for node in nodes if (key := key_of(node)) is not None]
        for chunk in _chunks(keys):
            statement = statements.steps(
                direction, len(chunk), None if kinds is None else len(kinds)
            )
            parameters = [tenant, *chunk, *(kinds or ()), tenant, *chunk, *(kinds or ())]
            for key, source_key, target_key, bidirectional, weight in await self.database.sql_fetch(
                statement, parameters
            ):
                identity, cost = int(key) + KEY_OFFSET, weight_of(weight)
                source, target = int(source_key) + KEY_OFFSET, int(target_key) + KEY_OFFSET
                for near, far in ways(source, target, bool(bidirectional), direction):
                    if near in found:
                        found[near].append(Step(far, identity, cost))
        return found

    async def _relationships(self, tenant: str, identities: Sequence[int]) -> list[Relationship]:
        """The relationships with these identities, in that order (absent ones left out)."""
        keys = [key for identity in identities if (key := key_of(identity)) is not None]
        found: dict[int, Relationship] = {}
        for chunk in _chunks(list(dict.fromkeys(keys))):
            for row in await self.database.sql_fetch(
                statements.by_identity(len(chunk)), [tenant, *chunk]
            ):
                identity, relationship = relationship_from_row(row)
                found[identity] = relationship
        return [found[identity] for identity in identities if identity in found]
