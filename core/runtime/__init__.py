"""What a worker is doing now: its connections (pools and states) and request statistics.

An interface feeds it (the HTTP plugin, at the ASGI edge) and reports it
(``/api/stats``, ``/api/connections``). Each worker process has its own: with several
workers, every figure is that worker's, and endpoints say which worker answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from typing import TYPE_CHECKING, Any

import structlog

from ..config import ServerSettings
from .connections import (
    KEEP_ALIVE_MAX_REQUESTS,
    OPEN_STATES,
    POOLS,
    STATES,
    Clock,
    Connection,
    ConnectionTracker,
    CountWatcher,
)
from .requests import LatencyHistogram, RequestStats

if TYPE_CHECKING:
    from ..context import ServerContext

__all__ = [
    "KEEP_ALIVE_MAX_REQUESTS",
    "OPEN_STATES",
    "POOLS",
    "STATES",
    "Connection",
    "ConnectionTracker",
    "CountWatcher",
    "LatencyHistogram",
    "RequestStats",
    "ServerRuntime",
    "runtime_of",
]

log = structlog.get_logger("butterflyfx")
MAX_SWEEP_INTERVAL = 1.0  # seconds; the sweep looks only at what it closes, so it is cheap


class ServerRuntime:
    """One worker's connection tracker and request statistics, and the idle sweep."""

    def __init__(self, settings: ServerSettings, clock: Clock = time.monotonic) -> None:
        self.connections = ConnectionTracker(
            timeout=settings.timeout,
            max_connections=settings.max_connections,
            archive_size=settings.archived_connections,
            clock=clock,
        )
        self.requests = RequestStats()
        # Often enough that a connection is seen closed soon after Hypercorn closes it.
        self.sweep_interval = min(MAX_SWEEP_INTERVAL, settings.timeout / 2)
        self._sweeper: asyncio.Task[None] | None = None

    def stats(self) -> dict[str, Any]:
        """Seed 004's ``/api/stats`` body: connections by spiral, and by pool name."""
        totals = {pool: self.connections.pool_totals(pool) for pool in POOLS}
        return {
            "connections": {f"spiral_{i}": totals[pool] for i, pool in enumerate(POOLS)},
            "pools": {
                pool: {"spiral": i, **totals[pool], "refused": self.connections.refused(pool)}
                for i, pool in enumerate(POOLS)
            },
            "requests": self.requests.to_dict(),
        }

    async def start(self) -> None:
        """Start the idle sweep (every ``sweep_interval`` seconds)."""
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep_periodically())

    async def stop(self) -> None:
        sweeper, self._sweeper = self._sweeper, None
        if sweeper is not None:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper

    async def _sweep_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_interval)
            try:
                self.connections.sweep()
            except Exception:  # a bug here must not end the sweeping
                log.exception("connection_sweep_failed")


_RUNTIMES: dict[int, ServerRuntime] = {}


def runtime_of(ctx: ServerContext) -> ServerRuntime:
    """The runtime of ``ctx`` (made on first use; forgotten when ``ctx`` is)."""
    runtime = _RUNTIMES.get(id(ctx))
    if runtime is None:
        runtime = _RUNTIMES[id(ctx)] = ServerRuntime(ctx.settings)
        weakref.finalize(ctx, _RUNTIMES.pop, id(ctx), None)
    return runtime
