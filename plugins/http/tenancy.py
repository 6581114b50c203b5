"""Which tenant a request acts for: the one place that decides it."""

from __future__ import annotations

DEFAULT_TENANT = "default"


def current_tenant() -> str:
    """The tenant of the request being handled.

    Until an auth plugin supplies principals every request acts for ``default``; auth
    will derive the tenant from the authenticated principal here, and nowhere else.
    """
    return DEFAULT_TENANT
