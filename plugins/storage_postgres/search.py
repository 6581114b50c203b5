"""``search_substrates`` in SQL: conditions that narrow, and the exact test in Python.

The SQL never drops a substrate that matches; :func:`matches` then runs on every row it
returns. Metadata is read as ``jsonb``, whose equality is looser than JSON's here (``1``
equals ``1.0``) but never stricter. ``jsonb`` refuses ``\\u0000`` and lone surrogate
escapes, which stored JSON text may hold: such rows skip the metadata conditions (the
``guarded`` CASE) and are left to Python, as are query keys and values PostgreSQL cannot
bind. Text columns cannot hold NUL or a lone surrogate, so text asked with them matches
nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from butterflyfx.core.matching import json_kind
from butterflyfx.core.store import SubstrateQuery
from butterflyfx.kernel import format_timestamp

# A \u0000 or a surrogate escape (lone or paired) in stored JSON text: jsonb may refuse it.
_RISKY_ESCAPE = r"substrates.metadata ~ '\\u(0000|[dD][89a-fA-F])'"


@dataclass
class Conditions:
    """SQL (``?`` placeholders) to AND onto ``WHERE``; ``narrow`` when some row may pass
    the SQL without matching, so it is worth reading more rows per batch."""

    sql: list[str] = field(default_factory=list)
    parameters: list[Any] = field(default_factory=list)
    narrow: bool = False

    def add(self, sql: str, *parameters: Any) -> None:
        self.sql.append(sql)
        self.parameters.extend(parameters)

    def add_json(self, sql: str, *parameters: Any) -> None:
        self.narrow = True
        self.add(f"(CASE WHEN {_RISKY_ESCAPE} THEN TRUE ELSE ({sql}) END)", *parameters)


def storable(text: str) -> bool:
    """PostgreSQL text can hold it: valid UTF-8 (no lone surrogate) and no NUL."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def conditions(query: SubstrateQuery) -> Conditions | None:
    """The narrowing conditions on ``substrates``, or None when nothing can match."""
    where = Conditions()
    if query.expression_type is not None:
        if not isinstance(query.expression_type, str) or not storable(query.expression_type):
            return None
        where.add("expression_type = ?", query.expression_type)
    for key, value in (query.metadata or {}).items():
        if not isinstance(key, str) or json_kind(value) is None:
            return None
        where.narrow = True
        if not storable(key):
            continue
        if _jsonb_safe(value):
            text = json.dumps(value, ensure_ascii=True, allow_nan=False)
            where.add_json("(substrates.metadata::jsonb -> ?::text) = ?::jsonb", key, text)
        else:
            where.add_json("jsonb_exists(substrates.metadata::jsonb, ?::text)", key)
    if query.name_prefix is not None:
        prefix = query.name_prefix
        if not isinstance(prefix, str):
            return None
        name = "substrates.metadata::jsonb -> 'name'"
        if storable(prefix):
            where.add_json(
                f"jsonb_typeof({name}) = 'string' AND left({name} #>> '{{}}', ?::int) = ?::text",
                len(prefix),
                prefix,
            )
        else:
            where.add_json(f"jsonb_typeof({name}) = 'string'")
    if query.code_contains is not None:
        part = query.code_contains
        if not isinstance(part, str) or not storable(part):
            return None
        where.add("strpos(expression_code, ?::text) > 0", part)
    # created_at is whole seconds: s >= t exactly when s >= ceil(t), s < t when s < ceil(t).
    if query.created_after is not None:
        if not isinstance(query.created_after, datetime):
            return None
        bound = _ceil_second(query.created_after)
        if bound == AFTER_ALL:
            return None
        if bound == BEFORE_ALL:
            where.add("created_at IS NOT NULL")
        else:
            where.add("created_at >= ?::text", bound)
    if query.created_before is not None:
        if not isinstance(query.created_before, datetime):
            return None
        bound = _ceil_second(query.created_before)
        if bound == BEFORE_ALL:
            return None
        if bound == AFTER_ALL:
            where.add("created_at IS NOT NULL")
        else:
            where.add("created_at < ?::text", bound)
    if query.has_relationship_type is not None:
        kind = query.has_relationship_type
        if not isinstance(kind, str) or not storable(kind):
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


def _jsonb_safe(value: object) -> bool:
    """Every string in the value (keys included) can be a jsonb string."""
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, list):
        return all(_jsonb_safe(item) for item in value)
    if isinstance(value, dict):
        return all(_jsonb_safe(k) and _jsonb_safe(v) for k, v in value.items())
    return True


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
