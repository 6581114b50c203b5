"""``ratelimit``: per-tier request limits with the ``limits`` library (moving window).

A request with a principal counts against its tenant's budget, whose size its tier names;
a request without one (open routes, failed authentication) counts against its client
address's ``anonymous`` budget. Limited answers carry ``X-RateLimit-Limit``,
``-Remaining`` and ``-Reset`` (epoch seconds); a refusal is a 429 with ``Retry-After``. An
unlimited tier (enterprise by default) is not counted and gets no such headers.

Config section ``[ratelimit]``::

    storage = "redis://127.0.0.1:6379/0"   # default "memory://": this process's counters
    strategy = "moving-window"              # or "fixed-window", "sliding-window-counter"
    tiers = { free = "100/minute", pro = "1000/minute", enterprise = "unlimited" }
    anonymous = "60/minute"                 # per client address, before authentication
    key_prefix = "butterflyfx"              # of every key in the storage

    [ratelimit.on_storage_error]            # while Redis does not answer: per kind of request,
    read = "fail_open"                      # pass uncounted ("fail_open") or refuse with 503
    invoke = "fail_open"                    # and Retry-After ("fail_closed")
    write = "fail_closed"
    admin = "fail_closed"

Each worker process counts in its own memory with ``memory://``, which would multiply
every limit by the number of workers: with ``workers > 1`` start-up refuses it.

While Redis does not answer, each request is passed uncounted or refused with a 503
(``rate-limit-unavailable``, not a 429: the client did nothing wrong) as
``on_storage_error`` says for what it does, and readiness reports the plugin ``degraded``
with that policy (``down`` if it refuses everything) until Redis answers again.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

from butterflyfx.core.auth import Action, Caller, Principal, RateLimit, cannot_count
from butterflyfx.core.health import PluginHealth
from butterflyfx.core.hookspecs import hookimpl
from butterflyfx.core.plugins import PluginError

from .limiter import RequestLimiter
from .settings import SECTION, RateLimitSettings, masked_url, parse_limit

if TYPE_CHECKING:
    from butterflyfx.core.context import ServerContext

__all__ = ["SECTION", "RateLimitSettings", "RequestLimiter", "masked_url", "parse_limit"]

SHARED_STORAGE = "redis://127.0.0.1:6379/0"

# One limiter per started context (a worker process has one; tests may run several).
_running: dict[int, tuple[weakref.ref[ServerContext], RequestLimiter]] = {}


def settings_of(ctx: ServerContext) -> RateLimitSettings:
    section = ctx.section(SECTION)
    return section if isinstance(section, RateLimitSettings) else RateLimitSettings()


def limiter_of(ctx: ServerContext) -> RequestLimiter | None:
    entry = _running.get(id(ctx))
    if entry is None or entry[0]() is not ctx:
        return None
    return entry[1]


@hookimpl
def butterflyfx_config_model() -> tuple[str, type[RateLimitSettings]]:
    return SECTION, RateLimitSettings


@hookimpl
async def butterflyfx_startup(ctx: ServerContext) -> None:
    settings = settings_of(ctx)
    workers = ctx.settings.workers
    if workers > 1 and settings.storage_kind == "memory":
        raise PluginError(
            f'plugin {SECTION!r}: with {workers} workers, storage = "memory://" would keep '
            f"separate counters in each worker and multiply every tier's limit by {workers}; "
            f'share them in Redis: set [ratelimit] storage = "{SHARED_STORAGE}" (or the '
            "environment variable BUTTERFLYFX_RATELIMIT__STORAGE), or run one worker"
        )
    _running[id(ctx)] = (weakref.ref(ctx), await RequestLimiter.open(settings))


@hookimpl
async def butterflyfx_shutdown(ctx: ServerContext) -> None:
    limiter = limiter_of(ctx)
    _running.pop(id(ctx), None)
    if limiter is not None:
        await limiter.close()


@hookimpl
async def butterflyfx_rate_limit(
    principal: Principal | None, caller: Caller, action: Action, ctx: ServerContext
) -> RateLimit | None:
    limiter = limiter_of(ctx)
    if limiter is None:
        raise cannot_count(action, "the rate limiter has not started")
    return await limiter.count(principal, caller.client, action)


@hookimpl
async def butterflyfx_health(ctx: ServerContext) -> PluginHealth:
    limiter = limiter_of(ctx)
    if limiter is None:
        kind = settings_of(ctx).storage_kind
        return PluginHealth("down", {"storage": kind, "error": "the rate limiter is not started"})
    return await limiter.health()
