"""A write the server acknowledged survives the server being killed outright."""

from __future__ import annotations

import itertools
import signal
import threading

import httpx
from server_process import START_DEADLINE, wait_for

CLIENTS = 3
KILL_AFTER = 60  # acknowledged creates before the SIGKILL lands


def test_kill_9_during_a_stream_of_creates_loses_no_acknowledged_one(butterflyfx, tmp_path):
    data = tmp_path / "data"
    server = butterflyfx.start("--data-dir", str(data)).wait_ready()
    numbers = itertools.count()
    lock = threading.Lock()
    acknowledged: dict[str, str] = {}  # substrate_id -> expression_code
    refused: list[str] = []
    killed = threading.Event()

    def keep_creating() -> None:
        with server.client() as client:
            while not killed.is_set():
                with lock:
                    code = f"lambda **kw: kw.get('x', 0) + {next(numbers)}"
                try:
                    response = client.post(
                        "/api/v1/substrates",
                        json={"expression_type": "lambda", "expression_code": code},
                    )
                except httpx.HTTPError:
                    return  # the server is gone: this create was never acknowledged
                with lock:
                    if response.status_code in (200, 201):
                        acknowledged[response.json()["substrate_id"]] = code
                    else:
                        refused.append(f"{response.status_code} {response.text}")

    clients = [threading.Thread(target=keep_creating) for _ in range(CLIENTS)]
    for client in clients:
        client.start()
    try:
        wait_for(lambda: len(acknowledged) >= KILL_AFTER, START_DEADLINE, "acknowledged creates")
        server.send(signal.SIGKILL)
        assert server.wait() == -signal.SIGKILL
    finally:
        killed.set()
        for client in clients:
            client.join(60)
    assert refused == []

    restarted = butterflyfx.start("--data-dir", str(data)).wait_ready()
    with restarted.client() as client:
        lost = [
            substrate_id
            for substrate_id, code in acknowledged.items()
            if (found := client.get(f"/api/v1/substrates/{substrate_id}")).status_code != 200
            or found.json()["expression_code"] != code
        ]
    assert lost == []
    assert len(acknowledged) >= KILL_AFTER
