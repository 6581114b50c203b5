"""The graph contract: what a graph engine answers about a tenant's relationships.

A graph engine is made by a ``butterflyfx_graph_engine`` hook (rule: first non-None) once
the store is open, and reads the relationships the store keeps. ``graph.sql`` runs
recursive SQL in the store's own database; ``graph.memory`` keeps an adjacency index in
the process. ``butterflyfx.testing.graph`` holds the conformance suite both pass.

Semantics every engine keeps:

- **Following an edge.** ``out`` follows a relationship from its source to its target, and
  a bidirectional one both ways; ``in`` is the reverse; ``both`` ignores direction.
  ``types`` (normalised names), when given, keeps only relationships of those types; an
  empty ``types`` follows nothing (the start alone is reached). ``None`` follows every type.
- **Breadth first.** Each node reached is reported once, at its smallest depth, with one
  shortest path (node identities from the start to it, both included). The start itself
  is the first result, at depth 0. Results are ordered by depth, then identity; cycles
  end because a node is never visited twice.
- **Budgets.** ``limit`` bounds the nodes returned; ``node_budget`` bounds the work an
  engine may do while answering (nodes visited, or rows for an engine that walks rows:
  see its docstring). Hitting either sets ``truncated`` (the first ``limit`` nodes are
  still exact: every node at a smaller depth comes before them). ``subgraph`` takes no
  budget from its caller: an engine bounds it with the budget it was made with (the
  built-in ones get ``server.graph_node_budget``).
- **Paths.** By hops (breadth first) or, with ``weighted``, by the least total weight
  (Dijkstra; a relationship without a weight weighs 1). Weights are never negative: the
  relationship service refuses them, so engines may assume it. Ties are broken towards
  the path whose node identities sort first, so answers are deterministic across
  engines; of several relationships joining two consecutive nodes a path takes the
  lightest, then the one with the smallest identity. ``total_weight`` is the sum of the
  path's edge weights (a missing weight counted as 1) for hop paths too.

The functions in :mod:`butterflyfx.core.graph_search` implement these rules over any
source of steps; an engine that uses them breaks ties exactly like the built-in ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from butterflyfx.kernel import Relationship

GraphDirection = Literal["out", "in", "both"]


@dataclass(frozen=True)
class Reached:
    """A node a traversal reached: its identity, its depth, one shortest path to it."""

    identity: int
    depth: int
    path: tuple[int, ...]


@dataclass(frozen=True)
class Traversal:
    nodes: list[Reached]
    truncated: bool


@dataclass(frozen=True)
class GraphPath:
    """A path from ``nodes[0]`` to ``nodes[-1]``: ``edges[i]`` joins ``nodes[i]`` and
    ``nodes[i + 1]`` (possibly against its direction, if it is bidirectional)."""

    nodes: tuple[int, ...]
    edges: tuple[Relationship, ...]
    total_weight: float


@dataclass(frozen=True)
class Subgraph:
    """The nodes within ``depth`` of a root (either direction) and every relationship
    (of the chosen types) whose two ends are both among them."""

    nodes: list[int]
    edges: list[Relationship]
    truncated: bool


@runtime_checkable
class GraphEngine(Protocol):
    """Answers graph questions about one tenant's relationships at a time."""

    name: str

    async def open(self) -> None:
        """Build indexes or check the database; called once after the store opens."""

    async def close(self) -> None:
        """Release what open took."""

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
        """Breadth first from ``start`` (which must exist) to ``max_depth``."""
        ...

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
        """The shortest path of at most ``max_depth`` edges, or None when there is none
        within the depth and the budget. From a node to itself: one node, no edges."""
        ...

    async def subgraph(
        self,
        tenant: str,
        root: int,
        *,
        depth: int,
        types: Sequence[str] | None,
        max_nodes: int,
    ) -> Subgraph:
        """The neighbourhood of ``root`` (``both`` directions), at most ``max_nodes`` nodes
        taken breadth first; ``truncated`` when more were within ``depth``."""
        ...
