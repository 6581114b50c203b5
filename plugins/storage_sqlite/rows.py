"""The SQL that moves ``storage.sqlite``'s rows; the row format itself is the shared one in
:mod:`butterflyfx.core.relational`. SQLite takes ``?`` and ``:name`` parameters."""

from __future__ import annotations

from typing import Any

from butterflyfx.core import relational
from butterflyfx.core.relational import (  # re-exported: the store reads them from here
    COLUMNS,
    KEY_OFFSET,
    MAX_IDENTITY,
    RELATIONSHIP_COLUMNS,
    RELATIONSHIP_PARAMETERS,
    identity_key,
    metadata_text,
    relationship_from_row,
    substrate_from_row,
    written_relationship,
)
from butterflyfx.kernel import Relationship, Substrate

__all__ = [
    "ADD_INVOCATIONS", "COLUMNS", "INSERT", "INSERT_RELATIONSHIP", "KEY_OFFSET",
    "MAX_IDENTITY", "RELATIONSHIP_COLUMNS", "RELATIONSHIP_PARAMETERS", "SELECT",
    "SELECT_RELATIONSHIP", "TENANTS", "identity_key", "metadata_text", "relationship_from_row",
    "relationship_values", "substrate_from_row", "substrate_values", "written_relationship",
]  # fmt: skip

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


def substrate_values(tenant: str, substrate: Substrate) -> tuple[Any, ...]:
    """The parameters of INSERT: the tenant, then the shared row of the substrate."""
    return (tenant, *relational.substrate_values(substrate))


def relationship_values(
    tenant: str, relationship: Relationship, source: int, target: int
) -> dict[str, Any]:
    """The named parameters of ``INSERT_RELATIONSHIP``; ``source`` and ``target`` are keys."""
    return {"tenant": tenant, **relational.relationship_values(relationship, source, target)}
