"""Seed 004's runtime endpoints on a real server: ``/api/stats``, ``/api/status``,
``/api/connections`` and ``/api/manifold/evaluate``, with numbers the server measured.

Requests go over sockets the test holds (``runtime_sockets``), so the test knows which
connection each one used. Figures are compared as differences between two readings, or
as "at least", because the readiness check's own requests count too.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ratelimit_sockets import connection_to
from runtime_sockets import Answer, KeepAlive, connect
from server_process import START_DEADLINE, Butterflyfx, Server, wait_for

from butterflyfx.kernel import manifold_point

SEED_COUNTS = (
    "total_connections", "active_connections", "idle_connections", "total_created",
    "total_closed",
)  # fmt: skip
DEFAULT_PLUGINS = (
    "storage.sqlite", "graph.sql", "http", "auth.apikey", "auth.jwt", "ratelimit",
)  # fmt: skip
K = 5


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server on the default plugins (API keys required) for the stories below."""
    folder: Path = tmp_path_factory.mktemp("runtime")
    cli = Butterflyfx(folder)
    try:
        yield cli.start(
            "--data-dir", str(folder / "data"), "--timeout", "60", "--max-connections", "40"
        ).wait_ready()
    finally:
        for started in cli.servers:
            started.destroy()


@pytest.fixture(scope="module")
def reader_key(server: Server) -> str:
    """A key with the read scope only."""
    with server.client() as admin:
        made = admin.post("/api/v1/keys", json={"scopes": ["read"], "name": "dashboard"})
    assert made.status_code == 201, made.text
    return str(made.json()["key"])


def settled_stats(probe: KeepAlive, readings: list[Answer]) -> dict[str, Any]:
    """/api/stats once every request but the reading itself is answered (a request is
    counted once its response is sent, a moment after the client has it)."""

    def settled() -> bool:
        readings.append(probe.get("/api/stats"))
        return bool(readings[-1].json()["requests"]["in_flight"] == 1)

    wait_for(settled, START_DEADLINE, "the requests to be counted")
    return dict(readings[-1].json())


def test_stats_count_the_requests_served_and_show_a_held_connection_idle(server):
    held, probe = connect(server.url, server.admin_key), connect(server.url, server.admin_key)
    assert held.get("/api/v1/health").status == 200
    before = settled_stats(probe, [])
    for _ in range(K):
        assert held.get("/api/v1/substrates?limit=1").status == 200
    readings: list[Answer] = []
    after = settled_stats(probe, readings)
    answer = readings[-1]

    grew = {name: after["requests"][name] - before["requests"][name] for name in before["requests"]}
    # K on the held connection, and the readings since (the one before is answered now).
    assert grew["total_requests"] == grew["total_processed"] == K + len(readings)
    assert grew["total_errors"] == 0 and after["requests"]["in_flight"] == 1
    requests = after["requests"]
    assert requests["success_rate"] == 100.0 and requests["avg_processing_time_ms"] > 0
    assert 0 < requests["p50_ms"] <= requests["p95_ms"] <= requests["p99_ms"]

    api = after["pools"]["api"]
    assert api["spiral"] == 2
    assert api["active_connections"] >= 1  # the probe, asking
    assert api["idle_connections"] >= 1  # the held connection, between requests
    assert after["connections"]["spiral_2"] == {name: api[name] for name in SEED_COUNTS}
    assert list(after["connections"]) == ["spiral_0", "spiral_1", "spiral_2", "spiral_3"]
    assert after["worker"] == answer.headers["x-butterflyfx-worker"] == str(server.process.pid)

    listed = probe.get("/api/connections").json()
    by_address = {c["address"]: c for c in listed["recent"]}
    assert by_address[held.address]["state"] == "idle"
    assert by_address[held.address]["requests"] == K + 1
    assert by_address[probe.address]["state"] == "active"
    assert listed["states"]["idle"] >= 1 and listed["pools"]["api"]["states"]["idle"] >= 1
    assert listed["worker"] == str(server.process.pid) and listed["max_connections"] == 40


def test_a_connection_whose_last_request_was_admin_only_is_in_the_admin_pool(server):
    admin, probe = connect(server.url, server.admin_key), connect(server.url, server.admin_key)
    assert admin.get("/api/v1/keys").status == 200  # an admin-only route

    listed = probe.get("/api/connections").json()
    entry = next(c for c in listed["recent"] if c["address"] == admin.address)
    assert (entry["pool"], entry["state"]) == ("admin", "idle")
    assert listed["pools"]["admin"]["spiral"] == 3
    assert listed["pools"]["admin"]["states"]["idle"] >= 1


def test_status_names_the_version_worker_plugins_engines_and_limits(server):
    answer = connect(server.url, server.admin_key).get("/api/status")
    status = answer.json()
    with server.client() as client:
        health = client.get("/api/v1/health").json()

    assert answer.status == 200 and answer.headers["cache-control"] == "no-store"
    assert status["version"] == health["version"]
    assert status["worker"] == str(server.process.pid) and status["run_id"]
    assert status["plugins"] == dict.fromkeys(DEFAULT_PLUGINS, "started")
    assert (status["storage"], status["graph"]) == ("storage.sqlite", "graph.sql")
    assert status["uptime_seconds"] >= 0 and status["started_at"].endswith("Z")
    limits = status["limits"]
    assert (limits["max_connections"], limits["backlog"], limits["timeout"]) == (40, 40, 60.0)
    assert limits["workers"] == 1 and limits["max_body_bytes"] == 1048576


def test_status_and_stats_need_a_key_and_connections_need_an_admin_key(server, reader_key):
    anonymous, reader = connect(server.url), connect(server.url, reader_key)
    for path in ("/api/status", "/api/stats", "/api/connections", "/api/manifold/evaluate"):
        refused = anonymous.get(path)
        assert refused.status == 401, path
        assert refused.headers["content-type"] == "application/problem+json"

    assert reader.get("/api/status").status == 200
    assert reader.get("/api/stats").status == 200
    forbidden = reader.get("/api/connections")
    assert forbidden.status == 403 and forbidden.json()["action"] == "admin"


def test_the_manifold_point_is_the_kernels_and_a_bound_broken_is_named(server, reader_key):
    reader = connect(server.url, reader_key)
    answer = reader.get("/api/manifold/evaluate?spiral=3&level=2&position=-1.5")
    assert answer.status == 200
    assert answer.json() == manifold_point(3, 2, -1.5).to_dict()

    too_high = reader.get("/api/manifold/evaluate?spiral=3&level=7&position=0").json()
    assert too_high["status"] == 422 and too_high["field"] == "level"
    assert (too_high["minimum"], too_high["maximum"]) == (0, 6)
    assert "from 0 to 6" in too_high["detail"]
    negative = reader.get("/api/manifold/evaluate?spiral=-1&level=0&position=0").json()
    assert (negative["status"], negative["field"], negative["maximum"]) == (422, "spiral", 1000)
    far = reader.get("/api/manifold/evaluate?spiral=0&level=0&position=2e6").json()
    assert (far["status"], far["field"], far["maximum"]) == (422, "position", 1e6)
    word = reader.get("/api/manifold/evaluate?spiral=one&level=0&position=0").json()
    assert (word["status"], word["field"]) == (400, "spiral")
    missing = reader.get("/api/manifold/evaluate?spiral=0&level=0").json()
    assert (missing["status"], missing["field"]) == (400, "position")


def test_an_idle_connection_is_swept_closed_after_the_timeout_as_the_server_closes_it(
    butterflyfx, tmp_path
):
    server = butterflyfx.start(
        "--data-dir", str(tmp_path / "d"), "--timeout", "1",
        env={"BUTTERFLYFX_PLUGINS": "storage.sqlite,http"},
    ).wait_ready()  # fmt: skip
    held = connect(server.url)
    assert held.get("/api/v1/health").status == 200

    def state_of_held() -> str | None:
        # A new connection each time: a probe idling past 1 s would be swept too.
        listed = connect(server.url).get("/api/connections", close=True).json()
        return next((c["state"] for c in listed["recent"] if c["address"] == held.address), None)

    wait_for(lambda: state_of_held() in ("closed", "archived"), START_DEADLINE, "the sweep")
    assert held.closed_by_server()  # Hypercorn closed it too: the tracker agrees
    wait_for(lambda: state_of_held() == "archived", START_DEADLINE, "the archive")
    stats = connect(server.url).get("/api/stats", close=True).json()
    assert stats["pools"]["api"]["total_closed"] >= 1


def test_a_public_status_switch_opens_status_and_stats_but_never_connections(butterflyfx, tmp_path):
    server = butterflyfx.start(
        "--data-dir", str(tmp_path / "d"),
        env={
            "BUTTERFLYFX_PLUGINS": "storage.sqlite,http,auth.apikey",
            "BUTTERFLYFX_HTTP__PUBLIC_STATUS": "true",
        },
    ).wait_ready()  # fmt: skip
    anonymous = connect(server.url)

    assert anonymous.get("/api/status").status == 200
    assert anonymous.get("/api/stats").json()["requests"]["total_requests"] >= 2
    assert anonymous.get("/api/connections").status == 401
    assert connect(server.url, server.admin_key).get("/api/connections").status == 200


def test_each_of_two_workers_counts_its_own_requests_and_says_who_answered(butterflyfx, tmp_path):
    server = butterflyfx.start(
        "--data-dir", str(tmp_path / "d"), "--workers", "2",
        env={"BUTTERFLYFX_PLUGINS": "storage.sqlite,http"},
    ).wait_ready()  # fmt: skip
    pids = wait_for(
        lambda: len(ready := {e["pid"] for e in server.events("worker_ready")}) == 2 and ready,
        START_DEADLINE, "both workers",
    )  # fmt: skip
    first, second = sorted(pids)
    port = int(server.url.rsplit(":", 1)[1])
    on_first = KeepAlive(connection_to(port, first, pids))
    on_second = KeepAlive(connection_to(port, second, pids))

    first_before = on_first.get("/api/stats").json()
    second_before = on_second.get("/api/stats").json()
    for _ in range(K):
        assert on_first.get("/api/v1/health").status == 200
    first_after = on_first.get("/api/stats").json()
    second_after = on_second.get("/api/stats").json()

    def grew(before: dict, after: dict) -> int:
        return int(after["requests"]["total_requests"] - before["requests"]["total_requests"])

    assert grew(first_before, first_after) == K + 1
    assert grew(second_before, second_after) == 1  # the first worker's requests are its own
    assert (first_after["worker"], second_after["worker"]) == (str(first), str(second))
    status = on_second.get("/api/status").json()
    assert status["worker"] == str(second) and status["limits"]["workers"] == 2
