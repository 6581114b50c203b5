"""How substrates and relationships become Redis hash fields and back.

Identities are 16 lowercase hex digits, so the lexicographic order of a sorted set of
them is their numeric order. Text goes through JSON with ``ensure_ascii`` (a lone
surrogate or a NUL survives); times are ISO 8601 in UTC to the second, "" for none.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from butterflyfx.kernel import (
    JSONValue,
    Relationship,
    Substrate,
    format_timestamp,
    parse_timestamp,
)

MAX_IDENTITY = 2**64 - 1


def hex_of(identity: int) -> str | None:
    """The key form of an identity, or None for a number no identity can have."""
    if isinstance(identity, int) and 0 <= identity <= MAX_IDENTITY:
        return f"{identity:016x}"
    return None


def tenant_base(prefix: str, tenant: str) -> str:
    """``{prefix}:{tenant}`` with the tenant percent-encoded (no ``:`` inside it)."""
    return f"{prefix}:{quote(tenant.encode('utf-8', 'surrogatepass'), safe='')}"


def after_bound(after: int | None) -> str:
    """The ZRANGEBYLEX lower bound for identities greater than ``after``."""
    return "-" if after is None or after < 0 else f"({after:016x}"


def text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=True, allow_nan=False, separators=(",", ":"))


def _time(value: bytes | str) -> Any:
    raw = value.decode() if isinstance(value, bytes) else value
    return parse_timestamp(raw) if raw else None


def _stamp(moment: Any) -> str:
    return format_timestamp(moment) or ""


def substrate_fields(substrate: Substrate) -> list[str]:
    """The values of SUBSTRATE_FIELDS (t, c, m, ca, ua, v)."""
    return [
        text(substrate.expression_type),
        text(substrate.expression_code),
        text(dict(substrate.metadata)),
        _stamp(substrate.created_at),
        _stamp(substrate.updated_at),
        str(int(substrate.version)),
    ]


def metadata_field(metadata: Mapping[str, JSONValue]) -> str:
    return text(dict(metadata))


def stamp(moment: Any) -> str:
    return _stamp(moment)


def substrate_from(identity: int, fields: Sequence[Any]) -> Substrate:
    kind, code, metadata, created, updated, version = fields
    return Substrate(
        json.loads(kind),
        json.loads(code),
        identity,
        json.loads(metadata),
        _time(created),
        _time(updated),
        int(version),
    )


def relationship_doc(relationship: Relationship) -> str:
    return text(
        [
            relationship.source,
            relationship.target,
            relationship.relationship_type,
            bool(relationship.bidirectional),
            None if relationship.weight is None else float(relationship.weight),
            dict(relationship.metadata),
            format_timestamp(relationship.created_at),
        ]
    )


def relationship_from(doc: bytes | str) -> Relationship:
    source, target, kind, bidirectional, weight, metadata, created = json.loads(doc)
    return Relationship(
        source,
        target,
        kind,
        bidirectional,
        weight,
        metadata,
        None if created is None else parse_timestamp(created),
    )
