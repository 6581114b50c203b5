"""The ``[http]`` config section."""

from __future__ import annotations

from pydantic import Field

from butterflyfx.core.config import StrictModel


class HttpSettings(StrictModel):
    docs: bool = Field(
        True, description="serve the interactive docs at /api/v1/docs (openapi.json always)"
    )
    public_status: bool = Field(
        False,
        description="serve /api/status and /api/stats without credentials (else any key)",
    )
