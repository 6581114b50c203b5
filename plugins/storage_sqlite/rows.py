"""How a substrate or a relationship becomes a row and back, and the SQL that moves rows.

Identities are unsigned 64-bit, SQLite's INTEGER is signed: ``identity_key`` holds
``identity - 2**63``, a BIGINT that sorts exactly like the identity. Metadata is JSON
text; timestamps are ISO 8601 text in UTC to the second (one format, so text order is
time order).
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
SELECT = f"SELECT {COLUMNS} FROM substrates"
INSERT = (
    f"INSERT INTO substrates (tenant, {COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (tenant, identity_key) DO NOTHING"
)
# INSERT ... SELECT ... WHERE EXISTS skips substrates the tenant lacks in the same statement.
# The later of two last_invoked_at wins; ISO text in one format sorts like the instants.
ADD_INVOCATIONS = """
INSERT INTO invocation_totals
    (tenant, identity_key, invocations, errors, total_ms, last_invoked_at)
SELECT :tenant, :key, :invocations, :errors, :total_ms, :last
WHERE EXISTS (SELECT 1 FROM substrates WHERE tenant = :tenant AND identity_key = :key)
ON CONFLICT (tenant, identity_key) DO UPDATE SET
    invocations = invocation_totals.invocations + excluded.invocations,
    errors = invocation_totals.errors + excluded.errors,
    total_ms = invocation_totals.total_ms + excluded.total_ms,
    last_invoked_at = CASE
        WHEN invocation_totals.last_invoked_at IS NULL
          OR excluded.last_invoked_at > invocation_totals.last_invoked_at
        THEN excluded.last_invoked_at
        ELSE invocation_totals.last_invoked_at
    END
"""

RELATIONSHIP_COLUMNS = (
    "source_key, target_key, relationship_type, bidirectional, weight, metadata, created_at"
)
# The names of relationship_values' parameters, in RELATIONSHIP_COLUMNS order.
RELATIONSHIP_PARAMETERS = (
    "source", "target", "type", "bidirectional", "weight", "metadata", "created_at"
)  # fmt: skip
SELECT_RELATIONSHIP = f"SELECT {RELATIONSHIP_COLUMNS} FROM relationships"
# One statement checks both ends and inserts, so the common case is one round trip; when
# it inserts nothing, the caller looks for the duplicate or the missing end in the same
# transaction. (INSERT ... SELECT needs its WHERE for SQLite to parse the ON CONFLICT.)
INSERT_RELATIONSHIP = f"""
INSERT INTO relationships (tenant, identity_key, {RELATIONSHIP_COLUMNS})
SELECT :tenant, :key, {", ".join(f":{name}" for name in RELATIONSHIP_PARAMETERS)}
WHERE EXISTS (SELECT 1 FROM substrates WHERE tenant = :tenant AND identity_key = :source)
  AND EXISTS (SELECT 1 FROM substrates WHERE tenant = :tenant AND identity_key = :target)
ON CONFLICT (tenant, identity_key) DO NOTHING
"""


def identity_key(identity: int) -> int | None:
    """The stored key of an identity, or None for a number no identity can have."""
    return identity - KEY_OFFSET if 0 <= identity <= MAX_IDENTITY else None


def metadata_text(metadata: Mapping[str, JSONValue]) -> str:
    # ensure_ascii: a lone surrogate (which stdlib JSON parsing lets in) cannot be encoded
    # as UTF-8 text, but its \u escape can. allow_nan=False keeps the text strict JSON.
    return json.dumps(dict(metadata), ensure_ascii=True, allow_nan=False, separators=(",", ":"))


def substrate_values(tenant: str, substrate: Substrate) -> tuple[Any, ...]:
    key = identity_key(substrate.identity)
    if key is None:
        raise ValueError(f"identity {substrate.identity} is not a 64-bit unsigned integer")
    return (
        tenant,
        substrate.expression_type,
        substrate.expression_code,
        key,
        metadata_text(substrate.metadata),
        format_timestamp(substrate.created_at),
        format_timestamp(substrate.updated_at),
        substrate.version,
    )


def substrate_from_row(row: Sequence[Any]) -> Substrate:
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


def relationship_values(
    tenant: str, relationship: Relationship, source: int, target: int
) -> dict[str, Any]:
    """The named parameters of ``INSERT_RELATIONSHIP``; ``source`` and ``target`` are keys."""
    key = identity_key(relationship.identity)
    assert key is not None  # a relationship identity is a 64-bit digest
    weight = relationship.weight
    return {
        "tenant": tenant,
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
