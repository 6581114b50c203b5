"""Many instances: two real ``butterflyfx serve`` processes, A and B, on different ports and
data folders over the same PostgreSQL and Redis (``instances_pair``), behave as one service.

Loopback only. Deadlines only keep a broken run from hanging; nothing is timed.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
import uuid

import httpx
import pytest
from events_sockets import Target, next_event, subscriber
from instances_pair import FREE_LIMIT, has_open, two_instances
from server_process import START_DEADLINE, wait_for

SUBSTRATES = "/api/v1/substrates"
RELATIONSHIPS = "/api/v1/relationships"
LOAD_BEFORE_KILL = 1.0  # seconds of writes to A before it is killed
LOAD_DEADLINE = 30.0  # the writer gives up after this, whatever happens


def lambda_body(code: str) -> dict[str, str]:
    return {"expression_type": "lambda", "expression_code": code}


def port_of(server) -> int:
    return int(server.url.rsplit(":", 1)[1])


@pytest.fixture
def pair(butterflyfx, tmp_path):
    """A and B, and an API key of tenant acme's with no rate limit."""
    with two_instances(butterflyfx, tmp_path, "enterprise") as started:
        yield started


@pytest.fixture
def free_pair(butterflyfx, tmp_path):
    """A and B, and an API key of tenant acme's on the free tier."""
    with two_instances(butterflyfx, tmp_path, "free") as started:
        yield started


def test_a_substrate_made_through_a_is_read_invoked_related_and_deleted_through_b(pair):
    key = pair.key
    with pair.a.client(key) as a, pair.b.client(key) as b:
        made = a.post(SUBSTRATES, json=lambda_body("lambda **kw: kw.get('x', 0) * 2"))
        assert made.status_code == 201, made.text
        substrate = made.json()["substrate_id"]
        other = b.post(SUBSTRATES, json=lambda_body("lambda: 'made on b'"))
        assert other.status_code == 201, other.text
        other_id = other.json()["substrate_id"]

        read = b.get(f"{SUBSTRATES}/{substrate}")
        assert read.status_code == 200 and read.json() == made.json()
        invoked = b.post(f"{SUBSTRATES}/{substrate}/invoke", json={"parameters": {"x": 21}})
        assert invoked.status_code == 200 and invoked.json()["result"] == 42
        related = b.post(
            RELATIONSHIPS,
            json={"source_id": substrate, "target_id": other_id, "relationship_type": "dependency"},
        )
        assert related.status_code == 201, related.text
        outgoing = a.get(f"{RELATIONSHIPS}/outgoing/{substrate}")  # A sees what B related
        assert outgoing.status_code == 200, outgoing.text
        assert [r["target_id"] for r in outgoing.json()["items"]] == [other_id]

        assert b.delete(f"{SUBSTRATES}/{substrate}").status_code == 204
        gone = a.get(f"{SUBSTRATES}/{substrate}")
        assert gone.status_code == 404
        assert gone.headers["Content-Type"] == "application/problem+json"
        assert a.get(f"{SUBSTRATES}/{other_id}").status_code == 200


def test_one_tenants_rate_limit_is_shared_by_both_instances(free_pair):
    assert FREE_LIMIT == 20
    with free_pair.a.client(free_pair.key) as a, free_pair.b.client(free_pair.key) as b:
        answers = []
        for _ in range(FREE_LIMIT // 2):
            answers += [a.get(SUBSTRATES).status_code, b.get(SUBSTRATES).status_code]
        assert answers == [200] * FREE_LIMIT
        refused_a, refused_b = a.get(SUBSTRATES), b.get(SUBSTRATES)
    for refused in (refused_a, refused_b):
        assert refused.status_code == 429
        assert refused.headers["Content-Type"] == "application/problem+json"
        assert int(refused.headers["Retry-After"]) >= 1


def test_a_subscriber_on_b_hears_a_substrate_created_through_a(pair):
    key = pair.key
    auth = {"Authorization": f"Bearer {key}"}
    with subscriber(Target(port_of(pair.b)), headers=auth) as on_b, pair.a.client(key) as a:
        made = a.post(SUBSTRATES, json=lambda_body("lambda: 'heard on b'"))
        assert made.status_code == 201, made.text
        heard = next_event(on_b)
    assert (heard["kind"], heard["tenant"], heard["subject_id"]) == (
        "substrate.created", "acme", made.json()["substrate_id"]
    )  # fmt: skip


def test_killing_a_in_the_middle_of_a_write_load_loses_no_acknowledged_write(pair):
    key = pair.key
    acknowledged: list[str] = []
    stop = threading.Event()

    def write_to_a() -> None:
        give_up = time.monotonic() + LOAD_DEADLINE
        with pair.a.client(key) as a:
            while not stop.is_set() and time.monotonic() < give_up:
                body = lambda_body(f"lambda: {uuid.uuid4().hex!r}")  # distinct every time
                try:
                    answer = a.post(SUBSTRATES, json=body, timeout=5.0)
                except httpx.HTTPError:
                    return  # A is gone: this write was never acknowledged
                if answer.status_code == 201:
                    acknowledged.append(answer.json()["substrate_id"])

    writer = threading.Thread(target=write_to_a, daemon=True)
    writer.start()
    time.sleep(LOAD_BEFORE_KILL)
    os.killpg(pair.a.process.pid, signal.SIGKILL)
    pair.a.process.wait(30)
    stop.set()
    writer.join(LOAD_DEADLINE)
    assert not writer.is_alive()
    assert pair.a.process.returncode == -signal.SIGKILL
    assert acknowledged, "A acknowledged no write before it was killed"
    assert len(set(acknowledged)) == len(acknowledged)

    with pair.b.client(key) as b:
        missing = [s for s in acknowledged if b.get(f"{SUBSTRATES}/{s}").status_code != 200]
    assert missing == []


def test_an_instance_waits_for_a_new_key_file_s_lock(butterflyfx, tmp_path):
    # Two instances started together on a new shared key file raced here: switching the file
    # to WAL while the other held its write lock failed at once with "database is locked"
    # (SQLite skips the busy timeout there). Deterministic stand-in for the race: the lock
    # another instance holds while it sets the new file up is held here until the server has
    # the file open, then let go well within the key store's 5 s busy timeout.
    keys = tmp_path / "new-keys.sqlite3"
    config = tmp_path / "butterflyfx.toml"
    config.write_text(
        'plugins = ["storage.sqlite", "http", "auth.apikey"]\n\n'
        f'[auth.apikey]\npath = "{keys}"\nbootstrap = false\n'
    )
    other = sqlite3.connect(keys, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        server = butterflyfx.start("--config", str(config), "--data-dir", str(tmp_path / "d"))
        wait_for(
            lambda: has_open(server.process.pid, keys) or server.process.poll() is not None,
            START_DEADLINE, "the server to open the key file",
        )  # fmt: skip
        time.sleep(0.5)  # the server meets the lock; a correct one waits for it
        other.execute("COMMIT")
    finally:
        other.close()
    server.wait_ready()
