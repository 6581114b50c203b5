"""The MCP tools: what each is called, what it tells a model, its parameters, its request.

A tool's parameters are the fields of the API's request model (:mod:`butterflyfx.interface
.machine.models`) with their types, limits, descriptions and examples, so the input schema
a model reads is the body the HTTP API validates; path parameters (``substrate_id``) come
first. :func:`signature_of` turns those fields into the signature FastMCP builds the schema
from. The HTTP server validates again, and is the judge: the schema only guides.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BaseModel, Field
from pydantic.fields import FieldInfo

from butterflyfx.interface.client import AsyncButterflyFX
from butterflyfx.interface.machine import models
from butterflyfx.kernel import RELATIONSHIP_TYPES

Request = Callable[..., Awaitable[Any]]

SUBSTRATE_ID = FieldInfo.from_annotation(models.SubstrateId)
SUBSTRATE_ID.description = "The substrate's id: 0x and up to 16 hex digits, as create answered"


@dataclass(frozen=True)
class ToolSpec:
    """One tool: ``request(client, **arguments)`` sends it; ``model`` gives the parameters
    after ``path`` (name to field), ``only`` picking some of the model's fields."""

    name: str
    description: str
    request: Request
    model: type[BaseModel] | None = None
    path: dict[str, FieldInfo] = field(default_factory=dict)
    only: Sequence[str] | None = None
    read_only: bool = False

    def fields(self) -> dict[str, FieldInfo]:
        chosen = dict(self.path)
        if self.model is not None:
            for name, info in self.model.model_fields.items():
                if self.only is None or name in self.only:
                    chosen[name] = info
        return chosen


def _parameter(name: str, info: FieldInfo) -> inspect.Parameter:
    """A keyword parameter carrying the field's type, constraints and documentation."""
    documented = Field(description=info.description, examples=info.examples)
    annotation = Annotated[(info.annotation, *info.metadata, documented)]  # type: ignore[name-defined]
    if info.is_required():
        default: Any = inspect.Parameter.empty
    elif info.default_factory is not None:
        default = info.default_factory()  # type: ignore[call-arg]
    else:
        default = info.default
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                             annotation=annotation)  # fmt: skip


def signature_of(spec: ToolSpec) -> inspect.Signature:
    """The signature FastMCP reads the tool's input schema from."""
    parameters = [_parameter(name, info) for name, info in spec.fields().items()]
    required = [p for p in parameters if p.default is inspect.Parameter.empty]
    optional = [p for p in parameters if p.default is not inspect.Parameter.empty]
    return inspect.Signature(required + optional, return_annotation=dict[str, Any])


def as_json(answer: Any) -> Any:
    """An answer of the client as JSON-ready data (models dumped, lists of them too)."""
    if isinstance(answer, BaseModel):
        return answer.model_dump(mode="json")
    if isinstance(answer, list):
        return [as_json(item) for item in answer]
    return answer


async def _create(client: AsyncButterflyFX, **a: Any) -> Any:
    return await client.create_substrate(a["expression_type"], a["expression_code"], a["metadata"])


async def _get(client: AsyncButterflyFX, **a: Any) -> Any:
    return await client.get_substrate(a["substrate_id"])


async def _search(client: AsyncButterflyFX, **a: Any) -> Any:
    filters = {name: value for name, value in a.items() if value not in (None, {})}
    return await client.search_page(**filters)


async def _invoke(client: AsyncButterflyFX, **a: Any) -> Any:
    return await client.invoke(a["substrate_id"], a["parameters"])


async def _divide(client: AsyncButterflyFX, **a: Any) -> Any:
    return await client.divide(a["substrate_id"])


async def _multiply(client: AsyncButterflyFX, **a: Any) -> Any:
    return await client.multiply(a["substrate_ids"], a["dimensions"])


async def _relate(client: AsyncButterflyFX, **a: Any) -> Any:
    return await client.create_relationship(
        a["source_id"],
        a["target_id"],
        a["relationship_type"],
        bidirectional=a["bidirectional"],
        weight=a["weight"],
        metadata=a["metadata"],
    )


async def _traverse(client: AsyncButterflyFX, **a: Any) -> Any:
    return await client.traverse(
        a["start_id"], a["direction"], a["max_depth"], a["relationship_types"], a["limit"]
    )


TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "create",
        "Create a substrate: an expression (expression_type 'lambda' and its code, e.g. "
        "\"lambda **kw: kw.get('x', 0) * kw.get('y', 0)\") with optional JSON metadata such "
        "as a name. The code is checked against a whitelist and never eval'd; the same "
        "expression is the same substrate, so creating it again returns it. Answers the "
        "substrate, whose substrate_id the other tools take. Needs the write scope.",
        _create,
        models.CreateSubstrate,
    ),
    ToolSpec(
        "get",
        "Fetch one substrate by substrate_id: its expression, metadata, version and times.",
        _get,
        path={"substrate_id": SUBSTRATE_ID},
        read_only=True,
    ),
    ToolSpec(
        "search",
        "Find substrates matching every filter given (expression_type, metadata values, "
        "name_prefix, code_contains, created_after/before, has_relationship_type), in "
        "ascending identity order. Answers one page: items and next_cursor; pass that as "
        "cursor for the next page (null: no more).",
        _search,
        models.SearchRequest,
        read_only=True,
    ),
    ToolSpec(
        "invoke",
        'Run a substrate\'s expression on named parameters (e.g. {"x": 5, "y": 7}) and '
        "answer its result. Needs the invoke scope.",
        _invoke,
        models.InvokeSubstrate,
        path={"substrate_id": SUBSTRATE_ID},
    ),
    ToolSpec(
        "divide",
        "Divide a substrate into its nine dimensions (Void, Identity, Domain, Length, Area, "
        "Volume, Frequency, System, Complete), each with its content. Passing them to "
        "multiply as dimensions rebuilds the substrate.",
        _divide,
        path={"substrate_id": SUBSTRATE_ID},
        read_only=True,
    ),
    ToolSpec(
        "multiply",
        "Create a substrate from others: give substrate_ids (two or more) for their "
        "product, or dimensions (the nine a divide answered) to rebuild that substrate; "
        "exactly one of the two. Needs the write scope.",
        _multiply,
        models.MultiplySubstrates,
    ),
    ToolSpec(
        "relate",
        "Create a relationship source_id -[relationship_type]-> target_id between two "
        "existing substrates. Types: " + ", ".join(RELATIONSHIP_TYPES) + " (and any the "
        "server adds in server.relationship_types); optional weight, bidirectional, "
        "metadata. Needs the write scope.",
        _relate,
        models.CreateRelationship,
    ),
    ToolSpec(
        "traverse",
        "Walk relationships breadth first from start_id (direction out, in or both; "
        "max_depth; only some relationship_types) and answer the substrates reached with "
        "their depth, each once, at its smallest depth.",
        _traverse,
        models.TraverseRequest,
        read_only=True,
    ),
)
