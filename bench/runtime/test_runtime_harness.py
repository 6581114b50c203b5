"""The runtime benchmark measures what it says: a real server answering, real connections
held open, memory read from /proc. Small numbers, nothing timed."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "butterflyfx_bench_runtime_run", Path(__file__).with_name("run.py")
)
assert _spec is not None and _spec.loader is not None
harness = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = harness
_spec.loader.exec_module(harness)

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")


def test_a_cold_start_ends_at_the_first_200_of_a_real_server():
    [spent] = harness.cold_starts(harness.OPEN_PLUGINS, 1)
    [bare] = harness.bare_starts(1)
    assert spent > 0 and bare > 0


def test_idle_connections_are_really_held_open_while_memory_is_read():
    held = harness.idle_connections(50)
    assert held["connections"] == 50
    assert held["rss_holding_kib"] > 0 and held["rss_before_kib"] > 0
