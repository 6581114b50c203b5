"""The series, fed by request records and events, rendered for Prometheus.

This module imports prometheus-client, which picks single- or multiprocess mode once, at
its first import, from ``PROMETHEUS_MULTIPROC_DIR``: import it only after the plugin has
set that variable (see ``__init__``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    values,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from butterflyfx.core.observe import RequestRecord

from .store_counts import StoreCounts

UNMATCHED = "unmatched"  # the route of a request no route matched (a 404 for any path)
# The template of the invoke route. No event reports a failed invocation (the service
# counts it, then the error becomes a 422), so evaluation errors are its 422 answers.
INVOKE_ROUTE = "/api/v1/substrates/<substrate_id>/invoke"
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
            "butterflyfx_evaluation_errors", "Invocations answered 422: the expression "
            "failed or hit a limit, or the parameters were not valid", registry=own,
        )  # fmt: skip

    def observe(self, record: RequestRecord) -> None:
        method = record.method if record.method in METHODS else "other"
        route = record.route or UNMATCHED
        self.requests.labels(method, route, str(record.status)).inc()
        self.duration.labels(method, route).observe(record.duration_ms / 1000)
        if record.status == 401:
            self.auth_failures.inc()
        elif record.status == 429:
            self.rate_limit_refusals.inc()
        elif record.status == 422 and route == INVOKE_ROUTE:
            self.evaluation_errors.inc()

    def invoked(self) -> None:
        self.invocations.inc()

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
