"""The API's request and response bodies as pydantic models.

Requests are validated with these models. Responses are documented with them (the
OpenAPI document is generated from them) but built as plain dicts on the hot path:
validating a response we built ourselves would only cost time.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

MAX_METADATA_DEPTH = 32
MAX_PRODUCT_FACTORS = 64
MAX_BATCH = 500  # items in one batch create (core.substrates.MAX_BATCH)
SUBSTRATE_ID = r"^0[xX][0-9a-fA-F]{1,16}$"


def _depth(value: Any, limit: int) -> int:
    """How deeply ``value`` nests, counting no further than ``limit + 1``."""
    if limit < 0:
        return 1
    if isinstance(value, dict):
        return 1 + max((_depth(item, limit - 1) for item in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(item, limit - 1) for item in value), default=0)
    return 0


def nested_at_most(limit: int) -> AfterValidator:
    """A validator refusing JSON that nests deeper than ``limit`` (metadata is stored and
    written back out: a bound keeps every encoder and store within its recursion limits)."""

    def check(value: dict[str, Any]) -> dict[str, Any]:
        if _depth(value, limit) > limit:
            raise ValueError(f"may nest at most {limit} levels deep")
        return value

    return AfterValidator(check)


Metadata = Annotated[
    dict[str, Any],
    nested_at_most(MAX_METADATA_DEPTH),
    Field(description="Free-form JSON object kept with the substrate"),
]


class RequestModel(BaseModel):
    """Request bodies: no coercion, and an unknown field is an error naming it."""

    model_config = ConfigDict(extra="forbid", strict=True)


# -- requests -----------------------------------------------------------------------


class CreateSubstrate(RequestModel):
    expression_type: str = Field(max_length=64, examples=["lambda"])
    expression_code: str = Field(
        examples=["lambda **kw: kw.get('x', 0) * kw.get('y', 0)"],
        description="Checked against the kernel's whitelist and limits; never eval'd",
    )
    metadata: Metadata = Field(
        default_factory=dict,
        examples=[{"name": "multiply_substrate", "description": "Multiplies x and y"}],
    )


class UpdateSubstrate(RequestModel):
    """A JSON merge patch (RFC 7396) of the substrate; only ``metadata`` may change."""

    metadata: Metadata | None = Field(
        None, description="Merged into the metadata: null removes a key; null here clears all"
    )


class DivideSubstrate(RequestModel):
    """Divide takes no options; the body may be empty or ``{}``."""


class InvokeSubstrate(RequestModel):
    parameters: dict[str, Any] = Field(default_factory=dict, examples=[{"x": 5, "y": 7}])


class DimensionBody(BaseModel):
    model_config = ConfigDict(strict=True)

    level: int = Field(examples=[1])
    name: str = Field(examples=["Identity"])
    description: str = Field("", examples=["Who"])
    # Complete's content holds the metadata one level down: the same bound applies.
    content: Annotated[dict[str, Any], nested_at_most(MAX_METADATA_DEPTH + 1)] = Field(
        default_factory=dict
    )


class MultiplySubstrates(RequestModel):
    """Exactly one of ``dimensions`` (rebuild what divide gave) or ``substrate_ids``."""

    dimensions: list[DimensionBody] | None = Field(
        None, description="The nine dimensions a divide returned: rebuilds that substrate"
    )
    substrate_ids: list[str] | None = Field(
        None,
        min_length=2,
        max_length=MAX_PRODUCT_FACTORS,
        description="Two or more substrates whose product to create",
    )


class ListSubstratesQuery(BaseModel):
    limit: int | None = Field(None, ge=1, le=1000, description="Page size (default 100)")
    cursor: str | None = Field(None, description="next_cursor of the previous page")


SubstrateId = Annotated[
    str,
    Field(max_length=64, examples=["0xE7A2CB9AAF2B6E02"], description="0x and up to 16 hex digits"),
]
RelationshipTypeName = Annotated[str, Field(max_length=64, examples=["dependency"])]
MAX_TYPES = 64
Direction = Literal["out", "in", "both"]


class CreateRelationship(RequestModel):
    """``source_id -[relationship_type]-> target_id``; both substrates must exist."""

    source_id: SubstrateId
    target_id: SubstrateId
    relationship_type: RelationshipTypeName = Field(
        description="One of the 15 kernel types or those in server.relationship_types; any case"
    )
    bidirectional: bool = Field(False, description="Also followed from target to source")
    weight: float | None = Field(
        None, ge=0, description="Zero or more; weighted paths add weights (null counts 1)"
    )
    metadata: Metadata = Field(default_factory=dict)


class CreateSubstrates(RequestModel):
    """Up to 500 substrates to create in one request, each as POST /api/v1/substrates
    takes it. Each item is checked on its own: one that is refused fails alone."""

    substrates: list[CreateSubstrate] = Field(min_length=1, max_length=MAX_BATCH)


class CreateRelationships(RequestModel):
    """Up to 500 relationships to create in one request, each as POST
    /api/v1/relationships takes it. Each item is checked on its own: one that is refused
    (its end missing, say) fails alone."""

    relationships: list[CreateRelationship] = Field(min_length=1, max_length=MAX_BATCH)


# What a batch route reads first: the envelope, its items still raw, so that each item is
# then validated alone (as CreateSubstrate or CreateRelationship) and fails alone.
BatchItems = Annotated[list[Any], Field(min_length=1, max_length=MAX_BATCH)]


class SubstrateBatch(RequestModel):
    substrates: BatchItems


class RelationshipBatch(RequestModel):
    relationships: BatchItems


class ListAllRelationshipsQuery(BaseModel):
    type: str | None = Field(
        None,
        description="Only these types: one name or several separated by commas (a page may "
        "then hold fewer than limit items while next_cursor goes on)",
    )
    limit: int | None = Field(None, ge=1, le=1000, description="Page size (default 100)")
    cursor: str | None = Field(None, description="next_cursor of the previous page")


class ListRelationshipsQuery(BaseModel):
    type: str | None = Field(
        None, description="Only these types: one name or several separated by commas"
    )
    limit: int | None = Field(None, ge=1, le=1000, description="Page size (default 100)")
    cursor: str | None = Field(None, description="next_cursor of the previous page")


class GraphQuery(BaseModel):
    root: str = Field(description="The substrate at the centre")
    depth: int | None = Field(
        None,
        ge=0,
        description="Relationships from the root, either way (default 2; at most "
        "server.graph_max_depth)",
    )
    types: str | None = Field(None, description="Only these types, separated by commas")
    max_nodes: int | None = Field(
        None, ge=1, description="Nodes at most (default 1000; at most server.graph_max_nodes)"
    )


class TraverseRequest(RequestModel):
    """Breadth first from ``start_id``; each substrate reached once, at its smallest depth."""

    start_id: SubstrateId
    direction: Direction = Field(
        "out", description="out: source to target; in: the reverse; both: either way"
    )
    max_depth: int | None = Field(
        None, ge=0, description="Default 3; at most server.graph_max_depth (6 by default)"
    )
    relationship_types: list[RelationshipTypeName] | None = Field(
        None, max_length=MAX_TYPES, description="Only these types; null or [] for every type"
    )
    limit: int | None = Field(
        None, ge=1, description="Nodes returned (default 1000; at most server.graph_max_nodes)"
    )


class PathRequest(RequestModel):
    """The shortest path from ``source_id`` to ``target_id``."""

    source_id: SubstrateId
    target_id: SubstrateId
    weighted: bool = Field(False, description="Least total weight instead of fewest hops")
    direction: Direction = Field("out", description="How relationships may be followed")
    max_depth: int | None = Field(
        None,
        ge=0,
        description="Relationships at most (default and ceiling: server.graph_max_depth)",
    )
    relationship_types: list[RelationshipTypeName] | None = Field(
        None, max_length=MAX_TYPES, description="Only these types; null or [] for every type"
    )


class SearchRequest(RequestModel):
    """Substrates matching every filter given, in ascending identity order."""

    expression_type: str | None = Field(None, max_length=64, examples=["lambda"])
    metadata: Metadata = Field(
        default_factory=dict,
        examples=[{"name": "multiply_substrate"}],
        description="Each key's value equal (as JSON) at the top level of the metadata",
    )
    name_prefix: str | None = Field(
        None, max_length=1024, description="metadata.name starts with it (case-sensitive)"
    )
    code_contains: str | None = Field(
        None, max_length=4096, description="expression_code contains it (case-sensitive)"
    )
    created_after: str | None = Field(
        None,
        max_length=64,
        examples=["2026-02-09T00:00:00Z"],
        description="ISO 8601; created at or after it (no offset: UTC)",
    )
    created_before: str | None = Field(
        None, max_length=64, description="ISO 8601; created before it (no offset: UTC)"
    )
    has_relationship_type: RelationshipTypeName | None = Field(
        None, description="Source or target of at least one relationship of this type"
    )
    limit: int = Field(100, ge=1, le=1000, description="Page size")
    cursor: str | None = Field(None, max_length=128, description="next_cursor of the previous page")


# -- responses ----------------------------------------------------------------------


class SubstrateBody(BaseModel):
    """A substrate: its expression, identity, metadata and version."""

    substrate_id: str = Field(pattern=SUBSTRATE_ID, examples=["0x1A2B3C4D5E6F7890"])
    identity: int = Field(ge=0, le=2**64 - 1, examples=[1883899461035270288])
    created_at: str = Field(examples=["2026-02-09T12:34:56Z"])
    expression_type: str
    expression_code: str
    metadata: dict[str, Any]
    updated_at: str = Field(examples=["2026-02-09T12:34:56Z"])
    version: int = Field(ge=1)


class SubstratePage(BaseModel):
    """One page of substrates in ascending identity order."""

    items: list[SubstrateBody]
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null at the end")


class DivisionBody(BaseModel):
    """The nine dimensions of a substrate; pass them to multiply to rebuild it."""

    substrate_id: str
    dimensions: list[DimensionBody]
    fibonacci_sequence: list[int] = Field(examples=[[0, 1, 1, 2, 3, 5, 8, 13, 21]])


class InvocationBody(BaseModel):
    """What the expression returned for the parameters, and how long it took."""

    substrate_id: str
    result: Any = Field(examples=[35])
    invocation_time_ms: float = Field(examples=[0.023])


class RelationshipBody(BaseModel):
    """A typed relationship; its id depends on its two ends and its type only."""

    relationship_id: str = Field(pattern=SUBSTRATE_ID, examples=["0x5F0C2B8E1D3A4967"])
    source_id: str = Field(pattern=SUBSTRATE_ID)
    target_id: str = Field(pattern=SUBSTRATE_ID)
    relationship_type: str = Field(examples=["dependency"])
    bidirectional: bool
    weight: float | None
    metadata: dict[str, Any]
    created_at: str | None = Field(examples=["2026-02-09T12:34:56Z"])


class RelationshipPage(BaseModel):
    """One page of relationships in ascending relationship id order."""

    items: list[RelationshipBody]
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null at the end")


class GraphBody(BaseModel):
    """The neighbourhood of ``root``: substrates (as GET /substrates/{id} gives them) and the
    relationships among them; ``truncated`` when ``max_nodes`` left some out."""

    root: str
    depth: int
    max_nodes: int
    relationship_types: list[str] | None
    nodes: list[SubstrateBody]
    edges: list[RelationshipBody]
    truncated: bool


class ReachedBody(BaseModel):
    substrate_id: str
    depth: int = Field(description="Relationships from the start")
    path: list[str] = Field(description="Substrate ids from the start to this one, both included")


class TraverseBody(BaseModel):
    """What a traversal reached, by depth then id, and the limits it ran under."""

    start_id: str
    direction: Direction
    max_depth: int
    relationship_types: list[str] | None
    limit: int
    node_budget: int = Field(description="Nodes the engine could visit (server.graph_node_budget)")
    results: list[ReachedBody]
    truncated: bool = Field(description="The limit or the node budget stopped it")


class PathBody(BaseModel):
    """A shortest path: ``edges[i]`` joins ``nodes[i]`` and ``nodes[i + 1]``."""

    source_id: str
    target_id: str
    weighted: bool
    direction: Direction
    max_depth: int
    relationship_types: list[str] | None
    nodes: list[str]
    edges: list[RelationshipBody]
    hops: int
    total_weight: float


class InvocationTotals(BaseModel):
    count: int
    errors: int
    total_ms: float
    mean_ms: float | None
    last_invoked_at: str | None


class RelationshipCounts(BaseModel):
    total: int
    by_type: dict[str, int]


class StatsBody(BaseModel):
    """The tenant's counts and the plugins answering."""

    substrates: int
    relationships: RelationshipCounts
    invocations: InvocationTotals
    storage: str | None = Field(examples=["storage.sqlite"])
    graph_engine: str | None = Field(examples=["graph.sql"], description="null: none loaded")
    uptime_seconds: float


class PluginState(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: Literal["ok", "degraded", "down"]


class HealthBody(BaseModel):
    """The server's status, computed from each plugin's own."""

    status: Literal["ok", "degraded", "down"]
    version: str
    uptime_seconds: float
    plugins: dict[str, PluginState]


class ProblemBody(BaseModel):
    """RFC 9457 problem details; further members (field, limit, reason...) depend on type."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=["https://butterflyfx.dev/problems/validation-failed"])
    title: str
    status: int
    detail: str
    instance: str | None = None
    field: str | None = Field(None, description="The request field at fault, e.g. metadata.name")


class NoContent(BaseModel):
    """No body."""


class NotModified(BaseModel):
    """Not modified: the ETag sent in If-None-Match is still current."""


# -- batch creates ------------------------------------------------------------------


class BatchCounts(BaseModel):
    created: int = Field(description="Items stored by this request (status 201)")
    existing: int = Field(description="Items the tenant already had, answered unchanged (200)")
    failed: int = Field(description="Items refused, each with its problem (4xx)")


class SubstrateResult(BaseModel):
    """One item's outcome: 201 created or 200 already there, with the substrate; or a
    4xx status with the problem that refused this item alone."""

    status: int = Field(examples=[201])
    substrate: SubstrateBody | None = None
    problem: ProblemBody | None = None


class SubstrateBatchBody(BatchCounts):
    """One result per item of the request, in its order, and how many of each outcome."""

    results: list[SubstrateResult]


class RelationshipResult(BaseModel):
    """One item's outcome: 201 created or 200 already there, with the relationship; or a
    4xx status with the problem (404 naming source_id or target_id for a missing end)."""

    status: int = Field(examples=[201])
    relationship: RelationshipBody | None = None
    problem: ProblemBody | None = None


class RelationshipBatchBody(BatchCounts):
    """One result per item of the request, in its order, and how many of each outcome."""

    results: list[RelationshipResult]
