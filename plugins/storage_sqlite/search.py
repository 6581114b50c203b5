"""``search_substrates`` in SQL: conditions that narrow, and the exact test in Python.

The SQL conditions never drop a substrate that matches, and drop as many that do not as
SQLite can decide exactly: JSON types, strings and 64-bit integers compare in SQL; floats,
big integers, arrays and objects (equal whatever their key order), and strings SQLite's
JSON functions cannot carry faithfully (a NUL, a lone surrogate) are left to
:func:`matches`, which runs on every row the SQL returns. ``has_relationship_type`` is
exact in SQL, so :func:`matches` is given a ``has_type`` that always agrees.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from butterflyfx.core.matching import json_kind
from butterflyfx.core.store import SubstrateQuery
from butterflyfx.kernel import format_timestamp

# SQLite's JSON functions read an integer beyond 64 bits as the nearest REAL, and SQL
# compares INTEGER and REAL exactly: -2**63 - 1 reads as -2.0**63, which equals -2**63.
# Integers well inside 64 bits can never meet such a REAL, so only they compare in SQL.
_SQL_EXACT_INTEGERS = range(-(2**62), 2**62)


@dataclass
class Conditions:
    """SQL to AND onto ``WHERE`` with its parameters; ``exact`` when no row needs
    :func:`matches` afterwards."""

    sql: list[str] = field(default_factory=list)
    parameters: list[Any] = field(default_factory=list)
    exact: bool = True

    def add(self, sql: str, *parameters: Any) -> None:
        self.sql.append(sql)
        self.parameters.extend(parameters)


def bindable(text: str) -> bool:
    """SQLite can take it as a parameter (valid UTF-8, so no lone surrogate)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def faithful(text: str) -> bool:
    """Bindable, and SQLite's JSON and text functions keep it whole (no NUL)."""
    return "\x00" not in text and bindable(text)


def conditions(query: SubstrateQuery) -> Conditions | None:
    """The narrowing conditions on ``substrates``, or None when nothing can match."""
    where = Conditions()
    if query.expression_type is not None:
        if not isinstance(query.expression_type, str) or not bindable(query.expression_type):
            return None  # every stored type was bound, so it is valid UTF-8
        where.add("expression_type = ?", query.expression_type)
    for key, value in (query.metadata or {}).items():
        if not isinstance(key, str) or json_kind(value) is None:
            return None
        if not faithful(key):
            where.exact = False
            continue
        if not _metadata_condition(where, key, value):
            where.exact = False
    if query.name_prefix is not None:
        prefix = query.name_prefix
        if not isinstance(prefix, str):
            return None
        where.add("json_type(metadata, '$.name') = 'text'")
        if faithful(prefix):
            # substr, not LIKE: a % or _ in the prefix is literal, and case counts.
            where.add("substr(json_extract(metadata, '$.name'), 1, ?) = ?", len(prefix), prefix)
        else:
            where.exact = False
    if query.code_contains is not None:
        part = query.code_contains
        if not isinstance(part, str) or not bindable(part):
            return None  # stored code was bound, so it has no lone surrogate
        if faithful(part):
            where.add("instr(expression_code, ?) > 0", part)
        else:
            where.exact = False
    # created_at is whole seconds, and for a whole second s: s >= t exactly when
    # s >= ceil(t), s < t exactly when s < ceil(t).
    if query.created_after is not None:
        if not isinstance(query.created_after, datetime):
            return None
        bound = _ceil_second(query.created_after)
        if bound == AFTER_ALL:
            return None
        if bound == BEFORE_ALL:
            where.add("created_at IS NOT NULL")
        else:
            where.add("created_at >= ?", bound)
    if query.created_before is not None:
        if not isinstance(query.created_before, datetime):
            return None
        bound = _ceil_second(query.created_before)
        if bound == BEFORE_ALL:
            return None
        if bound == AFTER_ALL:
            where.add("created_at IS NOT NULL")
        else:
            where.add("created_at < ?", bound)
    if query.has_relationship_type is not None:
        kind = query.has_relationship_type
        if not isinstance(kind, str) or not bindable(kind):
            return None
        where.add(
            "(EXISTS (SELECT 1 FROM relationships AS r WHERE r.tenant = substrates.tenant"
            " AND r.source_key = substrates.identity_key AND r.relationship_type = ?)"
            " OR EXISTS (SELECT 1 FROM relationships AS r WHERE r.tenant = substrates.tenant"
            " AND r.target_key = substrates.identity_key AND r.relationship_type = ?))",
            kind,
            kind,
        )
    return where


def _metadata_condition(where: Conditions, key: str, value: object) -> bool:
    """Add the condition for ``metadata[key] == value``; True when it is exact.

    json_each rather than a JSON path: a key may hold dots, quotes or brackets, and
    SQLite's path syntax cannot quote a double quote.
    """
    entry = "EXISTS (SELECT 1 FROM json_each(substrates.metadata) AS e WHERE e.key = ?"
    # json_kind's names are json_type's names.
    if value is None or isinstance(value, bool):
        where.add(f"{entry} AND e.type = ?)", key, json_kind(value))
        return True
    if isinstance(value, int) and value in _SQL_EXACT_INTEGERS:
        where.add(f"{entry} AND e.type = 'integer' AND e.atom = ?)", key, value)
        return True
    if isinstance(value, str) and faithful(value):
        where.add(f"{entry} AND e.type = 'text' AND e.atom = ?)", key, value)
        return True
    where.add(f"{entry} AND e.type = ?)", key, json_kind(value))
    return False


BEFORE_ALL, AFTER_ALL = "before every instant", "after every instant"


def _ceil_second(moment: datetime) -> str:
    """The instant rounded up to a whole second, as stored text; or BEFORE_ALL /
    AFTER_ALL when that falls outside the years a timestamp can have."""
    try:
        utc = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        if utc.microsecond:
            utc = utc.replace(microsecond=0) + timedelta(seconds=1)
    except OverflowError:
        return BEFORE_ALL if moment.year == 1 else AFTER_ALL
    return str(format_timestamp(utc))


# -- the exact test (the same rules as storage.memory's) ----------------------------------
