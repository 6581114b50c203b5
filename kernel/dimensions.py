"""Divide a substrate into its nine dimensions, and multiply them back to the unity.

Level  Name       What it holds
0      Void       potential: a 256-bit BLAKE2b fingerprint of the canonical expression
1      Identity   who: substrate_id and identity
1      Domain     what type: the expression type
2      Length     attributes: parameters, the names it reads, metadata keys
3      Area       relationships (from facts): counts by type and direction, first neighbours
5      Volume     state + change: created_at, updated_at, version
8      Frequency  temporal patterns (from facts): invocations, errors, mean time, last call
13     System     behaviours: operations, functions used, size, whether it loops
21     Complete   the whole substrate
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .errors import InconsistentDimensions, KernelError
from .expressions import (
    DEFAULT_LIMITS,
    CompiledExpression,
    ExpressionLanguage,
    Limits,
    compile_expression,
)
from .identity import fingerprint_from_canonical, format_id
from .json_values import JSONValue, to_json_value
from .relationship import Relationship
from .substrate import Substrate, format_timestamp, parse_timestamp

FIBONACCI_SEQUENCE: tuple[int, ...] = (0, 1, 1, 2, 3, 5, 8, 13, 21)
DIMENSIONS: tuple[tuple[int, str, str], ...] = (
    (0, "Void", "Potential"),
    (1, "Identity", "Who"),
    (1, "Domain", "What type"),
    (2, "Length", "Attributes"),
    (3, "Area", "Relationships"),
    (5, "Volume", "State + change"),
    (8, "Frequency", "Temporal patterns"),
    (13, "System", "Behaviors"),
    (21, "Complete", "Whole object"),
)
OPERATIONS = ("invoke", "divide", "multiply")
# Area and Frequency come from facts outside the substrate; the rest follow from it.
_FACT_DIMENSIONS = frozenset({"Area", "Frequency"})


@dataclass(frozen=True)
class InvocationStats:
    """How often a substrate has been invoked, as its store counted."""

    count: int = 0
    errors: int = 0
    total_ms: float = 0.0
    last_invoked_at: datetime | None = None

    def plus(self, other: InvocationStats) -> InvocationStats:
        """Both counts together; the later of the two last calls."""
        moments = [m for m in (self.last_invoked_at, other.last_invoked_at) if m is not None]
        return InvocationStats(
            self.count + other.count,
            self.errors + other.errors,
            self.total_ms + other.total_ms,
            max(moments, default=None),
        )


@dataclass(frozen=True)
class SubstrateFacts:
    """What the kernel cannot know by itself: the graph around a substrate and its use."""

    relationships: Sequence[Relationship] | None = None
    invocations: InvocationStats | None = None
    neighbour_limit: int = 5


@dataclass(frozen=True)
class Dimension:
    level: int
    name: str
    description: str
    content: Mapping[str, JSONValue] = field(default_factory=dict)

    def to_dict(self) -> dict[str, JSONValue]:
        return {
            "level": self.level,
            "name": self.name,
            "description": self.description,
            "content": dict(self.content),
        }


@dataclass(frozen=True)
class Division:
    substrate_id: str
    dimensions: tuple[Dimension, ...]
    fibonacci_sequence: tuple[int, ...] = FIBONACCI_SEQUENCE

    def to_dict(self) -> dict[str, JSONValue]:
        return {
            "substrate_id": self.substrate_id,
            "dimensions": [d.to_dict() for d in self.dimensions],
            "fibonacci_sequence": list(self.fibonacci_sequence),
        }


def divide(
    substrate: Substrate,
    facts: SubstrateFacts | None = None,
    *,
    compiled: CompiledExpression | None = None,
    limits: Limits = DEFAULT_LIMITS,
    languages: Mapping[str, ExpressionLanguage] | None = None,
) -> Division:
    """The nine dimensions of ``substrate``, each holding what it says it holds."""
    if compiled is None:
        compiled = compile_expression(
            substrate.expression_type, substrate.expression_code, limits, languages
        )
    facts = facts or SubstrateFacts()
    info = compiled.info
    contents: dict[str, Mapping[str, JSONValue]] = {
        "Void": {
            "fingerprint": fingerprint_from_canonical(compiled.expression_type, compiled.canonical)
        },
        "Identity": {"substrate_id": substrate.substrate_id, "identity": substrate.identity},
        "Domain": {"expression_type": substrate.expression_type},
        "Length": {
            "parameters": [
                {
                    "name": p.name,
                    "required": p.required,
                    "default": to_json_value(p.default, limits.max_result_values, 4 * 4096),
                }
                for p in info.parameters
            ],
            "reads": [*info.reads],
            "accepts_any": info.accepts_any,
            "metadata_keys": [*sorted(substrate.metadata)],
        },
        "Area": _area(substrate.identity, facts),
        "Volume": {
            "created_at": format_timestamp(substrate.created_at),
            "updated_at": format_timestamp(substrate.updated_at),
            "version": substrate.version,
        },
        "Frequency": _frequency(facts.invocations),
        "System": {
            "operations": list(OPERATIONS),
            "functions": list(info.functions),
            "node_count": info.node_count,
            "depth": info.depth,
            "loops": info.loops,
        },
        "Complete": {
            "substrate_id": substrate.substrate_id,
            "identity": substrate.identity,
            "expression_type": substrate.expression_type,
            "expression_code": substrate.expression_code,
            "metadata": dict(substrate.metadata),
            "created_at": format_timestamp(substrate.created_at),
            "updated_at": format_timestamp(substrate.updated_at),
            "version": substrate.version,
        },
    }
    return Division(
        substrate.substrate_id,
        tuple(Dimension(level, name, text, contents[name]) for level, name, text in DIMENSIONS),
    )


def _area(identity: int, facts: SubstrateFacts) -> dict[str, JSONValue]:
    if facts.relationships is None:
        return {"available": False}
    outgoing = incoming = 0
    by_type: dict[str, dict[str, int]] = {}
    neighbours: list[JSONValue] = []
    for relation in facts.relationships:
        directions: list[tuple[str, int]] = []
        if relation.source == identity:
            directions.append(("outgoing", relation.target))
        if relation.target == identity:
            directions.append(("incoming", relation.source))
        if relation.bidirectional and relation.source != relation.target:
            # a bidirectional edge also runs the other way
            directions += [
                ("incoming" if d == "outgoing" else "outgoing", o) for d, o in directions
            ]
        for direction, other in directions:
            counts = by_type.setdefault(relation.relationship_type, {"outgoing": 0, "incoming": 0})
            counts[direction] += 1
            if direction == "outgoing":
                outgoing += 1
            else:
                incoming += 1
            if len(neighbours) < facts.neighbour_limit:
                neighbours.append(
                    {
                        "substrate_id": format_id(other),
                        "relationship_type": relation.relationship_type,
                        "direction": direction,
                    }
                )
    return {
        "available": True,
        "outgoing": outgoing,
        "incoming": incoming,
        "by_type": {name: dict(counts) for name, counts in sorted(by_type.items())},
        "neighbours": neighbours,
    }


def _frequency(stats: InvocationStats | None) -> dict[str, JSONValue]:
    if stats is None:
        return {"available": False}
    return {
        "available": True,
        "invocations": stats.count,
        "errors": stats.errors,
        "mean_ms": round(stats.total_ms / stats.count, 6) if stats.count else None,
        "last_invoked_at": format_timestamp(stats.last_invoked_at),
    }


def _as_dicts(
    dimensions: Division | Sequence[Dimension | Mapping[str, Any]],
) -> list[Mapping[str, Any]]:
    items = dimensions.dimensions if isinstance(dimensions, Division) else dimensions
    if isinstance(items, str | bytes) or not isinstance(items, Sequence):
        raise InconsistentDimensions("Void", "dimensions must be a list of the nine dimensions")
    result: list[Mapping[str, Any]] = []
    for item in items:
        if isinstance(item, Dimension):
            result.append(item.to_dict())
        elif isinstance(item, Mapping):
            result.append(item)
        else:
            raise InconsistentDimensions("Void", "each dimension must be an object")
    return result


def rebuild(
    dimensions: Division | Sequence[Dimension | Mapping[str, Any]],
    *,
    limits: Limits = DEFAULT_LIMITS,
    languages: Mapping[str, ExpressionLanguage] | None = None,
) -> Substrate:
    """Multiply the nine dimensions back into the substrate they came from.

    The Complete dimension supplies the substrate; every other dimension that follows
    from it (all but Area and Frequency) must agree exactly with what dividing the
    rebuilt substrate gives, or ``InconsistentDimensions`` names the first that does not.
    """
    given = _as_dicts(dimensions)
    if len(given) != len(DIMENSIONS):
        raise InconsistentDimensions(
            "Void", f"expected {len(DIMENSIONS)} dimensions, got {len(given)}"
        )
    for item, (level, name, _) in zip(given, DIMENSIONS, strict=True):
        if item.get("name") != name or item.get("level") != level:
            raise InconsistentDimensions(
                name, f"expected {name} at level {level} in this position, got {item.get('name')!r}"
            )
        if not isinstance(item.get("content"), Mapping):
            raise InconsistentDimensions(name, "content must be an object")
    by_name = {item["name"]: item["content"] for item in given}
    whole = by_name["Complete"]
    try:
        substrate = Substrate.create(
            whole["expression_type"],
            whole["expression_code"],
            whole.get("metadata") or {},
            created_at=parse_timestamp(whole.get("created_at")),
            updated_at=parse_timestamp(whole.get("updated_at")),
            version=int(whole.get("version", 1)),
            limits=limits,
            languages=languages,
        )
    except KeyError as missing:
        raise InconsistentDimensions("Complete", f"missing {missing.args[0]}") from None
    except (KernelError, TypeError, ValueError, AttributeError) as error:
        raise InconsistentDimensions(
            "Complete", f"does not describe a substrate: {error}"
        ) from None
    expected = divide(substrate, limits=limits, languages=languages)
    for dimension in expected.dimensions:
        if dimension.name in _FACT_DIMENSIONS:
            continue
        if dict(by_name[dimension.name]) != dimension.to_dict()["content"]:
            raise InconsistentDimensions(
                dimension.name, "does not agree with the Complete dimension"
            )
    return substrate
