"""`butterflyfx serve` with the events plugin: what a WebSocket client really sees.

Real processes, real sockets, the ``websockets`` client library. A subscriber that stops
reading is made by a client socket with the kernel's smallest receive buffer and segment
size, so the server's sends stall after tens of kilobytes as they would behind a slow
network. The two-worker story uses the Redis server on 127.0.0.1:6379 on a channel of
its own: it skips when no Redis answers, unless BUTTERFLYFX_REQUIRE_SERVICES=1 makes that a
failure. Requests and streams reach a chosen worker through ``ratelimit_sockets``.
"""

from __future__ import annotations

import json
import uuid

import pytest
from events_sockets import Target, next_event, request, subscriber
from server_process import START_DEADLINE, wait_for
from websockets.exceptions import ConnectionClosed, InvalidStatus

from butterflyfx.testing import services

REDIS_URL = "redis://127.0.0.1:6379/0"
SUBSTRATES = "/api/v1/substrates"
HEALTH = "/api/v1/health"


def port_of(server) -> int:
    return int(server.url.rsplit(":", 1)[1])


def lambda_body(code: str) -> dict[str, str]:
    return {"expression_type": "lambda", "expression_code": code}


def test_a_client_with_an_api_key_streams_its_events_and_one_without_gets_401(
    butterflyfx, tmp_path
):
    config = tmp_path / "butterflyfx.toml"
    config.write_text('plugins = ["storage.sqlite", "http", "auth.apikey", "events"]\n')
    server = butterflyfx.start(
        "--config", str(config), "--data-dir", str(tmp_path / "d"), "--access-log"
    ).wait_ready()
    key = server.admin_key
    target = Target(port_of(server))

    with pytest.raises(InvalidStatus) as refused:
        with subscriber(target):
            pass
    with (
        subscriber(target, headers={"Authorization": f"Bearer {key}"}) as with_header,
        subscriber(target, subprotocols=["bearer", key]) as from_browser,
        server.client() as client,
    ):
        created = client.post(SUBSTRATES, json=lambda_body("lambda: 42"))
        heard = [next_event(with_header), next_event(from_browser)]
        chosen = from_browser.subprotocol

    answer = refused.value.response
    assert answer.status_code == 401
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert "Sec-WebSocket-Protocol: bearer" in json.loads(answer.body)["detail"]
    assert created.status_code == 201
    substrate = created.json()["substrate_id"]
    assert [(e["kind"], e["tenant"], e["subject_id"]) for e in heard] == [
        ("substrate.created", "default", substrate)
    ] * 2  # the admin key's tenant
    assert chosen == "bearer"  # the token is never echoed back
    assert server.stop() == 0
    assert key not in server.log_text()  # access log on: neither header nor subprotocol


def test_a_subscriber_that_stops_reading_is_dropped_with_1008_while_every_write_succeeds(
    butterflyfx, tmp_path
):
    config = tmp_path / "butterflyfx.toml"
    config.write_text('plugins = ["storage.sqlite", "http", "events"]\n\n[events]\nbuffer = 8\n')
    server = butterflyfx.start("--config", str(config), "--data-dir", str(tmp_path / "d"))
    server.wait_ready()
    target = Target(port_of(server))

    with subscriber(target, never_reads=True) as stuck, server.client() as client:
        wait_for(
            lambda: client.get(HEALTH).json()["plugins"]["events"]["subscribers"] == 1,
            START_DEADLINE, "the stream to be subscribed",
        )  # fmt: skip
        substrate = client.post(SUBSTRATES, json=lambda_body("lambda: 1")).json()["substrate_id"]
        statuses, health = [], {}
        while not health.get("dropped") and len(statuses) < 5000:  # bounded, not timed
            for _ in range(50):
                statuses.append(
                    client.post(f"{SUBSTRATES}/{substrate}/invoke", json={}).status_code
                )
            health = client.get(HEALTH).json()["plugins"]["events"]
        received = 0
        with pytest.raises(ConnectionClosed) as closed:
            while True:  # now it reads: what the network held, then the close frame
                stuck.recv(timeout=START_DEADLINE)
                received += 1

    assert set(statuses) == {200}  # every write was answered while the reader was stuck
    assert health["dropped"] == 1 and health["queued"] == 0  # dropped, and its queue freed
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    assert closed.value.rcvd.reason == "fell more than 8 events behind"
    assert 8 < received < len(statuses) + 1  # more than a buffer in the network, not all
    assert server.stop() == 0
    assert len(server.events("events_subscriber_dropped")) == 1


@pytest.fixture
def channel() -> str:
    services.redis_client(REDIS_URL).close()  # skips, or fails under REQUIRE_SERVICES
    return f"butterflyfx-test-{uuid.uuid4().hex[:12]}"


def test_two_workers_sharing_redis_deliver_each_event_to_every_subscriber_exactly_once(
    butterflyfx, tmp_path, channel
):
    config = tmp_path / "butterflyfx.toml"
    config.write_text(
        'plugins = ["storage.sqlite", "http", "events"]\n\n'
        f'[events]\nredis = "{REDIS_URL}"\nchannel = "{channel}"\n'
    )
    server = butterflyfx.start(
        "--config", str(config), "--workers", "2", "--data-dir", str(tmp_path / "d")
    ).wait_ready()
    workers = wait_for(
        lambda: len(ready := {e["pid"] for e in server.events("worker_ready")}) == 2 and ready,
        START_DEADLINE, "two workers ready",
    )  # fmt: skip
    first, second = sorted(workers)
    on_a, on_b = Target(port_of(server), first, workers), Target(port_of(server), second, workers)

    def create(target: Target, code: str) -> str:
        status, body = request(target, "POST", SUBSTRATES, lambda_body(code))
        assert status == 201, body
        return str(body["substrate_id"])

    with subscriber(on_a) as hears_a, subscriber(on_b) as hears_b:
        heard_a, heard_b = [], []
        # Each step waits until the other worker heard the last event through Redis, so
        # Redis has passed it on to every worker before the next one happens there: a
        # copy of it delivered twice would come before the next event, and show.
        made = [create(on_b, "lambda: 'by b'")]
        heard_a.append(next_event(hears_a))
        made.append(create(on_a, "lambda: 'by a'"))
        heard_b += [next_event(hears_b), next_event(hears_b)]
        made.append(create(on_b, "lambda: 'by b again'"))
        heard_a += [next_event(hears_a), next_event(hears_a)]
        heard_b.append(next_event(hears_b))

    expected = [("substrate.created", "default", made_id) for made_id in made]
    assert [(e["kind"], e["tenant"], e["subject_id"]) for e in heard_a] == expected
    assert [(e["kind"], e["tenant"], e["subject_id"]) for e in heard_b] == expected
    assert heard_a == heard_b  # the same event, to the microsecond, on both workers
    assert server.stop() == 0
    assert server.events("events_stay_in_their_worker") == []
