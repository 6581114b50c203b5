"""`butterflyfx serve --workers 2` with the ratelimit plugin: one limit, whichever worker answers.

Per-process memory counters would give each worker a budget of its own, so the server
refuses them with several workers and names Redis; with Redis every worker counts against
the same budget. Without a key plugin in a real process, the limit shown is the anonymous
one on the open ``/api/v1/health``, kept per client address. The Redis story uses the Redis
server on 127.0.0.1:6379: it skips when none answers, unless BUTTERFLYFX_REQUIRE_SERVICES=1
makes that a failure, and deletes only the keys under its own prefix.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from ratelimit_sockets import get
from server_process import START_DEADLINE, free_port, wait_for

from butterflyfx.testing import services

REDIS_URL = "redis://127.0.0.1:6379/0"
PLUGINS = {"BUTTERFLYFX_PLUGINS": "storage.sqlite,http,ratelimit"}
ANONYMOUS_LIMIT = 10


def test_two_workers_counting_in_memory_refuse_to_start_and_say_to_use_redis(butterflyfx, tmp_path):
    result = butterflyfx.run(
        "serve", "--workers", "2", "--data-dir", str(tmp_path / "d"), "--port", str(free_port()),
        env=PLUGINS,
    )  # fmt: skip

    assert result.returncode == 2
    last = result.stderr.splitlines()[-1]
    assert last.startswith("butterflyfx: cannot start: plugin 'ratelimit': with 2 workers")
    assert '[ratelimit] storage = "redis://127.0.0.1:6379/0"' in last
    assert "Traceback (most recent call last)" not in result.stderr
    assert result.stdout == ""  # it never listened


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix of this test's own on the local Redis; its keys are deleted after."""
    with services.redis_prefix(REDIS_URL) as prefix:
        yield prefix


def test_two_workers_sharing_redis_count_every_connection_against_one_limit(
    butterflyfx, tmp_path, redis_prefix
):
    config = tmp_path / "butterflyfx.toml"
    config.write_text(
        'plugins = ["storage.sqlite", "http", "ratelimit"]\n\n'
        f'[ratelimit]\nstorage = "{REDIS_URL}"\nanonymous = "{ANONYMOUS_LIMIT}/minute"\n'
        f'key_prefix = "{redis_prefix}"\n'
    )
    server = butterflyfx.start(
        "--config", str(config), "--workers", "2", "--data-dir", str(tmp_path / "d")
    ).wait_ready()  # its readiness check spent part of the budget: /health is limited too
    workers = wait_for(
        lambda: len(ready := {e["pid"] for e in server.events("worker_ready")}) == 2 and ready,
        START_DEADLINE, "two workers ready",
    )  # fmt: skip
    port = int(server.url.rsplit(":", 1)[1])
    first, second = sorted(workers)

    answers = []
    for turn in range(ANONYMOUS_LIMIT + 2):  # a new connection each time, workers in turn
        answers.append(get(port, "/api/v1/health", (first, second)[turn % 2], workers))
        if [a.status for a in answers[-2:]] == [429, 429]:
            break

    allowed = [answer for answer in answers if answer.status == 200]
    assert [answer.status for answer in answers] == [200] * len(allowed) + [429, 429]
    assert {answer.worker for answer in allowed} == workers  # both counted...
    assert [int(answer.headers["x-ratelimit-remaining"]) for answer in allowed] == list(
        range(len(allowed) - 1, -1, -1)
    )  # ...down one budget, to 0
    assert {answer.headers["x-ratelimit-limit"] for answer in answers} == {str(ANONYMOUS_LIMIT)}
    assert {answer.worker for answer in answers[-2:]} == workers  # and both refuse after
    assert all(int(answer.headers["retry-after"]) >= 1 for answer in answers[-2:])
    assert server.stop() == 0
