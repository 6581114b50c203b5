"""Liveness and readiness of a real server whose rate limiter keeps its counters in Redis.

The server reaches Redis through a link the test cuts and restores (``ready_proxy``), as a
network outage would: while it is cut the server is alive but not ready, naming the
plugin at fault; once restored it is ready again, without a restart.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from ready_proxy import RedisLink
from server_process import wait_for

from butterflyfx.testing.services import REDIS_URL, redis_prefix

RECOVERY_DEADLINE = 60.0  # only keeps a broken run from hanging; nothing here is timed


@pytest.fixture
def prefix():
    with redis_prefix() as chosen:
        yield chosen


@pytest.fixture
def link(prefix):
    target = urlsplit(REDIS_URL)
    with RedisLink(target.hostname or "127.0.0.1", target.port or 6379) as opened:
        yield opened


def start_with_redis_rate_limits(butterflyfx, tmp_path, link, prefix):
    config = tmp_path / "butterflyfx.toml"
    config.write_text(
        'plugins = ["storage.sqlite", "graph.sql", "http", "ratelimit"]\n'
        "[ratelimit]\n"
        f'storage = "{link.url}"\n'
        f'key_prefix = "{prefix}"\n'
        'anonymous = "100000/minute"\n'  # this story polls the open routes; it is not about limits
        # A limiter that refuses every kind of request uncounted is down without its Redis
        # (by default it is only degraded: reads pass, writes wait; see test_outages).
        "[ratelimit.on_storage_error]\n"
        'read = "fail_closed"\ninvoke = "fail_closed"\n'
        'write = "fail_closed"\nadmin = "fail_closed"\n'
    )
    return butterflyfx.start(
        "--config", str(config), "--data-dir", str(tmp_path / "data")
    ).wait_ready()


def test_a_redis_outage_makes_the_server_not_ready_but_never_dead_and_it_recovers(
    butterflyfx, tmp_path, link, prefix
):
    server = start_with_redis_rate_limits(butterflyfx, tmp_path, link, prefix)
    client = server.client()

    ready = client.get("/api/v1/ready")
    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == "ok"
    assert ready.json()["plugins"]["ratelimit"]["status"] == "ok"

    link.cut()
    refused = client.get("/api/v1/ready")
    assert refused.status_code == 503, refused.text
    assert refused.headers["Content-Type"] == "application/problem+json"
    problem = refused.json()
    assert problem["down"] == ["ratelimit"]
    assert problem["detail"].startswith("plugin down: ratelimit: ")
    assert "ConnectionError" in problem["plugins"]["ratelimit"]["error"]
    assert problem["plugins"]["storage.sqlite"]["status"] == "ok"  # only the culprit is named
    alive = client.get("/api/v1/health")
    assert alive.status_code == 200  # a liveness probe must not restart it for Redis's sake
    assert alive.json()["plugins"]["ratelimit"]["status"] == "down"

    link.restore()
    recovered = wait_for(
        lambda: (answer := client.get("/api/v1/ready")).status_code == 200 and answer,
        RECOVERY_DEADLINE,
        "/api/v1/ready to answer 200 once Redis is reachable again",
    )
    assert recovered.json()["plugins"]["ratelimit"]["status"] == "ok"
    assert server.stop() == 0
