"""Searches every graph engine shares: pure algorithms over neighbour look-ups, no I/O.

``graph.sql`` finds neighbours with SQL and ``graph.memory`` in a dict, but both answer
with these functions, so the tie-breaking rules of :mod:`butterflyfx.core.graph` come out
the same in both, float for float:

- a traversal gives each node the first of its shortest paths in the order of node
  identities (:func:`breadth_first`, :func:`paths_by_rank`);
- a path by hops is the first shortest one in that order (:func:`walk_down`);
- a weighted path is the lightest, then the first in that order (:func:`lightest_path`);
- of several relationships joining two consecutive nodes, a path takes the lightest, then
  the one with the smallest identity (:func:`best_step`).

A relationship without a weight weighs 1. A negative weight (which the relationship
service refuses) counts as 0, so Dijkstra stays exact whatever a store holds.
"""

from __future__ import annotations

import heapq
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from .graph import GraphDirection, Reached, Traversal

REVERSED: Mapping[GraphDirection, GraphDirection] = {"out": "in", "in": "out", "both": "both"}
# Nodes whose steps lightest_path asks for at once, and how far into its heap it looks for
# them: a database answers 64 nodes in about the time it answers one.
PREFETCH = 64


@dataclass(frozen=True, slots=True)
class Step:
    """Following one relationship from a node: to ``node``, by the relationship whose
    identity is ``relationship``, for ``weight``."""

    node: int
    relationship: int
    weight: float


# Steps from each of the given nodes, in the direction and of the types a search follows.
StepsOf = Callable[[Sequence[int]], Awaitable[Mapping[int, Sequence[Step]]]]
FoundPath = tuple[tuple[int, ...], tuple[Step, ...]]


def weight_of(weight: float | None) -> float:
    """What a relationship weighs in a search: its weight, 1 without one, never below 0."""
    return 1.0 if weight is None else max(0.0, float(weight))


def ways(
    source: int, target: int, bidirectional: bool, direction: GraphDirection
) -> list[tuple[int, int]]:
    """The (from, to) pairs along which a search in ``direction`` follows a relationship."""
    forward, backward = (source, target), (target, source)
    if direction == "both" or bidirectional:
        return [forward, backward]
    return [forward] if direction == "out" else [backward]


def best_step(steps: Iterable[Step], node: int) -> Step | None:
    """Of the steps to ``node``, the lightest, then the one by the smallest identity."""
    return min(
        (step for step in steps if step.node == node),
        key=lambda step: (step.weight, step.relationship),
        default=None,
    )


def path_weight(steps: Iterable[Step]) -> float:
    """The weights added up from the first step on (the order Dijkstra adds them in)."""
    total = 0.0
    for step in steps:
        total += step.weight
    return total


def first_by_depth(depths: Mapping[int, int], limit: int) -> list[tuple[int, int]]:
    """The first ``limit`` (node, depth) pairs by depth, then identity."""
    ordered = heapq.nsmallest(max(limit, 0), ((depth, node) for node, depth in depths.items()))
    return [(node, depth) for depth, node in ordered]


# -- traversals -----------------------------------------------------------------------------


def breadth_first(
    start: int,
    neighbours: Callable[[int], Iterable[int]],
    *,
    max_depth: int,
    limit: int,
    node_budget: int,
) -> Traversal:
    """A traversal over ``neighbours`` (the nodes one step away, in the traversal's
    direction), as :class:`~butterflyfx.core.graph.GraphEngine.traverse` answers it.

    Each level is expanded in the order of its nodes' paths, so the first node to reach
    a new one is the parent on its first shortest path. ``node_budget`` counts the nodes
    found, the start included: a level that would go past it is left out whole, so what
    is returned is always a prefix of the full answer.
    """
    paths: dict[int, tuple[int, ...]] = {start: (start,)}
    levels: list[list[int]] = [[start]]  # each in the order of its nodes' paths
    total, truncated = 1, False
    while len(levels) - 1 < max_depth:
        level = levels[-1]
        if total >= limit:
            truncated = total > limit or any(
                node not in paths for parent in level for node in neighbours(parent)
            )
            break
        found: list[int] = []
        for parent in level:
            new = sorted({node for node in neighbours(parent) if node not in paths})
            for node in new:
                paths[node] = paths[parent] + (node,)
            found.extend(new)
            if total + len(found) > node_budget:
                truncated = True
                break
        if truncated or not found:
            break
        levels.append(found)
        total += len(found)
    reached = [
        Reached(node, depth, paths[node])
        for depth, level in enumerate(levels)
        for node in sorted(level)
    ]
    return Traversal(reached[:limit], truncated)


def paths_by_rank(
    start: int,
    chosen: Sequence[tuple[int, int]],
    predecessors: Mapping[int, Iterable[int]],
) -> list[Reached]:
    """``chosen`` (node, depth) pairs with the first shortest path to each.

    ``chosen`` holds the start at depth 0 and whole levels, except perhaps the deepest;
    ``predecessors[node]`` are nodes one step before it in the traversal's direction, at
    any depth. A node none of whose predecessors is one level up (a relationship deleted
    between an engine's two reads) is left out, and so are the nodes only it led to: every
    path returned is made of real steps.
    """
    by_depth: dict[int, list[int]] = {}
    for node, depth in chosen:
        if depth > 0:
            by_depth.setdefault(depth, []).append(node)
    paths: dict[int, tuple[int, ...]] = {start: (start,)}
    rank: dict[int, int] = {start: 0}  # a node's place in its level, in path order
    previous = [start]
    depth = 0
    while previous and by_depth.get(depth + 1):
        depth += 1
        placed: list[tuple[int, int]] = []
        for node in by_depth[depth]:
            ranks = [rank[parent] for parent in predecessors.get(node, ()) if parent in rank]
            if ranks:
                placed.append((min(ranks), node))
        placed.sort()
        for parent_rank, node in placed:
            paths[node] = paths[previous[parent_rank]] + (node,)
        previous = [node for _, node in placed]
        rank = {node: place for place, node in enumerate(previous)}
    return sorted(
        (Reached(node, len(paths[node]) - 1, paths[node]) for node in paths),
        key=lambda reached: (reached.depth, reached.identity),
    )


# -- paths ----------------------------------------------------------------------------------


def distances_to(
    target: int,
    source: int,
    neighbours_back: Callable[[int], Iterable[int]],
    *,
    max_depth: int,
    node_budget: int,
) -> dict[int, int] | None:
    """Hops to ``target`` from every node nearer to it than ``source`` is, and from
    ``source``; None when ``source`` is not within ``max_depth`` or when the nodes found
    before reaching it (the target included) go past ``node_budget``.

    ``neighbours_back(node)`` are the nodes one step *before* ``node``."""
    distance = {target: 0}
    level = [target]
    for depth in range(1, max_depth + 1):
        if len(distance) > node_budget:
            return None
        found: list[int] = []
        for node in level:
            for before in neighbours_back(node):
                if before not in distance:
                    distance[before] = depth
                    found.append(before)
        if source in distance:
            return distance
        if not found:
            return None
        level = found
    return None


async def walk_down(
    source: int, distance: Mapping[int, int], steps_of: StepsOf
) -> FoundPath | None:
    """The first shortest path, in the order of node identities, from ``source`` down
    ``distance`` (hops to the target, exact for every node nearer than ``source``).

    Going to the smallest next node that is one hop nearer at each step gives exactly
    that path. None when a step is missing (a relationship deleted meanwhile)."""
    nodes, taken = [source], []
    node = source
    for remaining in range(distance[source] - 1, -1, -1):
        onward = [
            step
            for step in (await steps_of([node])).get(node, ())
            if distance.get(step.node) == remaining
        ]
        if not onward:
            return None
        step = best_step(onward, min(step.node for step in onward))
        assert step is not None
        nodes.append(step.node)
        taken.append(step)
        node = step.node
    return tuple(nodes), tuple(taken)


async def lightest_path(
    source: int,
    target: int,
    steps_of: StepsOf,
    *,
    max_depth: int,
    node_budget: int,
    prefetch: int = PREFETCH,
) -> FoundPath | None:
    """The lightest path of at most ``max_depth`` steps, then the first in identity
    order; None when there is none, or when more than ``node_budget`` expansions were
    made without settling the target.

    Dijkstra over labels (weight, nodes, relationships): a label is expanded unless its
    node was already expanded with as few hops, since that earlier label weighs no more
    and comes first in order; so a lighter path with too many hops never hides a heavier
    one that fits in ``max_depth``. Each node is expanded at most ``max_depth + 1`` times.
    ``steps_of`` is asked for up to ``prefetch`` nodes at once, taken from the heap.
    """
    if source == target:
        return (source,), ()
    heap: list[tuple[float, tuple[int, ...], tuple[int, ...]]] = [(0.0, (source,), ())]
    fewest_hops: dict[int, int] = {}
    known: dict[int, Sequence[Step]] = {}
    # Every step pushed, by (relationship, end): a bidirectional relationship is a step
    # to either of its ends.
    chosen: dict[tuple[int, int], Step] = {}
    expansions = 0
    while heap:
        weight, nodes, relationships = heapq.heappop(heap)
        node, hops = nodes[-1], len(nodes) - 1
        if fewest_hops.get(node, hops + 1) <= hops:
            continue
        if node == target:
            return nodes, tuple(chosen[pair] for pair in zip(relationships, nodes[1:], strict=True))
        fewest_hops[node] = hops
        if hops >= max_depth:
            continue
        expansions += 1
        if expansions > node_budget:
            return None
        if node not in known:
            wanted = [node]
            for entry in heap[: 4 * prefetch]:
                if len(wanted) >= prefetch:
                    break
                candidate = entry[1][-1]
                if candidate not in known and candidate not in wanted:
                    wanted.append(candidate)
            found = await steps_of(wanted)
            for asked in wanted:
                known[asked] = found.get(asked, ())
        for step in known[node]:
            if fewest_hops.get(step.node, hops + 2) <= hops + 1:
                continue
            chosen.setdefault((step.relationship, step.node), step)
            heapq.heappush(
                heap,
                (weight + step.weight, nodes + (step.node,), relationships + (step.relationship,)),
            )
    return None
