"""The body of an event, as the ``events`` plugin streams it on ``GET /api/v1/events``.

Each event of the subscriber's tenant is one WebSocket text frame holding one JSON object;
the client parses each frame into :class:`EventBody`. The kinds are spelled out here so
that the client's model stands without the server's core; a test compares them with the
plugin's. A kind this list does not know still parses (``kind`` is a string), so a client
keeps working when a newer server sends a new kind.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

EVENT_KINDS = (
    "substrate.created",
    "substrate.updated",
    "substrate.deleted",
    "substrate.invoked",
    "substrate.invocation_failed",
    "relationship.created",
    "relationship.deleted",
)


class EventBody(BaseModel):
    """Something that happened to one substrate or relationship of the caller's tenant."""

    kind: str = Field(
        examples=["substrate.created"], description=f"One of {', '.join(EVENT_KINDS)}"
    )
    tenant: str = Field(examples=["acme"])
    subject_id: str = Field(
        examples=["0x53D903923C790CDC"], description="The substrate or relationship it happened to"
    )
    data: dict[str, Any] = Field(
        examples=[{"expression_type": "lambda"}],
        description="Per kind (see docs/plugins.md, butterflyfx_on_event); never parameters",
    )
    at: str = Field(examples=["2026-02-26T10:00:00.123456Z"], description="When, in UTC")
