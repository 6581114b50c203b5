"""Whether a substrate matches a :class:`SubstrateQuery`, decided in Python.

The one statement of the search rules every store keeps: ``storage.memory`` filters with
it alone; ``storage.sqlite`` narrows rows in SQL and decides each one with it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from butterflyfx.kernel import Substrate

from .store import SubstrateQuery


def json_kind(value: object) -> str | None:
    """The JSON kind of a value, or None when it is not one. bool before int: True is
    an int in Python but not in JSON."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "real"
    if isinstance(value, str):
        return "text"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return None


def same_json(a: object, b: object) -> bool:
    """Equal as JSON: 1, 1.0, true and "1" all differ; objects ignore key order.
    Iterative, so deep nesting cannot overflow the stack."""
    pending = [(a, b)]
    while pending:
        x, y = pending.pop()
        kind = json_kind(x)
        if kind is None or kind != json_kind(y):
            return False
        if isinstance(x, Mapping) and isinstance(y, Mapping):
            if x.keys() != y.keys():
                return False
            pending.extend((x[k], y[k]) for k in x)
        elif isinstance(x, list | tuple) and isinstance(y, list | tuple):
            if len(x) != len(y):
                return False
            pending.extend(zip(x, y, strict=True))
        elif x != y:
            return False
    return True


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def matches(query: SubstrateQuery, substrate: Substrate, has_type: Callable[[str], bool]) -> bool:
    """Every filter of ``query`` holds; ``has_type(t)`` says whether the substrate is an
    end of a relationship of type ``t``. A filter of the wrong Python type matches nothing."""
    if query.expression_type is not None and substrate.expression_type != query.expression_type:
        return False
    metadata = substrate.metadata
    for key, value in (query.metadata or {}).items():
        if not isinstance(key, str) or key not in metadata:
            return False
        if not same_json(metadata[key], value):
            return False
    if query.name_prefix is not None:
        name = metadata.get("name")
        if not isinstance(query.name_prefix, str) or not isinstance(name, str):
            return False
        if not name.startswith(query.name_prefix):
            return False
    if query.code_contains is not None:
        if not isinstance(query.code_contains, str):
            return False
        if query.code_contains not in substrate.expression_code:
            return False
    created = substrate.created_at
    for bound, keep in ((query.created_after, True), (query.created_before, False)):
        if bound is None:
            continue
        if not isinstance(bound, datetime) or created is None:
            return False
        if (_utc(created) >= _utc(bound)) is not keep:
            return False
    if query.has_relationship_type is not None:
        kind = query.has_relationship_type
        if not isinstance(kind, str) or not has_type(kind):
            return False
    return True
