"""Failed logins, counted per username and per client address in a moving window.

Only failures count. Once either count is full, every login for that name or from that
address (even with the right password) is a 429 until the window moves on. Counters live
in ``memory://`` (one process) or Redis (shared by every worker).
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable
from typing import TypeVar
from urllib.parse import urlparse

from limits import RateLimitItem, parse
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from butterflyfx.core.auth import RateLimit, too_many
from butterflyfx.core.problems import Problem, ProblemError

NAMESPACE = "butterflyfx-auth-jwt-login"
T = TypeVar("T")


def attempts_storage(url: str) -> Storage:
    """The async ``limits`` storage for ``memory://`` or ``redis://host:port/db``."""
    if url.startswith("memory://"):
        storage = storage_from_string("async+memory://")
    else:
        storage = storage_from_string(f"async+{url}", implementation="redispy")
    if not isinstance(storage, Storage):  # pragma: no cover - limits maps async+ to these
        raise TypeError(f"{url!r} gave a synchronous storage")
    return storage


def where(url: str) -> str:
    """The storage's address without any password, for messages."""
    parsed = urlparse(url)
    return f"{parsed.scheme}://{parsed.hostname or ''}{f':{parsed.port}' if parsed.port else ''}"


class FailedLogins:
    """Counts failed logins; :meth:`check` refuses with 429 once a count is full."""

    def __init__(self, storage: Storage, rate: str, storage_url: str = "memory://") -> None:
        self.storage = storage
        self.item: RateLimitItem = parse(rate)
        self.window = self.item.get_expiry()
        self._limiter = MovingWindowRateLimiter(storage)
        self._where = where(storage_url)

    @staticmethod
    def _keys(username: str, address: str) -> dict[str, tuple[str, str, str]]:
        return {
            "username": (NAMESPACE, "user", username),
            "client address": (NAMESPACE, "address", address),
        }

    async def check(self, username: str, address: str) -> None:
        """Raise 429 when this name or this address has no failures left."""
        for what, key in self._keys(username, address).items():
            if not await self._call(self._limiter.test(self.item, *key)):
                stats = await self._call(self._limiter.get_window_stats(self.item, *key))
                raise self._refusal(what, stats.reset_time)

    async def failed(self, username: str, address: str) -> None:
        """Count one failure against the name and the address; 429 if that overfilled one
        (concurrent attempts that all passed :meth:`check`)."""
        refused: str | None = None
        for what, key in self._keys(username, address).items():
            if not await self._call(self._limiter.hit(self.item, *key)):
                refused = refused or what
        if refused is not None:
            key = self._keys(username, address)[refused]
            stats = await self._call(self._limiter.get_window_stats(self.item, *key))
            raise self._refusal(refused, stats.reset_time)

    async def healthy(self) -> bool:
        return bool(await self.storage.check())

    async def _call(self, awaitable: Awaitable[T]) -> T:
        try:
            return await awaitable
        except Exception as error:
            raise ProblemError(
                Problem(
                    503, "login-unavailable", "Login unavailable",
                    f"failed logins cannot be counted right now ({self._where}: "
                    f"{type(error).__name__}); try again shortly",
                    headers={"Retry-After": "5"},
                )
            ) from error  # fmt: skip

    def _refusal(self, what: str, reset_time: float) -> ProblemError:
        reset = max(math.ceil(reset_time), int(time.time()) + 1)
        rate = RateLimit(False, self.item.amount, 0, reset, self.window)
        wait = rate.headers()["Retry-After"]
        return too_many(
            rate,
            f"too many failed logins for this {what}: at most {self.item.amount} per "
            f"{self.window} s; retry after {wait} s",
        )
