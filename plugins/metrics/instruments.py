"""The series, fed by request records, events and the connection tracker, rendered for
Prometheus.

This module imports prometheus-client, which picks single- or multiprocess mode once, at
its first import, from ``PROMETHEUS_MULTIPROC_DIR``: import it only after the plugin has
set that variable (see ``__init__``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    values,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from butterflyfx.core.observe import RequestRecord
from butterflyfx.core.runtime import POOLS, STATES, ConnectionTracker

from .store_counts import StoreCounts

UNMATCHED = "unmatched"  # the route of a request no route matched (a 404 for any path)
# A client may send any method; others share one label so they cannot add series.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def multiprocess_mode() -> bool:
    """Whether prometheus-client writes values to files (it chose at its first import)."""
    return bool(getattr(values.ValueClass, "_multiprocess", False))


class Instruments:
    """One process's series. With ``folder`` (several workers) they live in that folder's
    files and a scrape sums every process's; without, in a registry of their own."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder
        own = None if folder is not None else CollectorRegistry()
        self.registry = own
        self.requests = Counter(
            "butterflyfx_http_requests", "HTTP requests served, by method, route template "
            "and status", ("method", "route", "status"), registry=own,
        )  # fmt: skip
        self.duration = Histogram(
            "butterflyfx_http_request_duration_seconds", "Time from a request's first byte "
            "to its response's last, by method and route template", ("method", "route"),
            registry=own,
        )  # fmt: skip
        self.auth_failures = Counter(
            "butterflyfx_auth_failures", "Requests answered 401: credentials missing, "
            "unknown or refused", registry=own,
        )  # fmt: skip
        self.rate_limit_refusals = Counter(
            "butterflyfx_rate_limit_refusals", "Requests answered 429 by the rate limit",
            registry=own,
        )  # fmt: skip
        self.invocations = Counter(
            "butterflyfx_invocations", "Substrate invocations that returned a result",
            registry=own,
        )  # fmt: skip
        self.evaluation_errors = Counter(
            "butterflyfx_evaluation_errors", "Invocations whose expression failed or hit a "
            "limit (substrate.invocation_failed events)", registry=own,
        )  # fmt: skip
        # Gauges: "livesum" adds up the live workers' values (a worker's go with it).
        self.in_flight = Gauge(
            "butterflyfx_http_requests_in_flight", "HTTP requests received and not yet "
            "answered, by the pool their path puts them in (admin routes count under api)",
            ("pool",), registry=own, multiprocess_mode="livesum",
        )  # fmt: skip
        self.connections = Gauge(
            "butterflyfx_connections", "Client connections by pool and state now (closed: "
            "since the last sweep; archived: kept in the ring)", ("pool", "state"),
            registry=own, multiprocess_mode="livesum",
        )  # fmt: skip
        self._by_pool_state = {
            (pool, state): self.connections.labels(pool, state)
            for pool in POOLS
            for state in STATES
        }
        self._unfollow: Callable[[], None] | None = None

    def started(self, pool: str) -> None:
        self.in_flight.labels(pool).inc()

    def observe(self, record: RequestRecord) -> None:
        self.in_flight.labels(record.started_pool or record.pool).dec()
        method = record.method if record.method in METHODS else "other"
        route = record.route or UNMATCHED
        self.requests.labels(method, route, str(record.status)).inc()
        self.duration.labels(method, route).observe(record.duration_ms / 1000)
        if record.status == 401:
            self.auth_failures.inc()
        elif record.status == 429:
            self.rate_limit_refusals.inc()

    def invoked(self) -> None:
        self.invocations.inc()

    def invocation_failed(self) -> None:
        self.evaluation_errors.inc()

    def follow(self, tracker: ConnectionTracker) -> None:
        """Keep ``butterflyfx_connections`` equal to the tracker's counts, as they change:
        each worker writes its own, so a scrape from any worker sums them all."""
        self._unfollow = tracker.watch(self._connections_now)

    def _connections_now(self, pool: str, state: str, count: int) -> None:
        self._by_pool_state[pool, state].set(count)

    def exposition(self, store: StoreCounts | None) -> bytes:
        """Every process's series and the store's counts, in the text format."""
        sources: list[Any] = [self.source(), StoreSeries(store)]
        return generate_latest(Scrape(sources))

    def source(self) -> Any:
        if self.folder is not None:
            return MultiProcessCollector(None, path=str(self.folder))
        return self.registry

    def series(self) -> int:
        """How many samples a scrape holds now (this process's, or all workers')."""
        return sum(len(family.samples) for family in self.source().collect())

    def close(self) -> None:
        """This process is done: drop its live gauges (counters stay: they are history)."""
        unfollow, self._unfollow = self._unfollow, None
        if unfollow is not None:
            unfollow()
        if self.folder is not None:
            mark_process_dead(os.getpid(), str(self.folder))


class Scrape:
    """The collectors of one scrape, as one (``generate_latest`` asks for ``collect``)."""

    def __init__(self, sources: Iterable[Any]) -> None:
        self.sources = list(sources)

    def collect(self) -> Iterator[Any]:
        for source in self.sources:
            yield from source.collect()


class StoreSeries:
    """The store's counts as gauges, labelled by the storage plugin."""

    def __init__(self, counts: StoreCounts | None) -> None:
        self.counts = counts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        counts = self.counts
        if counts is None:
            return
        for name, value, help_text in (
            ("butterflyfx_substrates", counts.substrates, "Substrates in the store, all tenants"),
            (
                "butterflyfx_relationships", counts.relationships,
                "Relationships in the store, all tenants",
            ),
        ):  # fmt: skip
            if value is not None:
                family = GaugeMetricFamily(name, help_text, labels=["store"])
                family.add_metric([counts.store], value)
                yield family
