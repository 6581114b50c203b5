"""The ``[metrics]`` config section: who may scrape."""

from __future__ import annotations

from pydantic import Field

from butterflyfx.core.config import StrictModel

SECTION = "metrics"


class MetricsSettings(StrictModel):
    """The ``[metrics]`` section."""

    public: bool = Field(
        default=False,
        description="serve /api/v1/metrics and /metrics without credentials; false needs a "
        "principal with the admin scope",
    )
