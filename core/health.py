"""Plugin states, from which ``/api/v1/health`` is computed."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["ok", "degraded", "down"]


@dataclass(frozen=True)
class PluginHealth:
    status: Status
    detail: Mapping[str, Any] = field(default_factory=dict)


def overall(states: Mapping[str, PluginHealth], optional: Collection[str] = ()) -> Status:
    """Down if any plugin is down, degraded if any is degraded, else ok.

    A plugin in ``optional`` (``required = false``) being down only degrades the server.
    """
    values = {
        "degraded" if state.status == "down" and name in optional else state.status
        for name, state in states.items()
    }
    if "down" in values:
        return "down"
    if "degraded" in values:
        return "degraded"
    return "ok"
