"""How a substrate or a relationship becomes a row and back, and the SQL that moves rows.

The row formats are ``storage.sqlite``'s: ``identity_key`` = ``identity - 2**63``, JSON
text metadata, ISO 8601 text times in UTC to the second. Parameters are asyncpg's
``$n``; batches travel as arrays through ``unnest`` so a batch is one statement.
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

KEY_OFFSET = 2**63
MAX_IDENTITY = 2**64 - 1

COLUMNS = (
    "expression_type, expression_code, identity_key, metadata, created_at, updated_at, version"
)
SELECT = f"SELECT {COLUMNS} FROM substrates"
# Parameters: tenant, then arrays in COLUMNS order. RETURNING names the rows inserted.
INSERT_MANY = f"""
INSERT INTO substrates (tenant, {COLUMNS})
SELECT $1::text, * FROM unnest(
    $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::bigint[])
ON CONFLICT (tenant, identity_key) DO NOTHING
RETURNING identity_key
"""
# Parameters: tenant, then arrays of keys, invocations, errors, total_ms, last_invoked_at.
# The join skips substrates the tenant lacks; the later last_invoked_at wins.
ADD_INVOCATIONS = """
INSERT INTO invocation_totals
    (tenant, identity_key, invocations, errors, total_ms, last_invoked_at)
SELECT $1::text, c.key, c.invocations, c.errors, c.total_ms, c.last
FROM unnest($2::bigint[], $3::bigint[], $4::bigint[], $5::float8[], $6::text[])
    AS c (key, invocations, errors, total_ms, last)
WHERE EXISTS (SELECT 1 FROM substrates WHERE tenant = $1 AND identity_key = c.key)
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
RELATIONSHIP_PARAMETERS = (
    "source", "target", "type", "bidirectional", "weight", "metadata", "created_at"
)  # fmt: skip
SELECT_RELATIONSHIP = f"SELECT {RELATIONSHIP_COLUMNS} FROM relationships"
# Parameters: tenant, then arrays of keys and RELATIONSHIP_PARAMETERS. Only rows whose two
# ends exist go in; RETURNING names the rows inserted.
INSERT_RELATIONSHIPS = f"""
INSERT INTO relationships (tenant, identity_key, {RELATIONSHIP_COLUMNS})
SELECT $1::text, r.* FROM unnest(
    $2::bigint[], $3::bigint[], $4::bigint[], $5::text[], $6::smallint[], $7::float8[],
    $8::text[], $9::text[]) AS r (key, source, target, kind, bidirectional, weight,
    metadata, created_at)
WHERE EXISTS (SELECT 1 FROM substrates WHERE tenant = $1 AND identity_key = r.source)
  AND EXISTS (SELECT 1 FROM substrates WHERE tenant = $1 AND identity_key = r.target)
ON CONFLICT (tenant, identity_key) DO NOTHING
RETURNING identity_key
"""


def identity_key(identity: int) -> int | None:
    """The stored key of an identity, or None for a number no identity can have."""
    return identity - KEY_OFFSET if 0 <= identity <= MAX_IDENTITY else None


def metadata_text(metadata: Mapping[str, JSONValue]) -> str:
    # ensure_ascii: a lone surrogate or a NUL becomes a \u escape, which PostgreSQL text
    # can hold (it holds neither character itself).
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
    """The row of one relationship by name; ``source`` and ``target`` are keys."""
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


def columns(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    """Rows turned into ``width`` column arrays, for ``unnest``."""
    return [[row[i] for row in rows] for i in range(width)]
