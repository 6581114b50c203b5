"""How a substrate or a relationship becomes a row and back, and the SQL that moves rows.

The row format is the shared one in :mod:`butterflyfx.core.relational`. Parameters are asyncpg's
``$n``; batches travel as arrays through ``unnest`` so a batch is one statement.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from butterflyfx.core.relational import (  # re-exported: the store reads them from here
    COLUMNS,
    KEY_OFFSET,
    MAX_IDENTITY,
    RELATIONSHIP_COLUMNS,
    RELATIONSHIP_PARAMETERS,
    identity_key,
    metadata_text,
    relationship_from_row,
    relationship_values,
    substrate_from_row,
    substrate_values,
    written_relationship,
)

__all__ = [
    "ADD_INVOCATIONS", "COLUMNS", "INSERT_MANY", "INSERT_RELATIONSHIPS", "KEY_OFFSET",
    "MAX_IDENTITY", "RELATIONSHIP_COLUMNS", "RELATIONSHIP_PARAMETERS", "SELECT",
    "SELECT_RELATIONSHIP", "TENANTS", "columns", "identity_key", "metadata_text",
    "relationship_from_row", "relationship_values", "substrate_from_row",
    "substrate_values", "written_relationship",
]  # fmt: skip

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

# Every tenant with a substrate: one index probe per tenant (a loose index scan), not a
# read of every row as DISTINCT would be.
TENANTS = """
WITH RECURSIVE seen (tenant) AS (
    SELECT MIN(tenant) FROM substrates
    UNION ALL
    SELECT (SELECT MIN(s.tenant) FROM substrates AS s WHERE s.tenant > seen.tenant)
    FROM seen WHERE seen.tenant IS NOT NULL
)
SELECT tenant FROM seen WHERE tenant IS NOT NULL
"""

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


def columns(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    """Rows turned into ``width`` column arrays, for ``unnest``."""
    return [[row[i] for row in rows] for i in range(width)]
