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
