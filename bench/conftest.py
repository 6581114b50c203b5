"""Benchmarks report ratios against a baseline measured in the same run.

Each benchmark records its result under a name with ``report``; a baseline and the thing
measured against it share a ``pair`` name. At the end, ``make bench`` prints operations per
second and the ratio to the baseline, so numbers from different machines stay comparable.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

_RESULTS: dict[str, dict[str, float]] = {}


@pytest.fixture
def report(benchmark) -> Callable[[str, str], None]:
    def record(pair: str, role: str) -> None:
        stats = getattr(benchmark, "stats", None)
        if stats is None:  # benchmarks disabled: the body ran once as a test
            return
        _RESULTS.setdefault(pair, {})[role] = stats.stats.median

    return record


def pytest_terminal_summary(terminalreporter) -> None:
    if not _RESULTS:
        return
    terminalreporter.section("ButterflyFX benchmark ratios (median; ratio = measured / baseline)")
    for pair, roles in sorted(_RESULTS.items()):
        measured, baseline = roles.get("measured"), roles.get("baseline")
        line = f"{pair:<32}"
        if measured:
            line += f" {1 / measured:>14,.0f} ops/s"
        if baseline:
            line += f"   baseline {1 / baseline:>14,.0f} ops/s"
        if measured and baseline:
            line += f"   ratio {measured / baseline:6.2f}x slower"
        terminalreporter.write_line(line)
