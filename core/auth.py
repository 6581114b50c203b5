"""Who is asking, and may they: principals, the guard every request passes, rate limits.

An interface (the HTTP plugin today) describes each request as a :class:`Caller` and asks
:meth:`Guard.admit` before it acts. The guard asks the plugins, through three hooks:

- ``butterflyfx_authenticate(caller, ctx)`` (rule: first non-None) turns credentials into
  a :class:`Principal`. A plugin returns None for credentials it does not recognise and
  raises :func:`unauthenticated` for ones it recognises but refuses (a revoked key, an
  expired token), so the client hears why.
- ``butterflyfx_authorize(principal, action, caller, ctx)`` (rule: all) may answer False
  (refuse), True (allow) or None (no opinion). Any False refuses with 403; else any True
  allows; when every plugin abstains the principal needs ``action`` among its scopes.
- ``butterflyfx_rate_limit(principal, caller, action, ctx)`` (rule: all) counts the
  request and returns a :class:`RateLimit` (or None when it does not limit this request).
  The most restrictive answer is reported; any refusal is a 429. A limiter that cannot
  count (its storage is away) and whose policy refuses ``action`` then raises
  :func:`cannot_count`: a 503, since the client did nothing wrong.

Open routes (health, docs, login) are still rate limited, keyed by the client address.
A server with no plugin implementing ``butterflyfx_authenticate`` is open: every request
acts as :data:`ANONYMOUS` (tenant ``default``, every scope), and start-up logs a warning.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from .plugins import await_maybe, call
from .problems import Problem, ProblemError

if TYPE_CHECKING:
    from .context import ServerContext

Action = Literal["read", "write", "invoke", "admin"]
ACTIONS: tuple[Action, ...] = ("read", "write", "invoke", "admin")
TIERS = ("free", "pro", "enterprise")
DEFAULT_TENANT = "default"


READING_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
COUNTING_RETRY_AFTER = 5  # seconds a client refused by a limiter that cannot count waits


F = TypeVar("F", bound=Callable[..., Any])
ATTRIBUTE = "butterflyfx_action"  # what a handler is marked with
OPEN = "open"
AUTHENTICATED = "authenticated"  # any principal, whatever its scopes


def requires(action: Action) -> Callable[[F], F]:
    """Mark a route handler as taking ``action``: callers need a principal allowed to.
    Interfaces read the mark; a handler without one needs ``read`` to read, else ``write``."""
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {', '.join(ACTIONS)}, not {action!r}")

    def mark(handler: F) -> F:
        setattr(handler, ATTRIBUTE, action)
        return handler

    return mark


def any_principal(handler: F) -> F:
    """Mark a route handler as needing credentials, whatever their scopes (a status page)."""
    setattr(handler, ATTRIBUTE, AUTHENTICATED)
    return handler


def open_route(handler: F) -> F:
    """Mark a route handler as open: no credentials needed (still rate limited by address)."""
    setattr(handler, ATTRIBUTE, OPEN)
    return handler


@dataclass(frozen=True)
class Principal:
    """Who a request acts for: the tenant whose objects it sees, the subject (a key id, a
    user name), the tier its rate limit comes from, and the actions it may take."""

    tenant: str
    subject: str
    tier: str = "free"
    scopes: frozenset[str] = frozenset()
    authenticated_by: str = ""  # the plugin that vouched for it

    def may(self, action: str) -> bool:
        return action in self.scopes


ANONYMOUS = Principal(DEFAULT_TENANT, "anonymous", "enterprise", frozenset(ACTIONS), "none")


@dataclass(frozen=True)
class Caller:
    """A request as the guard sees it, whatever the interface.

    ``token`` is the credential after ``Authorization: Bearer`` (None when absent or of
    another scheme; ``scheme`` says which). ``client`` is the peer address. ``headers`` are
    looked up by lower-case name (``caller.headers.get("x-proxy-user")``).
    """

    method: str
    path: str
    client: str
    scheme: str | None = None
    token: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RateLimit:
    """One limiter's verdict on one request: ``limit`` per ``window`` seconds, ``remaining``
    after this request, ``reset`` the epoch second when a slot frees (or the window ends)."""

    allowed: bool
    limit: int
    remaining: int
    reset: int
    window: int = 60

    def headers(self) -> dict[str, str]:
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(self.remaining, 0)),
            "X-RateLimit-Reset": str(self.reset),
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, math.ceil(self.reset - time.time())))
        return headers


@dataclass(frozen=True)
class Admission:
    """What :meth:`Guard.admit` decided: the principal, and the limit to report."""

    principal: Principal
    rate: RateLimit | None = None


def unauthenticated(detail: str, **extra: Any) -> ProblemError:
    """401 with ``WWW-Authenticate: Bearer``: the credentials are missing or refused."""
    error = "invalid_token" if extra.pop("invalid", True) else None
    challenge = 'Bearer realm="butterflyfx"' + (f', error="{error}"' if error else "")
    return ProblemError(
        Problem(
            401, "unauthenticated", "Unauthenticated", detail, extra,
            headers={"WWW-Authenticate": challenge},
        )
    )  # fmt: skip


def forbidden(action: str, principal: Principal) -> ProblemError:
    return ProblemError(
        Problem(
            403, "forbidden", "Forbidden",
            f"this {principal.authenticated_by or 'principal'} credential may not {action}; "
            f"its scopes: {', '.join(sorted(principal.scopes)) or 'none'}",
            {"action": action, "scopes": sorted(principal.scopes)},
        )
    )  # fmt: skip


def cannot_count(
    action: Action, detail: str, retry_after: int = COUNTING_RETRY_AFTER
) -> ProblemError:
    """503 ``rate-limit-unavailable`` with ``Retry-After``: the limiter cannot count this
    request now (its storage does not answer) and its policy refuses ``action`` uncounted.
    Not a 429: the client is within its limit as far as anyone knows."""
    return ProblemError(
        Problem(
            503, "rate-limit-unavailable", "Rate limiting unavailable",
            f"{detail}; retry after {retry_after} s",
            {"action": action, "retry_after": retry_after},
            headers={"Retry-After": str(retry_after)},
        )
    )  # fmt: skip


def counted_as(action: Action | Literal["authenticated"] | None, caller: Caller) -> Action:
    """What a request does, as limiters see it: the route's action; for an open route or
    one any principal may use, ``read`` for GET, HEAD and OPTIONS, else ``write`` (a login)."""
    if action is None or action == "authenticated":  # spelled out so the type narrows
        return "read" if caller.method.upper() in READING_METHODS else "write"
    return action


def too_many(rate: RateLimit, detail: str | None = None) -> ProblemError:
    return ProblemError(
        Problem(
            429, "rate-limited", "Too many requests",
            detail or f"at most {rate.limit} requests per {rate.window} s; "
            f"retry after {rate.headers()['Retry-After']} s",
            {"limit": rate.limit, "window_seconds": rate.window},
            headers=rate.headers(),
        )
    )  # fmt: skip


class Guard:
    """Authenticates, authorizes and rate-limits requests through the plugins' hooks."""

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        hook = ctx.plugins.hook
        # pluggy calls the last registered first: reversed() walks them in call order.
        self._authenticators = list(reversed(hook.butterflyfx_authenticate.get_hookimpls()))
        self._authorizers = list(reversed(hook.butterflyfx_authorize.get_hookimpls()))
        self._limiters = list(reversed(hook.butterflyfx_rate_limit.get_hookimpls()))

    @property
    def open(self) -> bool:
        """True when no plugin authenticates: every request is :data:`ANONYMOUS`."""
        return not self._authenticators

    async def authenticate(self, caller: Caller) -> Principal:
        if self.open:
            return ANONYMOUS
        # Plugins are asked even without a bearer token: one may trust a client
        # certificate or a header its proxy sets (caller.headers).
        for implementation in self._authenticators:
            found = await await_maybe(call(implementation, caller=caller, ctx=self.ctx))
            if found is not None:
                if not isinstance(found, Principal):
                    raise TypeError(
                        f"plugin {implementation.plugin_name!r}: butterflyfx_authenticate "
                        f"returned {type(found).__name__}, not a Principal or None"
                    )
                return found
        if caller.token is None:
            raise unauthenticated(
                "this endpoint needs credentials: send Authorization: Bearer <API key or token>",
                invalid=False,
            )
        raise unauthenticated("the credentials were not recognised")

    async def authorize(self, principal: Principal, action: Action, caller: Caller) -> None:
        verdicts = [
            await await_maybe(
                call(implementation, principal=principal, action=action, caller=caller,
                     ctx=self.ctx)
            )
            for implementation in self._authorizers
        ]  # fmt: skip
        if any(verdict is False for verdict in verdicts):
            raise forbidden(action, principal)
        if any(verdict is True for verdict in verdicts) or principal.may(action):
            return
        raise forbidden(action, principal)

    async def limit(
        self, principal: Principal | None, caller: Caller, action: Action = "read"
    ) -> RateLimit | None:
        """Count the request with every limiter; raise 429 when one refuses it (or the 503
        of :func:`cannot_count` when one cannot count it and refuses ``action`` uncounted)."""
        tightest: RateLimit | None = None
        for implementation in self._limiters:
            rate = await await_maybe(
                call(implementation, principal=principal, caller=caller, action=action,
                     ctx=self.ctx)
            )  # fmt: skip
            if rate is None:
                continue
            if not rate.allowed:
                raise too_many(rate)
            if tightest is None or rate.remaining < tightest.remaining:
                tightest = rate
        return tightest

    async def admit(
        self, caller: Caller, action: Action | Literal["authenticated"] | None
    ) -> Admission:
        """Decide on one request; ``action`` None marks an open route (no credentials), and
        ``"authenticated"`` a route any principal may use, whatever its scopes."""
        counted = counted_as(action, caller)
        if action is None:
            return Admission(ANONYMOUS, await self.limit(None, caller, counted))
        try:
            principal = await self.authenticate(caller)
        except ProblemError:
            await self.limit(None, caller, counted)  # failed attempts count against the address
            raise
        try:
            return await self._admit_principal(principal, caller, action, counted)
        except ProblemError as refused:
            refused.principal = principal  # the access log names who was refused
            raise

    async def _admit_principal(
        self,
        principal: Principal,
        caller: Caller,
        action: Action | Literal["authenticated"],
        counted: Action,
    ) -> Admission:
        rate = await self.limit(principal, caller, counted)
        if action == "authenticated":  # AUTHENTICATED, spelled out so the type narrows
            return Admission(principal, rate)
        try:
            await self.authorize(principal, action, caller)
        except ProblemError as refused:
            if rate is None:
                raise
            problem = refused.problem
            raise ProblemError(
                replace(problem, headers={**rate.headers(), **problem.headers})
            ) from None
        return Admission(principal, rate)
