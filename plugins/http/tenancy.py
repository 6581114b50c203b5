"""Which tenant a request acts for: the one place that decides it."""

from __future__ import annotations

from .guard import current_principal


def current_tenant() -> str:
    """The tenant of the principal the guard admitted: a handler sees no other tenant."""
    return current_principal().tenant
