"""The in-process graph engine: one adjacency index per tenant, loaded when first asked.

A tenant's index is read from the store (``all_relationships``, a page at a time) on its
first query, then kept current by the events this process hears: a relationship created
or deleted is read again from the store (events carry no metadata, and reading the
store's answer also puts right two events heard out of order), and a deleted substrate
takes its relationships with it. Events heard while a tenant loads are applied once its
pages are in, so a write racing the load is never lost.

Every query runs without awaiting anything once the index is there, so it sees one state.
Writes made by another process are never heard: the plugin refuses ``workers > 1``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from butterflyfx.core import events
from butterflyfx.core.graph import GraphDirection, GraphPath, Subgraph, Traversal
from butterflyfx.core.graph_search import (
    REVERSED,
    Step,
    breadth_first,
    distances_to,
    lightest_path,
    path_weight,
    walk_down,
)
from butterflyfx.core.store import SubstrateStore
from butterflyfx.kernel import Relationship

from .index import TenantIndex

PAGE = 5000  # relationships read per all_relationships call while loading


@dataclass(frozen=True)
class _Refresh:
    identity: int


@dataclass(frozen=True)
class _Forget:
    node: int


_Change = _Refresh | _Forget


class MemoryGraph:
    """A :class:`~butterflyfx.core.graph.GraphEngine` holding adjacency in this process."""

    name = "memory"

    def __init__(self, store: SubstrateStore, *, node_budget: int, page: int = PAGE) -> None:
        self.store = store
        self.node_budget = node_budget  # for subgraphs, whose callers give none
        self.page = page
        self._indexes: dict[str, TenantIndex] = {}
        self._loading: dict[str, asyncio.Task[TenantIndex]] = {}
        self._heard: dict[str, list[_Change]] = {}  # changes heard while a tenant loads

    async def open(self) -> None:
        return None  # indexes load per tenant, on first use

    async def close(self) -> None:
        for task in self._loading.values():
            task.cancel()
        self._indexes.clear()
        self._loading.clear()
        self._heard.clear()

    def state(self) -> dict[str, int]:
        return {
            "tenants_loaded": len(self._indexes),
            "relationships": sum(len(index) for index in self._indexes.values()),
        }

    # -- the index ---------------------------------------------------------------------------
    async def index(self, tenant: str) -> TenantIndex:
        """The tenant's index, loaded from the store the first time."""
        ready = self._indexes.get(tenant)
        if ready is not None:
            return ready
        task = self._loading.get(tenant)
        if task is None:
            task = asyncio.ensure_future(self._load(tenant))
            self._loading[tenant] = task
        # shield: one caller giving up (a cancelled request) must not cancel the load the
        # other callers wait for.
        return await asyncio.shield(task)

    async def _load(self, tenant: str) -> TenantIndex:
        heard = self._heard.setdefault(tenant, [])
        try:
            index = TenantIndex()
            after: int | None = None
            while True:
                page = await self.store.all_relationships(tenant, limit=self.page, after=after)
                for relationship in page:
                    index.add(relationship)
                if len(page) < self.page:
                    break
                after = page[-1].identity
            while heard:  # changes heard meanwhile, in order; more may arrive while we apply
                await self._apply(index, tenant, heard.pop(0))
            self._indexes[tenant] = index
            return index
        finally:
            self._heard.pop(tenant, None)
            self._loading.pop(tenant, None)

    async def _apply(self, index: TenantIndex, tenant: str, change: _Change) -> None:
        if isinstance(change, _Forget):
            index.remove_node(change.node)
            return
        current = await self.store.get_relationship(tenant, change.identity)
        if current is None:
            index.remove(change.identity)
        else:
            index.add(current)

    async def hear(self, event: events.Event) -> None:
        """Keep a loaded (or loading) index in step with a change to the store."""
        change: _Change
        if event.kind in (events.RELATIONSHIP_CREATED, events.RELATIONSHIP_DELETED):
            change = _Refresh(_relationship_identity(event))
        elif event.kind == events.SUBSTRATE_DELETED:
            change = _Forget(int(event.subject_id, 16))
        else:
            return
        heard = self._heard.get(event.tenant)
        if heard is not None:
            heard.append(change)
            return
        index = self._indexes.get(event.tenant)
        if index is not None:  # an index not loaded yet will read the store as it is then
            await self._apply(index, event.tenant, change)

    # -- the contract ------------------------------------------------------------------------
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
        index = await self.index(tenant)
        kinds = None if types is None else frozenset(types)
        return breadth_first(
            start,
            lambda node: index.neighbours(node, direction, kinds),
            max_depth=max_depth,
            limit=max(limit, 1),
            node_budget=max(node_budget, 1),
        )

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
        index = await self.index(tenant)
        kinds = None if types is None else frozenset(types)
        budget = max(node_budget, 1)

        async def steps_of(nodes: Sequence[int]) -> Mapping[int, Sequence[Step]]:
            return {node: index.steps(node, direction, kinds) for node in nodes}

        if weighted:
            found = await lightest_path(
                source, target, steps_of, max_depth=max_depth, node_budget=budget, prefetch=1
            )
        else:
            backwards = REVERSED[direction]
            distance = distances_to(
                target,
                source,
                lambda node: index.neighbours(node, backwards, kinds),
                max_depth=max_depth,
                node_budget=budget,
            )
            found = None if distance is None else await walk_down(source, distance, steps_of)
        if found is None:
            return None
        nodes, taken = found
        edges = tuple(index.relationships[step.relationship] for step in taken)
        return GraphPath(nodes, edges, path_weight(taken))

    async def subgraph(
        self,
        tenant: str,
        root: int,
        *,
        depth: int,
        types: Sequence[str] | None,
        max_nodes: int,
    ) -> Subgraph:
        index = await self.index(tenant)
        kinds = None if types is None else frozenset(types)
        found = breadth_first(
            root,
            lambda node: index.neighbours(node, "both", kinds),
            max_depth=depth,
            limit=max(max_nodes, 1),
            node_budget=max(self.node_budget, 1),
        )
        nodes = [reached.identity for reached in found.nodes]
        return Subgraph(nodes, index.among(set(nodes), kinds), found.truncated)


def _relationship_identity(event: events.Event) -> int:
    """The relationship's identity: its id is the event's subject; failing that, the
    kernel's hash of the ends and type in ``data``."""
    try:
        return int(event.subject_id, 16)
    except (TypeError, ValueError):
        data = event.data
        return Relationship(
            int(data["source"]), int(data["target"]), str(data["relationship_type"])
        ).identity
