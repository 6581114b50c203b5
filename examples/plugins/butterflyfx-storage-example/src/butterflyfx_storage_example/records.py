"""The journal's lines: one JSON object each, a write the store acknowledged.

A line names its operation in ``op`` and its tenant in ``tenant``::

    {"op": "substrates", "tenant": "acme", "items": [SUBSTRATE, ...]}     created
    {"op": "replace", "tenant": "acme", "item": SUBSTRATE}                metadata updated
    {"op": "delete", "tenant": "acme", "id": 42}                          with its relationships
    {"op": "invocations", "tenant": "acme", "counts": [[42, STATS], ...]} added to the totals
    {"op": "relationships", "tenant": "acme", "items": [RELATIONSHIP, ...]}
    {"op": "unrelate", "tenant": "acme", "id": 7}                         a relationship deleted

Identities are JSON integers (Python reads 64-bit ones exactly), timestamps ISO 8601 with
their fractions and offset, floats as ``repr`` writes them: what is read back is equal to
what was written, field for field. ``ensure_ascii`` turns a newline, a NUL or a lone
surrogate in a string into an escape, so a record is always one line of ASCII.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from butterflyfx.kernel import InvocationStats, Relationship, Substrate

HEADER = {"journal": "butterflyfx-storage-example", "format": 1}
OPERATIONS = frozenset(
    {"substrates", "replace", "delete", "invocations", "relationships", "unrelate"}
)

Record = dict[str, Any]


def line(record: Record) -> bytes:
    """The record as one line of the journal, newline included."""
    text = json.dumps(record, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    return text.encode("ascii") + b"\n"


def parse(raw: bytes) -> Record:
    """A journal line back into its record; ``ValueError`` saying why it is not one."""
    record = json.loads(raw)
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    if record != HEADER and record.get("op") not in OPERATIONS:
        raise ValueError(f"unknown operation {record.get('op')!r}")
    return record


def _moment(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _read_moment(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def substrate_item(substrate: Substrate) -> Record:
    return {
        "id": substrate.identity,
        "type": substrate.expression_type,
        "code": substrate.expression_code,
        "metadata": dict(substrate.metadata),
        "created": _moment(substrate.created_at),
        "updated": _moment(substrate.updated_at),
        "version": substrate.version,
    }


def substrate_from(item: Record) -> Substrate:
    return Substrate(
        item["type"],
        item["code"],
        item["id"],
        item["metadata"],
        _read_moment(item["created"]),
        _read_moment(item["updated"]),
        item["version"],
    )


def relationship_item(relationship: Relationship) -> Record:
    return {
        "source": relationship.source,
        "target": relationship.target,
        "type": relationship.relationship_type,
        "bidirectional": relationship.bidirectional,
        "weight": relationship.weight,
        "metadata": dict(relationship.metadata),
        "created": _moment(relationship.created_at),
    }


def relationship_from(item: Record) -> Relationship:
    return Relationship(
        item["source"],
        item["target"],
        item["type"],
        item["bidirectional"],
        item["weight"],
        item["metadata"],
        _read_moment(item["created"]),
    )


def stats_item(stats: InvocationStats) -> Record:
    return {
        "count": stats.count,
        "errors": stats.errors,
        "total_ms": stats.total_ms,
        "last": _moment(stats.last_invoked_at),
    }


def stats_from(item: Record) -> InvocationStats:
    return InvocationStats(
        item["count"], item["errors"], item["total_ms"], _read_moment(item["last"])
    )
