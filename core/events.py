"""Events plugins hear through ``butterflyfx_on_event``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

SUBSTRATE_CREATED = "substrate.created"
SUBSTRATE_DELETED = "substrate.deleted"
SUBSTRATE_INVOKED = "substrate.invoked"  # succeeded; data: invocation_time_ms
# The expression failed or hit a limit (never bad input: that is refused before it runs).
# data: error_type (the kernel's, e.g. ZeroDivisionError, or EvaluationLimitExceeded),
# limit (for a limit), invocation_time_ms; never the parameters or the message
SUBSTRATE_INVOCATION_FAILED = "substrate.invocation_failed"
SUBSTRATE_UPDATED = "substrate.updated"
# data: source, target (identities as ints), relationship_type, bidirectional, weight
RELATIONSHIP_CREATED = "relationship.created"
RELATIONSHIP_DELETED = "relationship.deleted"


@dataclass(frozen=True)
class Event:
    """Something that happened to one object of one tenant."""

    kind: str
    tenant: str
    subject_id: str
    data: Mapping[str, Any] = field(default_factory=dict)
    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "tenant": self.tenant,
            "subject_id": self.subject_id,
            "data": dict(self.data),
            "at": self.at.isoformat().replace("+00:00", "Z"),
        }
