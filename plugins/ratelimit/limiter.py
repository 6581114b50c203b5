"""Counting requests with the ``limits`` library's async API, per tenant or client address."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import Any

import redis.asyncio
import structlog
from limits import RateLimitItem
from limits.aio.storage import Storage
from limits.aio.strategies import (
    FixedWindowRateLimiter,
    MovingWindowRateLimiter,
    RateLimiter,
    SlidingWindowCounterRateLimiter,
)
from limits.errors import StorageError
from limits.storage import storage_from_string
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from butterflyfx.core.auth import Action, Principal, RateLimit, cannot_count
from butterflyfx.core.health import PluginHealth
from butterflyfx.core.plugins import PluginError

from .settings import FAIL_OPEN, FREE, SECTION, RateLimitSettings, masked_url, parse_limit

log = structlog.get_logger("butterflyfx.ratelimit")

REDIS_TIMEOUT = 5.0  # seconds; a Redis that hangs must not hold requests forever
STORAGE_FAILURES = (StorageError, RedisError, OSError, TimeoutError)
STRATEGIES: dict[str, Callable[[Storage], RateLimiter]] = {
    "moving-window": MovingWindowRateLimiter,
    "fixed-window": FixedWindowRateLimiter,
    "sliding-window-counter": SlidingWindowCounterRateLimiter,
}


class RequestLimiter:
    """One process's limiter: a principal's tenant is counted against its tier's limit, a
    request without a principal against ``anonymous`` by client address. Open it with
    :meth:`open`; with Redis, every worker sharing the URL shares the counters."""

    def __init__(
        self,
        settings: RateLimitSettings,
        storage: Storage,
        client: redis.asyncio.Redis | None = None,
    ) -> None:
        self.settings = settings
        self.storage = storage
        self.client = client  # the connection pool the Redis storage uses; None for memory
        self.limiter = STRATEGIES[settings.strategy](storage)
        self.tiers = {tier: parse_limit(text) for tier, text in settings.tiers.items()}
        self.anonymous = parse_limit(settings.anonymous)
        self._unknown_tiers: set[str] = set()
        self._failing = False  # the storage failed last time: said once, not per request
        self.policy = settings.on_storage_error

    @classmethod
    async def open(cls, settings: RateLimitSettings) -> RequestLimiter:
        """Create the storage; a Redis that does not answer PING is a start-up error."""
        if settings.storage_kind == "memory":
            return cls(settings, _storage("async+memory://"))
        url = settings.storage
        # One immediate retry (a connection Redis dropped is opened again), not redis-py's
        # ten with backoff: while Redis is away a request learns it at once.
        client = redis.asyncio.Redis.from_url(
            url, socket_connect_timeout=REDIS_TIMEOUT, socket_timeout=REDIS_TIMEOUT,
            retry=Retry(NoBackoff(), 1),
        )  # fmt: skip
        try:
            await client.ping()
        except STORAGE_FAILURES as error:
            await client.aclose(close_connection_pool=True)
            raise PluginError(
                f"plugin {SECTION!r} cannot reach Redis at {masked_url(url)} ([ratelimit] "
                f"storage): {type(error).__name__}: {error}"
            ) from None
        storage = _storage(
            f"async+{url}", implementation="redispy", key_prefix=settings.key_prefix,
            connection_pool=client.connection_pool, wrap_exceptions=True,
        )  # fmt: skip
        return cls(settings, storage, client)

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose(close_connection_pool=True)
            return
        await self.storage.reset()
        timer = getattr(self.storage, "timer", None)  # the memory storage's expiry task
        if timer is not None and not timer.done():
            timer.cancel()

    def limit_of(self, tier: str) -> RateLimitItem | None:
        """The tier's limit; a tier the config does not name gets the free tier's."""
        if tier in self.tiers:
            return self.tiers[tier]
        if tier not in self._unknown_tiers:
            self._unknown_tiers.add(tier)
            log.warning(
                "unknown_rate_limit_tier", tier=tier, limited_as=FREE,
                limit=self.settings.tiers[FREE],
                detail=f"no limit is configured for tier {tier!r}: it gets the free tier's; "
                "name it in [ratelimit] tiers",
            )  # fmt: skip
        return self.tiers[FREE]

    async def count(
        self, principal: Principal | None, client: str, action: Action = "read"
    ) -> RateLimit | None:
        """Count one request; None when it is not limited (an unlimited tier) or passes
        uncounted because the storage failed and ``on_storage_error`` lets ``action`` pass.
        Refused uncounted: :func:`~butterflyfx.core.auth.cannot_count` (503)."""
        if principal is None:
            item, who = self.anonymous, ("address", client)
        else:
            item, who = self.limit_of(principal.tier), ("tenant", principal.tenant)
        if item is None:
            return None
        try:
            allowed = await self.limiter.hit(item, *who)
            stats = await self.limiter.get_window_stats(item, *who)
        except STORAGE_FAILURES as error:
            return self._uncounted(principal, action, error)
        if self._failing:
            self._failing = False
            log.info("rate_limit_storage_recovered", storage=self.settings.storage_kind)
        # A refused hit consumes nothing; the window is full, whatever a racing hit changed.
        remaining = max(stats.remaining, 0) if allowed else 0
        reset = max(math.ceil(stats.reset_time), math.ceil(time.time()))
        return RateLimit(allowed, item.amount, remaining, reset, item.get_expiry())

    def _uncounted(self, principal: Principal | None, action: Action, error: BaseException) -> None:
        """A request the storage could not count: passed (None) or refused (503), as
        ``[ratelimit.on_storage_error]`` says for ``action``; the outage is logged once.

        A read without a principal always passes: it is a probe, the docs or a refused
        credential, and touches no tenant's data; refusing ``/api/v1/health`` would get a
        healthy server restarted for Redis's sake."""
        if not self._failing:
            self._failing = True
            log.error(
                "rate_limit_storage_failed", storage=self.settings.storage_kind,
                error=f"{type(error).__name__}: {error}", on_storage_error=self.policy.as_dict(),
                detail="until the storage answers again, requests pass uncounted or are "
                "refused with 503 as on_storage_error says for each kind",
            )  # fmt: skip
        if self.policy.of(action) == FAIL_OPEN or (principal is None and action == "read"):
            return None
        raise cannot_count(
            action,
            f"the rate limiter cannot count requests now (its {self.settings.storage_kind} "
            f"storage does not answer), and [ratelimit.on_storage_error] {action} is "
            f"fail_closed: such requests wait until it answers",
        )

    async def health(self) -> PluginHealth:
        """``ok``; while Redis does not answer, ``degraded`` with the policy in effect
        (``down`` when that policy refuses every kind of request)."""
        detail: dict[str, Any] = {
            "storage": self.settings.storage_kind,
            "strategy": self.settings.strategy,
        }
        if self.client is None:
            return PluginHealth("ok", detail)
        try:
            await asyncio.wait_for(self.client.ping(), REDIS_TIMEOUT)
        except STORAGE_FAILURES as error:
            policy = self.policy.as_dict()
            status = "degraded" if FAIL_OPEN in policy.values() else "down"
            return PluginHealth(
                status,
                {**detail, "redis": "unreachable", "error": f"{type(error).__name__}: {error}",
                 "on_storage_error": policy},
            )  # fmt: skip
        return PluginHealth("ok", detail)


def _storage(uri: str, **options: Any) -> Storage:
    storage = storage_from_string(uri, **options)
    if not isinstance(storage, Storage):
        raise TypeError(f"limits gave a synchronous storage for {masked_url(uri)}")
    return storage
