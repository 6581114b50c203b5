"""Substrates: named, content-addressed expressions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .expressions import DEFAULT_LIMITS, ExpressionLanguage, Limits, substrate_identity
from .identity import format_id
from .json_values import JSONValue


def format_timestamp(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with a ``Z``, to the second, as in the API's ``created_at``."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    elif moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    # isoformat pads the year to four digits (strftime's %Y does not) and is twice as fast
    # as strftime; it runs twice for every substrate the API returns. It ends in "+00:00".
    return moment.isoformat(timespec="seconds")[:-6] + "Z"


def parse_timestamp(text: str | None) -> datetime | None:
    """The inverse of ``format_timestamp``; accepts any ISO 8601 form ``datetime`` reads."""
    if text is None:
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


@dataclass(frozen=True)
class Substrate:
    """An expression with its identity and metadata. Equal expressions share an identity."""

    expression_type: str
    expression_code: str
    identity: int
    metadata: Mapping[str, JSONValue] = field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    version: int = 1

    @property
    def substrate_id(self) -> str:
        return format_id(self.identity)

    @classmethod
    def create(
        cls,
        expression_type: str,
        expression_code: str,
        metadata: Mapping[str, JSONValue] | None = None,
        *,
        created_at: datetime | None = None,
        updated_at: datetime | None = None,
        version: int = 1,
        limits: Limits = DEFAULT_LIMITS,
        languages: Mapping[str, ExpressionLanguage] | None = None,
    ) -> Substrate:
        """Check the expression, derive its identity, and build the substrate."""
        identity = substrate_identity(expression_type, expression_code, limits, languages)
        return cls(
            expression_type,
            expression_code,
            identity,
            dict(metadata or {}),
            created_at,
            updated_at if updated_at is not None else created_at,
            version,
        )
