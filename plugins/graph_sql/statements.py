"""The statements ``graph.sql`` runs, over the shared ``relationships`` table.

Written with ``?`` placeholders in SQL that SQLite and PostgreSQL both accept (CAST, CASE,
IN lists, WITH RECURSIVE ... UNION): no function of either alone. Identities are stored as
``identity - 2**63`` (signed BIGINT keys in identity order), relationship types in lower
case, ``bidirectional`` as 0 or 1.

Every walk is one of two OR'ed branches per direction, each leading with ``tenant`` and
one end, so each branch is a search of ``relationships_by_source`` or
``relationships_by_target`` (SQLite: MULTI-INDEX OR; PostgreSQL: BitmapOr).
"""

from __future__ import annotations

from functools import lru_cache

from butterflyfx.core.graph import GraphDirection

# Nodes per IN list: far below SQLite's 32,766 and PostgreSQL's 65,535 parameters.
CHUNK = 500

# Per direction: the branch matching relationships whose source or target is the node
# (``{n}`` is "= r.node" or an IN list), and the far end a walk goes on to.
_BRANCHES: dict[GraphDirection, tuple[str, str]] = {
    "out": ("e.source_key {n}", "e.target_key {n} AND e.bidirectional = 1"),
    "in": ("e.target_key {n}", "e.source_key {n} AND e.bidirectional = 1"),
    "both": ("e.source_key {n}", "e.target_key {n}"),
}
_NEXT: dict[GraphDirection, str] = {
    "out": "CASE WHEN e.source_key = r.node THEN e.target_key ELSE e.source_key END",
    "in": "CASE WHEN e.target_key = r.node THEN e.source_key ELSE e.target_key END",
    "both": "CASE WHEN e.source_key = r.node THEN e.target_key ELSE e.source_key END",
}
STEP_COLUMNS = "e.identity_key, e.source_key, e.target_key, e.bidirectional, e.weight"
RELATIONSHIP_COLUMNS = (
    "e.source_key, e.target_key, e.relationship_type, e.bidirectional, e.weight, "
    "e.metadata, e.created_at"
)


def _marks(count: int) -> str:
    return ", ".join("?" * count)


def _types(count: int | None) -> str:
    return "" if count is None else f" AND e.relationship_type IN ({_marks(count)})"


def _near(direction: GraphDirection, match: str, type_count: int | None) -> str:
    """The join or WHERE condition matching ``direction``'s relationships of a node.

    Parameters: tenant, types, tenant, types (plus whatever ``match`` holds, in each)."""
    first, second = _BRANCHES[direction]
    kinds = _types(type_count)
    return (
        f"(e.tenant = ? AND {first.format(n=match)}{kinds}) "
        f"OR (e.tenant = ? AND {second.format(n=match)}{kinds})"
    )


@lru_cache(maxsize=128)
def reach(
    direction: GraphDirection, type_count: int | None, dialect: str, *, parents: bool = False
) -> str:
    """Every (node key, depth) a walk from the start reaches within the depth, as rows;
    with ``parents``, (node key, depth, key of the node it was reached from).

    ``UNION`` keeps one row per (node, depth) (per parent, with ``parents``): a node is
    walked on from once per depth it is reached at, so the rows are at most
    (nodes reached) x (depth + 1) (x parents), and the recursion ends at the depth
    whatever the cycles. Rows come level by level (SQLite's queue is first in, first out;
    PostgreSQL's iterations are the levels), and the row limit stops the walk itself:
    SQLite honours a LIMIT inside the recursive query, PostgreSQL evaluates a WITH query
    only as far as its reader fetches.

    Parameters: start key, tenant, types, tenant, types, max depth, row limit.
    """
    inner, outer = ("LIMIT ?", "") if dialect == "sqlite" else ("", " LIMIT ?")
    columns, first, step = ("node, depth", "", "")
    if parents:
        columns, first, step = ("node, depth, parent", ", CAST(NULL AS BIGINT)", ", r.node")
    return (
        f"WITH RECURSIVE reach({columns}) AS ("
        f" SELECT CAST(? AS BIGINT), 0{first}"
        " UNION"
        f" SELECT {_NEXT[direction]}, r.depth + 1{step}"
        f" FROM reach AS r JOIN relationships AS e ON {_near(direction, '= r.node', type_count)}"
        f" WHERE r.depth < ? {inner}"
        f") SELECT {columns} FROM reach{outer}"
    )


@lru_cache(maxsize=256)
def steps(direction: GraphDirection, node_count: int, type_count: int | None) -> str:
    """The relationships a walk in ``direction`` follows from any of ``node_count`` nodes.

    Parameters: tenant, node keys, types, tenant, node keys, types."""
    match = f"IN ({_marks(node_count)})"
    return (
        f"SELECT {STEP_COLUMNS} FROM relationships AS e WHERE {_near(direction, match, type_count)}"
    )


@lru_cache(maxsize=64)
def by_identity(count: int) -> str:
    """Relationships by identity key. Parameters: tenant, identity keys."""
    return (
        f"SELECT e.identity_key, {RELATIONSHIP_COLUMNS} FROM relationships AS e"
        f" WHERE e.tenant = ? AND e.identity_key IN ({_marks(count)})"
    )


@lru_cache(maxsize=64)
def from_sources(count: int, type_count: int | None) -> str:
    """Relationships whose source is one of ``count`` nodes.

    Parameters: tenant, node keys, types."""
    return (
        f"SELECT e.identity_key, {RELATIONSHIP_COLUMNS} FROM relationships AS e"
        f" WHERE e.tenant = ? AND e.source_key IN ({_marks(count)}){_types(type_count)}"
    )


PROBE = "SELECT COUNT(*) FROM relationships AS e WHERE e.tenant = ? AND e.identity_key = ?"
