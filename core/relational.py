"""The shared relational row format of SQL stores (see :class:`~.store.SqlDatabase`).

Every store that keeps substrates in SQL tables (``storage.sqlite``, ``storage.postgres``,
a third party's) writes rows in this format, and ``graph.sql`` reads them: identities
are unsigned 64-bit and SQL integers are signed, so ``identity_key`` holds ``identity -
2**63``, a BIGINT that sorts exactly like the identity. Metadata is compact JSON text;
timestamps are ISO 8601 text in UTC to the second (one format, so text order is time
order). Pure Python: the SQL itself, with each driver's placeholders, stays in the store.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from butterflyfx.kernel import (
    JSONValue,
    Relationship,
    Substrate,
    format_timestamp,
    parse_timestamp,
)

KEY_OFFSET = 2**63  # identity_key = identity - 2**63: a signed BIGINT in identity order
MAX_IDENTITY = 2**64 - 1

COLUMNS = (
    "expression_type, expression_code, identity_key, metadata, created_at, updated_at, version"
)
RELATIONSHIP_COLUMNS = (
    "source_key, target_key, relationship_type, bidirectional, weight, metadata, created_at"
)
# The names of relationship_values' entries, in RELATIONSHIP_COLUMNS order.
RELATIONSHIP_PARAMETERS = (
    "source", "target", "type", "bidirectional", "weight", "metadata", "created_at"
)  # fmt: skip


def identity_key(identity: int) -> int | None:
    """The stored key of an identity, or None for a number no identity can have."""
    return identity - KEY_OFFSET if 0 <= identity <= MAX_IDENTITY else None


def metadata_text(metadata: Mapping[str, JSONValue]) -> str:
    """Compact JSON. ensure_ascii: a lone surrogate or a NUL (which stdlib JSON parsing
    lets in) becomes a \\u escape, which UTF-8 text and PostgreSQL text can both hold.
    allow_nan=False keeps the text strict JSON."""
    return json.dumps(dict(metadata), ensure_ascii=True, allow_nan=False, separators=(",", ":"))


def substrate_values(substrate: Substrate) -> tuple[Any, ...]:
    """The values of COLUMNS for one substrate."""
    key = identity_key(substrate.identity)
    if key is None:
        raise ValueError(f"identity {substrate.identity} is not a 64-bit unsigned integer")
    return (
        substrate.expression_type,
        substrate.expression_code,
        key,
        metadata_text(substrate.metadata),
        format_timestamp(substrate.created_at),
        format_timestamp(substrate.updated_at),
        substrate.version,
    )


def substrate_from_row(row: Sequence[Any]) -> Substrate:
    """The substrate a row of COLUMNS holds."""
    expression_type, code, key, metadata, created_at, updated_at, version = row
    return Substrate(
        expression_type,
        code,
        key + KEY_OFFSET,
        json.loads(metadata),
        parse_timestamp(created_at),
        parse_timestamp(updated_at),
        version,
    )


def relationship_values(relationship: Relationship, source: int, target: int) -> dict[str, Any]:
    """The row of one relationship by name (``key`` and RELATIONSHIP_PARAMETERS);
    ``source`` and ``target`` are keys."""
    key = identity_key(relationship.identity)
    assert key is not None  # a relationship identity is a 64-bit digest
    weight = relationship.weight
    return {
        "key": key,
        "source": source,
        "target": target,
        "type": relationship.relationship_type,
        "bidirectional": 1 if relationship.bidirectional else 0,
        "weight": None if weight is None else float(weight),
        "metadata": metadata_text(relationship.metadata),
        "created_at": format_timestamp(relationship.created_at),
    }


def relationship_from_row(row: Sequence[Any]) -> Relationship:
    """The relationship a row of RELATIONSHIP_COLUMNS holds."""
    source, target, relationship_type, bidirectional, weight, metadata, created_at = row
    return Relationship(
        source + KEY_OFFSET,
        target + KEY_OFFSET,
        relationship_type,
        bool(bidirectional),
        None if weight is None else float(weight),
        json.loads(metadata),
        parse_timestamp(created_at),
    )


def written_relationship(values: Mapping[str, Any]) -> Relationship:
    """What a later read returns for the row ``relationship_values`` made."""
    return relationship_from_row([values[name] for name in RELATIONSHIP_PARAMETERS])
