"""`--workers 2`: two Hypercorn worker processes serve one port and one SQLite file.

The servers here load API keys but not the per-process counters of auth.jwt and ratelimit,
which refuse several workers unless they count in Redis (tests/plugins covers that)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from server_process import START_DEADLINE, STOP_DEADLINE, wait_for

KEYS_ONLY = {"BUTTERFLYFX_PLUGINS": "storage.sqlite,graph.sql,http,auth.apikey"}


def is_running(pid: int) -> bool:
    """True while ``pid`` is a live process (a zombie waiting to be reaped is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def ready_workers(server) -> set[int]:
    return {event["pid"] for event in server.events("worker_ready")}


def test_two_workers_share_one_port_and_one_store_and_stop_gracefully(butterflyfx, tmp_path):
    server = butterflyfx.start(
        "--workers", "2", "--data-dir", str(tmp_path / "d"), env=KEYS_ONLY
    ).wait_ready()
    workers = wait_for(lambda: len(ready_workers(server)) == 2 and ready_workers(server),
                       START_DEADLINE, "two workers ready")  # fmt: skip
    assert server.process.pid not in workers
    assert "(2 workers;" in server.output()

    created = server.client().post(
        "/api/v1/substrates", json={"expression_type": "lambda", "expression_code": "lambda: 2"}
    )
    assert created.status_code == 201
    substrate_id = created.json()["substrate_id"]
    for _ in range(8):  # a new connection each time: whichever worker accepts, it is there
        with server.client() as client:
            assert client.get(f"/api/v1/substrates/{substrate_id}").status_code == 200

    assert server.stop(signal.SIGTERM) == 0
    stopped = server.events("worker_stopped")
    assert {event["pid"] for event in stopped} == workers
    assert all(event["graceful"] for event in stopped)
    assert not any(is_running(pid) for pid in workers)


def test_a_signal_to_the_whole_process_group_still_stops_workers_gracefully(butterflyfx, tmp_path):
    # What systemd and docker do: SIGTERM to every process. Workers leave it to the parent.
    server = butterflyfx.start(
        "--workers", "2", "--data-dir", str(tmp_path / "d"), env=KEYS_ONLY
    ).wait_ready()
    workers = wait_for(lambda: len(ready_workers(server)) == 2 and ready_workers(server),
                       START_DEADLINE, "two workers ready")  # fmt: skip

    os.killpg(server.process.pid, signal.SIGTERM)

    assert server.wait() == 0
    assert {e["pid"] for e in server.events("worker_stopped") if e["graceful"]} == workers


def test_workers_of_a_killed_parent_exit_and_free_the_port(butterflyfx, tmp_path):
    data = tmp_path / "d"
    server = butterflyfx.start(
        "--workers", "2", "--data-dir", str(data), env=KEYS_ONLY
    ).wait_ready()
    workers = wait_for(lambda: len(ready_workers(server)) == 2 and ready_workers(server),
                       START_DEADLINE, "two workers ready")  # fmt: skip

    server.send(signal.SIGKILL)  # the parent alone, as the OOM killer would
    assert server.wait() == -signal.SIGKILL
    wait_for(lambda: not any(is_running(pid) for pid in workers), STOP_DEADLINE, "orphans to exit")

    port = int(server.url.rsplit(":", 1)[1])
    again = butterflyfx.start("--data-dir", str(data), port=port).wait_ready()
    assert again.client().get("/api/v1/health").status_code == 200
