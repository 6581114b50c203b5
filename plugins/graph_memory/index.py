"""One tenant's relationships as adjacency dicts, for walks in any direction."""

from __future__ import annotations

from collections.abc import Collection, Iterator

from butterflyfx.core.graph import GraphDirection
from butterflyfx.core.graph_search import Step, weight_of
from butterflyfx.kernel import Relationship

Adjacency = dict[int, dict[int, int]]  # node -> {relationship identity: the node it leads to}


class TenantIndex:
    """Every relationship of one tenant, and for each node the relationships a walk
    ``out`` and ``in`` follows from it (a bidirectional one both ways)."""

    def __init__(self) -> None:
        self.relationships: dict[int, Relationship] = {}
        self._out: Adjacency = {}
        self._in: Adjacency = {}

    def __len__(self) -> int:
        return len(self.relationships)

    # -- keeping it current -----------------------------------------------------------------
    def add(self, relationship: Relationship) -> None:
        identity = relationship.identity
        if identity in self.relationships:
            self.remove(identity)
        self.relationships[identity] = relationship
        source, target = relationship.source, relationship.target
        self._out.setdefault(source, {})[identity] = target
        self._in.setdefault(target, {})[identity] = source
        if relationship.bidirectional:
            self._out.setdefault(target, {})[identity] = source
            self._in.setdefault(source, {})[identity] = target

    def remove(self, identity: int) -> None:
        relationship = self.relationships.pop(identity, None)
        if relationship is None:
            return
        for adjacency in (self._out, self._in):
            for end in (relationship.source, relationship.target):
                near = adjacency.get(end)
                if near is not None:
                    near.pop(identity, None)
                    if not near:
                        del adjacency[end]

    def remove_node(self, node: int) -> None:
        """Forget every relationship of a deleted substrate."""
        for identity in [*self._out.get(node, {}), *self._in.get(node, {})]:
            self.remove(identity)

    # -- walking ------------------------------------------------------------------------------
    def _followed(self, node: int, direction: GraphDirection) -> dict[int, int]:
        if direction == "out":
            return self._out.get(node, {})
        if direction == "in":
            return self._in.get(node, {})
        return {**self._out.get(node, {}), **self._in.get(node, {})}

    def _kept(
        self, node: int, direction: GraphDirection, types: Collection[str] | None
    ) -> Iterator[tuple[int, int]]:
        for identity, far in self._followed(node, direction).items():
            if types is None or self.relationships[identity].relationship_type in types:
                yield identity, far

    def neighbours(
        self, node: int, direction: GraphDirection, types: Collection[str] | None
    ) -> list[int]:
        """The nodes one step from ``node`` in ``direction``."""
        return [far for _, far in self._kept(node, direction, types)]

    def steps(
        self, node: int, direction: GraphDirection, types: Collection[str] | None
    ) -> list[Step]:
        return [
            Step(far, identity, weight_of(self.relationships[identity].weight))
            for identity, far in self._kept(node, direction, types)
        ]

    def among(self, nodes: Collection[int], types: Collection[str] | None) -> list[Relationship]:
        """The relationships (of ``types``) whose two ends are both in ``nodes``, by identity."""
        found = {
            identity
            for node in nodes
            for identity, far in self._kept(node, "out", types)
            if far in nodes
        }
        return [self.relationships[identity] for identity in sorted(found)]
