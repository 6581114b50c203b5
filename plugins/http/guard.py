"""Every request passes the server's guard (``ctx.guard``) before its handler runs.

A handler says what it does with ``butterflyfx.core.auth.requires`` (``read``, ``write``,
``invoke`` or ``admin``) or that it is open to anyone with ``open_route`` (any plugin's
blueprint can use them: they only mark the function). A handler that says
nothing (another plugin's, say) needs ``read`` for GET and HEAD and ``write`` otherwise:
nothing is open by accident. The principal the guard admits is the request's, and its
tenant is the only tenant the handler may touch (:func:`current_principal`).
"""

from __future__ import annotations

from typing import Literal

from quart import Quart, Response, current_app, g, request

from butterflyfx.core.auth import ANONYMOUS, ATTRIBUTE, OPEN, Action, Caller, Principal
from butterflyfx.core.context import ServerContext
from butterflyfx.core.problems import ProblemError

from .edge import PRINCIPAL_KEY, ROUTE_KEY

READING = frozenset({"GET", "HEAD", "OPTIONS"})


def current_principal() -> Principal:
    """The principal the guard admitted for this request."""
    return getattr(g, "principal", None) or ANONYMOUS


def caller_of_request() -> Caller:
    scheme, token = None, None
    authorization = request.headers.get("Authorization", "")
    if authorization:
        given_scheme, _, credentials = authorization.partition(" ")
        scheme = given_scheme.lower()
        if scheme == "bearer" and credentials.strip():
            token = credentials.strip()
    return Caller(
        method=request.method,
        path=request.path,
        client=request.remote_addr or "unknown",
        scheme=scheme,
        token=token,
        headers=request.headers,  # werkzeug's Headers: looked up case-insensitively
    )


def install(app: Quart, ctx: ServerContext, open_paths: frozenset[str]) -> None:
    """Run the guard before every request; add the rate limit headers to every answer."""

    @app.before_request
    async def admit() -> None:
        rule = request.url_rule
        request.scope[ROUTE_KEY] = rule.rule if rule is not None else None
        endpoint = request.endpoint
        if endpoint is None:  # no route matched: the 404 or 405 comes next
            action: Action | Literal["authenticated"] | None = None
        else:
            marked = getattr(current_app.view_functions[endpoint], ATTRIBUTE, None)
            if marked == OPEN or request.path in open_paths:
                action = None
            elif marked is not None:
                action = marked
            else:
                action = "read" if request.method in READING else "write"
        try:
            admission = await ctx.guard.admit(caller_of_request(), action)
        except ProblemError as refused:  # a 403 or 429 still logs whose request it was
            if refused.principal is not None:
                request.scope[PRINCIPAL_KEY] = refused.principal
            raise
        g.principal = admission.principal if action is not None else None
        g.rate = admission.rate
        if g.principal is not None:
            request.scope[PRINCIPAL_KEY] = g.principal

    @app.after_request
    async def report_rate(response: Response) -> Response:
        rate = getattr(g, "rate", None)
        if rate is not None:
            for name, value in rate.headers().items():
                response.headers.setdefault(name, value)
        return response
