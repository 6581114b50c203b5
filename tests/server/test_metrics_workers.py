"""`butterflyfx serve --workers 2` with the metrics plugin: a scrape, whichever worker
answers it, counts the requests both workers served, exactly, and the connections both
hold now (prometheus-client's multiprocess mode: one folder of files per run, under the
data folder; live gauges summed over the workers alive)."""

from __future__ import annotations

import http.client
import json
import signal
import socket
from collections.abc import Collection
from pathlib import Path

from metrics_sockets import exchange
from prometheus_client.parser import text_string_to_metric_families
from ratelimit_sockets import connection_to
from server_process import START_DEADLINE, wait_for

PLUGINS = {"BUTTERFLYFX_PLUGINS": "storage.sqlite,graph.sql,http,metrics"}
CREATED = ("POST", "/api/v1/substrates", "201")
CREATIONS = 12
SCRAPES = 6


def counts(text: str) -> dict[str, dict[tuple[str, ...], float]]:
    """Each sample of a scrape by name, then by its label values (in label-name order)."""
    found: dict[str, dict[tuple[str, ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = tuple(value for _, value in sorted(sample.labels.items()))
            found.setdefault(sample.name, {})[key] = sample.value
    return found


def in_use(metrics: dict[str, dict[tuple[str, ...], float]]) -> tuple[float | None, ...]:
    """Idle and active connections of the api pool, and its requests in flight."""
    connections = metrics["butterflyfx_connections"]  # labels in name order: pool, state
    in_flight = metrics["butterflyfx_http_requests_in_flight"]
    return (
        connections.get(("api", "idle")),
        connections.get(("api", "active")),
        in_flight.get(("api",)),
    )


def kept_alive(port: int, worker: int, workers: Collection[int]) -> socket.socket:
    """A connection to ``worker`` that served one request and stays open, idle."""
    conn = connection_to(port, worker, workers)
    conn.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    response = http.client.HTTPResponse(conn, method="GET")
    response.begin()
    response.read()
    assert response.status == 200 and response.getheader("Connection") != "close"
    return conn


def test_either_worker_reports_the_requests_both_workers_served(butterflyfx, tmp_path):
    data = tmp_path / "d"
    earlier = data / "metrics" / "4242-1700000000"  # left by a server that is gone
    earlier.mkdir(parents=True)
    (earlier / "counter_4242.db").write_bytes(b"\0" * 16)
    server = butterflyfx.start(
        "--workers", "2", "--data-dir", str(data), "--timeout", "600", env=PLUGINS
    ).wait_ready()  # idle connections live long enough for the story, however slow
    workers = wait_for(
        lambda: len(ready := {e["pid"] for e in server.events("worker_ready")}) == 2 and ready,
        START_DEADLINE, "two workers ready",
    )  # fmt: skip
    port = int(server.url.rsplit(":", 1)[1])
    turns = sorted(workers)

    def scrape(worker: int) -> dict[str, dict[tuple[str, ...], float]]:
        status, body = exchange(port, worker, workers, "GET", "/api/v1/metrics")
        assert status == 200, body
        return counts(body.decode())

    for n in range(CREATIONS):  # a new connection each, the workers in turn
        body = json.dumps({"expression_type": "constant", "expression_code": str(n)})
        status, answer = exchange(
            port, turns[n % 2], workers, "POST", "/api/v1/substrates", body.encode()
        )
        assert status == 201, answer

    def created(metrics: dict[str, dict[tuple[str, ...], float]]) -> float:
        # labels in name order: method, route, status
        return metrics["butterflyfx_http_requests_total"].get(CREATED, 0)

    # A worker counts a request just after answering it: wait for the last one to land...
    wait_for(lambda: created(scrape(turns[0])) == CREATIONS, START_DEADLINE, "every count")
    for turn in range(SCRAPES):  # ...then every scrape, from either worker, says the same
        metrics = scrape(turns[turn % 2])
        assert created(metrics) == CREATIONS
        duration = metrics["butterflyfx_http_request_duration_seconds_count"]
        assert duration[("POST", "/api/v1/substrates")] == CREATIONS
        assert metrics["butterflyfx_substrates"] == {("storage.sqlite",): CREATIONS}
        assert metrics["butterflyfx_relationships"] == {("storage.sqlite",): 0}

    # Each worker holds one idle keep-alive connection: a scrape from either sees both, and
    # itself, the only request in flight, on the one active connection.
    held = [kept_alive(port, worker, workers) for worker in turns]
    try:  # a worker files its connection as idle just after answering: wait for both
        wait_for(lambda: in_use(scrape(turns[0])) == (2, 1, 1), START_DEADLINE, "two idle")
        assert in_use(scrape(turns[1])) == in_use(scrape(turns[0])) == (2, 1, 1)
    finally:
        for conn in held:
            conn.close()

    with server.client() as client:
        health = client.get("/api/v1/health").json()["plugins"]["metrics"]
    assert health["status"] == "ok" and health["mode"] == "multiprocess"
    folder = Path(health["folder"])
    assert folder.parent == (data / "metrics").resolve()
    assert [path.name for path in folder.parent.iterdir()] == [folder.name]  # earlier: gone
    assert {path.name for path in folder.glob("counter_*.db")} >= {
        f"counter_{pid}.db" for pid in workers
    }  # both workers counted into this run's folder

    assert server.stop(signal.SIGTERM) == 0
