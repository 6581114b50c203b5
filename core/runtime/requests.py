"""Request statistics of one worker: seed 004's counts, the mean, and percentiles.

Percentiles come from a histogram of fixed, logarithmically spaced buckets, so memory
stays the same however many requests a worker serves: each bucket is 2**(1/8) (about
9 %) wider than the one before, and a percentile is the geometric middle of its bucket,
within about 4.5 % of the exact value (and never outside the smallest and largest seen).
"""

from __future__ import annotations

import math
from typing import Any

GROWTH: float = 2 ** (1 / 8)
SMALLEST_MS = 0.001  # one microsecond: the first bucket holds everything faster
BUCKETS = 8 * 40  # up to 0.001 ms * 2**40: about 12.7 days
_LOG_GROWTH = math.log(GROWTH)


class LatencyHistogram:
    """Durations in milliseconds, counted in :data:`BUCKETS` fixed buckets."""

    def __init__(self) -> None:
        self.counts = [0] * BUCKETS
        self.count = 0
        self.smallest = math.inf
        self.largest = 0.0

    def record(self, ms: float) -> None:
        if ms <= SMALLEST_MS:
            index = 0
        else:
            # Bucket i holds (SMALLEST * GROWTH**(i-1), SMALLEST * GROWTH**i].
            index = min(BUCKETS - 1, math.ceil(math.log(ms / SMALLEST_MS) / _LOG_GROWTH))
        self.counts[index] += 1
        self.count += 1
        self.smallest = min(self.smallest, ms)
        self.largest = max(self.largest, ms)

    def quantile(self, q: float) -> float | None:
        """The duration ``q`` (0 < q <= 1) of requests took at most, or None before any."""
        if not self.count:
            return None
        rank = max(1, math.ceil(q * self.count))  # nearest rank
        seen = 0
        for index, count in enumerate(self.counts):
            seen += count
            if seen >= rank:
                if index == BUCKETS - 1:  # the last bucket has no upper bound
                    return self.largest
                middle = SMALLEST_MS * math.exp((index - 0.5) * _LOG_GROWTH)
                return min(max(middle, self.smallest), self.largest)
        return self.largest  # not reached: the counts add up to count


class RequestStats:
    """What one worker's requests came to since it started.

    ``total_requests`` counts requests received; each ends either ``processed`` (answered
    with a status below 500, client errors included) or as an ``error`` (5xx); the rest
    are in flight. ``success_rate`` is the percentage of answered requests that were not
    server errors; times run from a request's first byte to its response's last.
    """

    def __init__(self) -> None:
        self.total_requests = 0
        self.total_processed = 0
        self.total_errors = 0
        self._time_ms = 0.0
        self.latency = LatencyHistogram()

    def started(self) -> None:
        self.total_requests += 1

    def finished(self, duration_ms: float, status: int) -> None:
        if status >= 500:
            self.total_errors += 1
        else:
            self.total_processed += 1
        self._time_ms += duration_ms
        self.latency.record(duration_ms)

    def to_dict(self) -> dict[str, Any]:
        """Seed 004's ``requests`` object, plus ``in_flight`` and p50/p95/p99 in ms."""
        answered = self.total_processed + self.total_errors
        return {
            "total_requests": self.total_requests,
            "total_processed": self.total_processed,
            "total_errors": self.total_errors,
            "in_flight": self.total_requests - answered,
            "avg_processing_time_ms": _rounded(self._time_ms / answered if answered else None),
            "success_rate": _rounded(100 * self.total_processed / answered if answered else None),
            "p50_ms": _rounded(self.latency.quantile(0.50)),
            "p95_ms": _rounded(self.latency.quantile(0.95)),
            "p99_ms": _rounded(self.latency.quantile(0.99)),
        }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
