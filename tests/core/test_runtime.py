"""A worker's connections and request statistics (core/runtime), driven by hand with a
clock the test moves: no sockets, no sleeping."""

from __future__ import annotations

import math
import random

import pytest

from butterflyfx.core.config import read_config
from butterflyfx.core.runtime import (
    POOLS,
    STATES,
    ConnectionTracker,
    LatencyHistogram,
    RequestStats,
    ServerRuntime,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def tracker(clock: Clock, **given: int | float) -> ConnectionTracker:
    settings = {"timeout": 5.0, "max_connections": 100, "archive_size": 10, **given}
    return ConnectionTracker(clock=clock, **settings)  # type: ignore[arg-type]


def key(port: int) -> tuple[str, int, str, int]:
    return ("10.0.0.7", port, "127.0.0.1", 8000)


def states(connections: ConnectionTracker, pool: str) -> dict[str, int]:
    return {s: n for s, n in connections.state_counts(pool).items() if n}


def test_a_keep_alive_connection_is_active_during_a_request_and_idle_between():
    clock = Clock()
    connections = tracker(clock)

    first = connections.begin(key(5001), "10.0.0.7:5001", "api")
    assert first is not None and first.state == "active"
    assert states(connections, "api") == {"active": 1}
    connections.end(first)
    assert first.state == "idle" and states(connections, "api") == {"idle": 1}

    clock.now += 2
    again = connections.begin(key(5001), "10.0.0.7:5001", "api")
    assert again is first and first.requests == 2 and first.state == "active"
    connections.end(first)
    assert connections.pool_totals("api") == {
        "total_connections": 1, "active_connections": 0, "idle_connections": 1,
        "total_created": 1, "total_closed": 0,
    }  # fmt: skip


def test_a_connection_that_says_close_is_closing_then_closed_then_archived_by_the_sweep():
    clock = Clock()
    connections = tracker(clock)
    conn = connections.begin(key(5002), "10.0.0.7:5002", "http")
    assert conn is not None
    connections.closing(conn)
    assert conn.state == "closing"
    connections.end(conn)
    assert conn.state == "closed" and connections.get(key(5002)) is None
    assert connections.pool_totals("http")["total_closed"] == 1

    connections.sweep()
    assert conn.state == "archived" and states(connections, "http") == {"archived": 1}


def test_a_websocket_shakes_hands_then_is_active_and_closes_with_its_socket():
    clock = Clock()
    connections = tracker(clock)
    conn = connections.begin(key(5003), "10.0.0.7:5003", "websocket", websocket=True)
    assert conn is not None and conn.state == "handshake"
    connections.accepted(conn)
    assert conn.state == "active"
    connections.end(conn, "websocket", close=True)
    assert conn.state == "closed"
    assert connections.pool_totals("websocket")["total_created"] == 1


def test_the_idle_sweep_closes_only_connections_idle_longer_than_the_timeout():
    clock = Clock()
    connections = tracker(clock, timeout=5.0)
    early, late = (connections.begin(key(p), f"x:{p}", "api") for p in (6001, 6002))
    assert early is not None and late is not None
    connections.end(early)
    clock.now += 3
    connections.end(late)

    clock.now += 2  # early idle 5 s, late idle 2 s
    assert connections.sweep() == 1
    assert early.state == "closed" and late.state == "idle"
    clock.now += 3
    assert connections.sweep() == 1
    assert late.state == "closed" and early.state == "archived"
    assert connections.pool_totals("api")["total_connections"] == 0


def test_a_busy_connection_is_never_swept():
    clock = Clock()
    connections = tracker(clock, timeout=1.0)
    busy = connections.begin(key(6003), "x", "api")
    clock.now += 60
    assert connections.sweep() == 0 and busy is not None and busy.state == "active"


def test_a_client_that_comes_back_after_the_sweep_is_a_new_connection():
    clock = Clock()
    connections = tracker(clock, timeout=1.0)
    old = connections.begin(key(6004), "x", "api")
    assert old is not None
    connections.end(old)
    clock.now += 2
    connections.sweep()
    new = connections.begin(key(6004), "x", "api")
    assert new is not old and new is not None and new.requests == 1
    assert connections.pool_totals("api")["total_created"] == 2


def test_beyond_max_connections_a_new_connection_is_refused_but_open_ones_are_served():
    clock = Clock()
    connections = tracker(clock, max_connections=2)
    held = [connections.begin(key(p), "x", "api") for p in (7001, 7002)]
    for conn in held:
        assert conn is not None
        connections.end(conn)

    assert connections.begin(key(7003), "x", "api") is None
    assert connections.refused("api") == 1
    assert connections.begin(key(7001), "x", "api") is held[0]  # already open: served

    connections.end(held[0], close=True)
    assert connections.begin(key(7003), "x", "api") is not None


def test_a_connection_belongs_to_the_pool_of_its_latest_request():
    clock = Clock()
    connections = tracker(clock)
    conn = connections.begin(key(7101), "x", "api")
    assert conn is not None
    connections.end(conn, "admin")  # the route turned out to be admin-only
    assert conn.pool == "admin" and states(connections, "admin") == {"idle": 1}
    assert states(connections, "api") == {}
    connections.begin(key(7101), "x", "http")
    connections.end(conn, close=True)
    created = sum(connections.pool_totals(p)["total_created"] for p in POOLS)
    closed = sum(connections.pool_totals(p)["total_closed"] for p in POOLS)
    assert (created, closed) == (1, 1)
    assert connections.pool_totals("http")["total_closed"] == 1


def test_the_archive_keeps_only_the_newest_closed_connections():
    clock = Clock()
    connections = tracker(clock, archive_size=3)
    for port in range(8000, 8010):
        conn = connections.begin(key(port), f"x:{port}", "http")
        assert conn is not None
        connections.end(conn, close=True)
        connections.sweep()

    assert connections.state_counts("http")["archived"] == 3
    assert [c["address"] for c in connections.recent(10)] == ["x:8009", "x:8008", "x:8007"]
    assert connections.pool_totals("http")["total_closed"] == 10


def test_recent_lists_open_connections_most_recently_used_first():
    clock = Clock()
    connections = tracker(clock)
    for port in (9001, 9002, 9003):
        conn = connections.begin(key(port), f"x:{port}", "api")
        assert conn is not None
        connections.end(conn)
        clock.now += 1
    connections.begin(key(9001), "x:9001", "api")
    recent = connections.recent(2)
    assert [(c["address"], c["state"]) for c in recent] == [
        ("x:9001", "active"),
        ("x:9003", "idle"),
    ]
    assert recent[1]["age_seconds"] == 1.0


def test_every_pool_reports_every_state():
    connections = tracker(Clock())
    for pool in POOLS:
        assert list(connections.state_counts(pool)) == list(STATES)


# -- request statistics -------------------------------------------------------------------


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_percentiles_are_within_the_histograms_resolution_of_the_exact_ones(seed):
    rng = random.Random(seed)
    durations = [rng.lognormvariate(0, 1.5) for _ in range(5000)] + [250.0, 900.0]
    histogram = LatencyHistogram()
    for ms in durations:
        histogram.record(ms)
    for q in (0.5, 0.95, 0.99, 1.0):
        exact = nearest_rank(durations, q)
        estimate = histogram.quantile(q)
        assert estimate is not None
        assert abs(estimate / exact - 1) <= 2 ** (1 / 16) - 1 + 1e-9, (q, exact, estimate)
    assert histogram.quantile(1.0) == max(durations)


def test_the_histogram_takes_the_same_memory_however_many_requests():
    histogram = LatencyHistogram()
    size = len(histogram.counts)
    for ms in (0.0, 1e-9, 0.5, 3.0, 1e12):
        histogram.record(ms)
    assert len(histogram.counts) == size and histogram.count == 5
    assert histogram.quantile(0.2) == pytest.approx(0.001, rel=0.05)  # the first bucket
    assert histogram.quantile(1.0) == 1e12  # past the last bucket: the largest seen


def test_request_statistics_count_errors_and_requests_in_flight():
    stats = RequestStats()
    assert stats.to_dict()["avg_processing_time_ms"] is None  # nothing answered yet
    for duration, status in [(2.0, 200), (4.0, 404), (6.0, 500)]:
        stats.started()
        stats.finished(duration, status)
    stats.started()  # one still running

    body = stats.to_dict()
    assert body["total_requests"] == 4 and body["in_flight"] == 1
    assert body["total_processed"] == 2 and body["total_errors"] == 1
    assert body["avg_processing_time_ms"] == 4.0
    assert body["success_rate"] == round(100 * 2 / 3, 3)
    assert body["p50_ms"] is not None and 3.8 < body["p50_ms"] < 4.2


def test_a_runtime_reports_seed_004s_stats_for_each_spiral(tmp_path):
    settings = read_config(None, {}, {"timeout": 2, "archived_connections": 5}).server
    clock = Clock()
    runtime = ServerRuntime(settings, clock)
    conn = runtime.connections.begin(key(9100), "x", "admin")
    assert conn is not None
    stats = runtime.stats()
    assert list(stats["connections"]) == ["spiral_0", "spiral_1", "spiral_2", "spiral_3"]
    assert stats["connections"]["spiral_3"]["active_connections"] == 1
    assert stats["pools"]["admin"]["spiral"] == 3
    assert set(stats["connections"]["spiral_0"]) == {
        "total_connections", "active_connections", "idle_connections",
        "total_created", "total_closed",
    }  # fmt: skip
    assert runtime.sweep_interval == 1.0


def test_closed_connections_stay_bounded_even_when_no_sweep_runs():
    connections = tracker(Clock(), archive_size=4)
    for port in range(100):
        conn = connections.begin(key(port), f"x:{port}", "http")
        assert conn is not None
        connections.end(conn, close=True)
    counts = connections.state_counts("http")
    assert counts["closed"] + counts["archived"] <= 2 * 4
    assert len(connections.recent(1000)) == counts["closed"] + counts["archived"]
    assert connections.pool_totals("http")["total_closed"] == 100


class Mirror:
    """A watcher keeping its own copy of the counts, as the metrics plugin's gauges do."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = {}
        self.told = 0

    def __call__(self, pool: str, state: str, count: int) -> None:
        self.counts[pool, state] = count
        self.told += 1

    def of(self, pool: str) -> dict[str, int]:
        return {s: n for (p, s), n in self.counts.items() if p == pool and n}


def test_a_watcher_sees_every_count_as_it_changes_sweeps_and_pool_moves_included():
    clock = Clock()
    connections = tracker(clock, timeout=5.0, archive_size=1)
    mirror = Mirror()
    stop = connections.watch(mirror)
    assert mirror.counts == {(p, s): 0 for p in POOLS for s in STATES}  # told at once

    def same() -> None:
        for pool in POOLS:
            assert mirror.of(pool) == states(connections, pool)

    ops = connections.begin(key(7001), "x:7001", "api")
    assert ops is not None
    same()
    connections.end(ops, "admin")  # it was an admin route: the connection moves pools
    same()
    assert mirror.of("admin") == {"idle": 1} and mirror.of("api") == {}
    clock.now += 6
    connections.sweep()  # idle past the timeout: closed
    same()
    for port in (7002, 7003):  # two closed, the ring holds one: the older leaves it
        conn = connections.begin(key(port), f"x:{port}", "http")
        assert conn is not None
        connections.closing(conn)
        connections.end(conn)
        same()
    connections.sweep()
    same()
    assert mirror.of("admin") == {} and mirror.of("http") == {"archived": 1}

    stop()
    told = mirror.told
    connections.begin(key(7004), "x:7004", "http")
    assert mirror.told == told  # stopped: hears nothing more


def test_a_watcher_that_fails_is_logged_and_the_connection_still_moves():
    connections = tracker(Clock())
    mirror = Mirror()

    def broken(pool: str, state: str, count: int) -> None:
        raise RuntimeError("a bug in a watcher")

    connections.watch(broken)
    connections.watch(mirror)
    conn = connections.begin(key(7005), "x:7005", "api")
    assert conn is not None and conn.state == "active"
    assert mirror.of("api") == {"active": 1}
