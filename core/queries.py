"""The query service: traversals, paths and neighbourhoods through the graph engine, searches
and statistics through the store, every request held within the configured ceilings."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from butterflyfx.kernel import (
    BUILTIN_LANGUAGES,
    ExpressionLanguage,
    InvocationStats,
    JSONValue,
    Relationship,
    Substrate,
    UnknownExpressionType,
    format_id,
)

from .config import ServerSettings
from .graph import GraphDirection, GraphEngine, GraphPath, Reached
from .problems import Problem, ProblemError, invalid, not_found, problem_for
from .relationships import RelationshipTypes
from .store import SubstrateQuery, SubstrateStore
from .substrates import (
    MAX_PAGE,
    Page,
    SubstrateService,
    decode_cursor,
    encode_cursor,
    parse_substrate_id,
)

GRAPH_PLUGINS = ("graph.sql", "graph.memory")
TRAVERSE_DEPTH, TRAVERSE_LIMIT = 3, 1000
SUBGRAPH_DEPTH, SUBGRAPH_NODES = 2, 1000
DIRECTIONS: tuple[GraphDirection, ...] = ("out", "in", "both")
Ceiling = Literal["graph_max_depth", "graph_max_nodes"]


@dataclass(frozen=True)
class TraversalAnswer:
    """A breadth-first traversal and the limits it ran under (defaults filled in)."""

    start: int
    direction: GraphDirection
    max_depth: int
    types: tuple[str, ...] | None
    limit: int
    node_budget: int
    nodes: list[Reached]
    truncated: bool


@dataclass(frozen=True)
class PathAnswer:
    source: int
    target: int
    weighted: bool
    direction: GraphDirection
    max_depth: int
    types: tuple[str, ...] | None
    path: GraphPath

    @property
    def hops(self) -> int:
        return len(self.path.edges)


@dataclass(frozen=True)
class SubgraphAnswer:
    """The substrates within ``depth`` of the root and the relationships among them."""

    root: int
    depth: int
    max_nodes: int
    types: tuple[str, ...] | None
    nodes: list[Substrate]
    edges: list[Relationship]
    truncated: bool


@dataclass(frozen=True)
class Stats:
    substrates: int
    relationships: Mapping[str, int]
    invocations: InvocationStats
    storage: str | None
    graph_engine: str | None
    uptime_seconds: float


def parse_instant(text: str, field_name: str) -> datetime:
    """An ISO 8601 date or date-time; one without an offset is taken as UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise invalid(
            field_name,
            f"{field_name} must be an ISO 8601 date or date-time like 2026-02-09T12:34:56Z",
        ) from None
    return in_utc(moment, field_name)


def in_utc(moment: datetime, field_name: str) -> datetime:
    """The same instant in UTC, as stored instants are; a naive one is taken as UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is in the year 0 in UTC
        raise invalid(
            field_name, f"{field_name} is outside the years 1 to 9999 once in UTC"
        ) from None


def no_graph_engine() -> ProblemError:
    return ProblemError(
        Problem(
            503, "graph-engine-unavailable", "No graph engine",
            "no graph engine is loaded: add graph.sql (recursive SQL in the store's database) "
            "or graph.memory (an in-process index) to plugins in the config file",
            {"plugins": list(GRAPH_PLUGINS)},
        )
    )  # fmt: skip


class QueryService:
    """Graph queries, searches and statistics of a tenant."""

    def __init__(
        self,
        store: SubstrateStore,
        graph: GraphEngine | None,
        settings: ServerSettings,
        *,
        types: RelationshipTypes | None = None,
        substrates: SubstrateService | None = None,
        languages: Mapping[str, ExpressionLanguage] | None = None,
        storage_plugin: str | None = None,
        graph_plugin: str | None = None,
        started_at: float | None = None,
    ) -> None:
        self.store = store
        self.graph = graph
        self.settings = settings
        self.types = types or RelationshipTypes(settings.relationship_types)
        self.substrates = substrates
        self.languages = languages or (substrates.languages if substrates else None)
        self.storage_plugin = storage_plugin
        self.graph_plugin = graph_plugin
        self.started_at = time.time() if started_at is None else started_at

    # -- limits ----------------------------------------------------------------------
    def bounded(
        self, value: int | None, field_name: str, *, default: int, minimum: int, ceiling: Ceiling
    ) -> int:
        """``value``, or the default (never above the ceiling) when None; below ``minimum``
        or above the ceiling is a 422 naming ``field_name`` (and the ceiling)."""
        top: int = getattr(self.settings, ceiling)
        if value is None:
            return min(default, top)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise invalid(field_name, f"{field_name} must be a whole number, {minimum} or more")
        if value > top:
            raise invalid(
                field_name,
                f"{field_name} may be at most {top}, the ceiling this server sets "
                f"(server.{ceiling})",
                ceiling=top, setting=f"server.{ceiling}",
            )  # fmt: skip
        return value

    def engine(self) -> GraphEngine:
        if self.graph is None:
            raise no_graph_engine()
        return self.graph

    async def existing(self, tenant: str, substrate_id: str, field_name: str) -> int:
        identity = parse_substrate_id(substrate_id, field_name)
        if await self.store.get_substrate(tenant, identity) is None:
            raise not_found("substrate", format_id(identity), field_name)
        return identity

    @staticmethod
    def direction(value: str) -> GraphDirection:
        for known in DIRECTIONS:
            if value == known:
                return known
        raise invalid("direction", f"direction must be one of {', '.join(DIRECTIONS)}")

    # -- graph -------------------------------------------------------------------------
    async def traverse(
        self,
        tenant: str,
        start_id: str,
        *,
        direction: str = "out",
        max_depth: int | None = None,
        types: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> TraversalAnswer:
        """Breadth first from ``start_id``: each node once, at its depth, with one shortest
        path; at most ``limit`` nodes and the configured node budget visited."""
        way = self.direction(direction)
        depth = self.bounded(
            max_depth, "max_depth", default=TRAVERSE_DEPTH, minimum=0, ceiling="graph_max_depth"
        )
        most = self.bounded(
            limit, "limit", default=TRAVERSE_LIMIT, minimum=1, ceiling="graph_max_nodes"
        )
        kinds = self.types.normalize_all(types, "relationship_types")
        engine = self.engine()
        start = await self.existing(tenant, start_id, "start_id")
        budget = self.settings.graph_node_budget
        found = await engine.traverse(
            tenant, start, direction=way, max_depth=depth, types=kinds, limit=most,
            node_budget=budget,
        )  # fmt: skip
        truncated = found.truncated or len(found.nodes) > most
        return TraversalAnswer(
            start, way, depth, kinds, most, budget, found.nodes[:most], truncated
        )

    async def path(
        self,
        tenant: str,
        source_id: str,
        target_id: str,
        *,
        weighted: bool = False,
        direction: str = "out",
        max_depth: int | None = None,
        types: Sequence[str] | None = None,
    ) -> PathAnswer:
        """The shortest path (by hops, or by total weight) of at most ``max_depth``
        relationships; 404 ``no-path`` when there is none."""
        way = self.direction(direction)
        top = self.settings.graph_max_depth
        depth = self.bounded(max_depth, "max_depth", default=top, minimum=0,
                             ceiling="graph_max_depth")  # fmt: skip
        kinds = self.types.normalize_all(types, "relationship_types")
        engine = self.engine()
        source = await self.existing(tenant, source_id, "source_id")
        target = await self.existing(tenant, target_id, "target_id")
        found = await engine.shortest_path(
            tenant, source, target, weighted=weighted, direction=way, types=kinds,
            max_depth=depth, node_budget=self.settings.graph_node_budget,
        )  # fmt: skip
        if found is None:
            raise ProblemError(
                Problem(
                    404, "no-path", "No path",
                    f"no path from {format_id(source)} to {format_id(target)} of at most "
                    f"{depth} relationships (direction {way})",
                    {"field": "target_id", "max_depth": depth},
                )
            )  # fmt: skip
        return PathAnswer(source, target, weighted, way, depth, kinds, found)

    async def subgraph(
        self,
        tenant: str,
        root_id: str,
        *,
        depth: int | None = None,
        types: Sequence[str] | None = None,
        max_nodes: int | None = None,
    ) -> SubgraphAnswer:
        """The substrates within ``depth`` of the root (either direction, breadth first, at
        most ``max_nodes``) and every relationship among them, each in identity order."""
        levels = self.bounded(
            depth, "depth", default=SUBGRAPH_DEPTH, minimum=0, ceiling="graph_max_depth"
        )
        most = self.bounded(
            max_nodes, "max_nodes", default=SUBGRAPH_NODES, minimum=1, ceiling="graph_max_nodes"
        )
        kinds = self.types.normalize_all(types, "types", indexed=False)
        engine = self.engine()
        root = await self.existing(tenant, root_id, "root")
        found = await engine.subgraph(tenant, root, depth=levels, types=kinds, max_nodes=most)
        fetched = await self.store.get_substrates(tenant, found.nodes[:most])
        # A substrate deleted since the engine answered takes its relationships with it.
        # Identity order: the same answer from every engine, whatever order it found them in.
        nodes = sorted(fetched.values(), key=lambda s: s.identity)
        present = {substrate.identity for substrate in nodes}
        edges = sorted(
            (e for e in found.edges if e.source in present and e.target in present),
            key=lambda e: e.identity,
        )
        truncated = found.truncated or len(found.nodes) > most
        return SubgraphAnswer(root, levels, most, kinds, nodes, edges, truncated)

    # -- store queries ---------------------------------------------------------------------
    async def search(
        self,
        tenant: str,
        *,
        expression_type: str | None = None,
        metadata: Mapping[str, JSONValue] | None = None,
        name_prefix: str | None = None,
        code_contains: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        has_relationship_type: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page:
        """Substrates matching every filter given, ascending identity, a page at a time."""
        if not 1 <= limit <= MAX_PAGE:
            raise invalid("limit", f"limit must be from 1 to {MAX_PAGE}")
        after = decode_cursor(cursor) if cursor else None
        if expression_type is not None:
            known = self.languages if self.languages is not None else BUILTIN_LANGUAGES
            if expression_type not in known:
                error = UnknownExpressionType(expression_type, list(known))
                problem = problem_for(error)
                assert problem is not None
                raise ProblemError(problem)
        kind = None
        if has_relationship_type is not None:
            kind = self.types.normalize(has_relationship_type, "has_relationship_type")
        query = SubstrateQuery(
            expression_type=expression_type,
            metadata=dict(metadata or {}),
            name_prefix=name_prefix,
            code_contains=code_contains,
            created_after=None if created_after is None else in_utc(created_after, "created_after"),
            created_before=(
                None if created_before is None else in_utc(created_before, "created_before")
            ),
            has_relationship_type=kind,
        )
        items = await self.store.search_substrates(tenant, query, limit=limit + 1, after=after)
        more = len(items) > limit
        items = items[:limit]
        return Page(items, encode_cursor(items[-1].identity) if more and items else None)

    async def stats(self, tenant: str) -> Stats:
        """Counts of the tenant's substrates, relationships by type and invocations."""
        if self.substrates is not None:
            invocations = await self.substrates.invocation_totals(tenant)
        else:
            invocations = await self.store.invocation_totals(tenant)
        return Stats(
            substrates=await self.store.count_substrates(tenant),
            relationships=dict(sorted((await self.store.count_relationships(tenant)).items())),
            invocations=invocations,
            storage=self.storage_plugin,
            graph_engine=self.graph_plugin,
            uptime_seconds=round(time.time() - self.started_at, 3),
        )
