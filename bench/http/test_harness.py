"""The benchmark's baseline is honest and its rows are what they say.

A ratio against a baseline that skips work, or answers something else, would flatter us:
on every engine the bare app must answer what our server answers, from the same rows. The
two-instance row must really drive both instances at once and add their figures up, and a
row whose PostgreSQL or Redis is missing is skipped with the reason, not a crash.

Servers run as real processes (one worker each); where PostgreSQL or Redis does not answer
their tests skip (or fail under BUTTERFLYFX_REQUIRE_SERVICES=1). Nothing here is timed:
wrk runs for a second only to show the driving and the summing work.
"""

from __future__ import annotations

import asyncio
import importlib.util
import shutil
import sys
from pathlib import Path

import asyncpg
import engine_setups
import pytest

from butterflyfx.testing.process import free_port
from butterflyfx.testing.services import missing

_spec = importlib.util.spec_from_file_location(
    "butterflyfx_bench_http_run", Path(__file__).with_name("run.py")
)
assert _spec is not None and _spec.loader is not None
harness = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = harness  # dataclasses look their module up by name
_spec.loader.exec_module(harness)

ENGINES = engine_setups.ENGINES


def require_services(setup) -> None:
    for service in engine_setups.services_needed(
        setup.engine, engine_setups.our_plugins(setup.engine)
    ):
        reason = engine_setups.missing_service(service)
        if reason:
            missing(reason)


# PostgreSQL's bare app is checked by the two-instance test below, on the same code path.
@pytest.fixture(scope="module", params=["sqlite", "redis"])
def servers(request, tmp_path_factory):
    setup = harness.Setup(ENGINES[request.param], instances=1, workers=1)
    require_services(setup)
    folder = tmp_path_factory.mktemp(f"bench-{request.param}")
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("BENCH_PLUGINS", raising=False)  # the default, secured plugin set
        with harness.deployed(setup, folder) as running:
            yield running


def test_a_substrate_read_through_the_bare_app_matches_our_server(servers):
    path = f"/api/v1/substrates/{servers.substrate_id}"
    (ours,), (bare,) = servers.ours, servers.bare

    ours_status, ours_body = harness.request("GET", ours.url + path, headers=ours.headers)
    bare_status, bare_body = harness.request("GET", bare.url + path)

    assert (ours_status, bare_status) == (200, 200)
    assert bare_body == ours_body
    assert ours_body["substrate_id"] == servers.substrate_id
    assert ours_body["metadata"] == harness.SEED["metadata"]


def test_the_seed_invoked_through_the_bare_app_gives_our_result(servers):
    path = f"/api/v1/substrates/{servers.substrate_id}/invoke"
    (ours,), (bare,) = servers.ours, servers.bare

    ours_status, ours_body = harness.request(
        "POST", ours.url + path, harness.INVOKE_BODY, headers=ours.headers
    )
    bare_status, bare_body = harness.request("POST", bare.url + path, harness.INVOKE_BODY)

    assert (ours_status, bare_status) == (200, 200)
    assert set(bare_body) == set(ours_body) == {"substrate_id", "result", "invocation_time_ms"}
    assert bare_body["substrate_id"] == ours_body["substrate_id"] == servers.substrate_id
    assert bare_body["result"] == ours_body["result"] == 35
    assert isinstance(bare_body["invocation_time_ms"], float)
    assert isinstance(ours_body["invocation_time_ms"], float)


def test_an_unknown_substrate_is_404_on_both(servers):
    path = "/api/v1/substrates/0x0000000000000001"
    (ours,), (bare,) = servers.ours, servers.bare

    assert harness.request("GET", ours.url + path, headers=ours.headers)[0] == 404
    assert harness.request("GET", bare.url + path)[0] == 404


def test_our_server_runs_the_engine_s_store_with_the_guard_of_a_deployment(servers):
    engine = ENGINES[servers.space.engine.name]

    assert servers.plugins[0] == engine.storage
    assert {"http", "auth.apikey", "ratelimit"} <= set(servers.plugins)
    assert "Authorization" in servers.ours[0].headers


# -- two instances ----------------------------------------------------------------------


async def _schema_exists(schema: str) -> bool:
    db = await asyncpg.connect(engine_setups.POSTGRES_DSN, timeout=5)
    try:
        return bool(await db.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", schema))
    finally:
        await db.close()


def test_two_instances_serve_one_schema_are_driven_at_once_and_summed(tmp_path):
    if shutil.which("wrk") is None:
        pytest.skip(harness.WRK_INSTALL)
    setup = harness.Setup(ENGINES["postgres"], instances=2, workers=1)
    require_services(setup)

    with harness.deployed(setup, tmp_path) as servers:
        space = servers.space
        get = f"/api/v1/substrates/{servers.substrate_id}"
        invoke = f"{get}/invoke"
        # Made through the first instance, the seed is read and invoked alike everywhere.
        everyone = servers.ours + servers.bare
        reads = [harness.request("GET", s.url + get, headers=s.headers) for s in everyone]
        results = [
            harness.request("POST", s.url + invoke, harness.INVOKE_BODY, headers=s.headers)[1]
            for s in everyone
        ]
        assert len(servers.ours) == len(servers.bare) == 2
        assert all(read == reads[0] for read in reads) and reads[0][0] == 200
        assert [result["result"] for result in results] == [35] * 4
        assert asyncio.run(_schema_exists(space.schema))

        for side in (servers.ours, servers.bare):
            parts = harness.drive(side, get, seconds=1, threads=2, connections=4, script=None)
            summed = harness.combined(parts)
            assert len(parts) == 2  # one wrk per instance, at the same time
            assert all(part.requests > 0 and part.worker_cpu_s for part in parts)
            assert summed.requests == sum(part.requests for part in parts)
            assert summed.non_2xx == summed.socket_errors == 0

    # Afterwards the row leaves nothing behind: its schema is dropped, its keys deleted.
    assert not asyncio.run(_schema_exists(space.schema))
    with engine_setups.redis_client() as client:
        assert not list(client.scan_iter(match=f"{space.prefix}:*"))


def test_instances_add_up_and_the_slower_one_s_latency_counts():
    a = harness.Measurement(1000.0, 2.0, 9.0, 10_000, 0, 1, [3.0])
    b = harness.Measurement(800.0, 3.0, 7.0, 8_000, 2, 0, [2.5])

    both = harness.combined([a, b])

    assert both.requests_per_second == 1800.0
    assert (both.p50_ms, both.p99_ms) == (3.0, 9.0)
    assert (both.requests, both.non_2xx, both.socket_errors) == (18_000, 2, 1)
    assert both.worker_cpu_s == [3.0, 2.5]
    assert both.per_instance_rps == [1000.0, 800.0]


# -- choosing rows, and rows that cannot run ------------------------------------------


def test_by_default_every_engine_and_two_single_worker_instances_are_measured(monkeypatch):
    for name in ("BENCH_ENGINES", "BENCH_INSTANCES", "BENCH_WORKERS", "BENCH_INSTANCE_WORKERS"):
        monkeypatch.delenv(name, raising=False)

    rows = [(setup.name, setup.instances, setup.workers) for setup in harness.plan()]

    assert rows == [
        ("sqlite", 1, 2), ("postgres", 1, 2), ("redis", 1, 2), ("2 instances, postgres", 2, 1)
    ]  # fmt: skip


def test_the_environment_chooses_the_rows(monkeypatch):
    monkeypatch.setenv("BENCH_ENGINES", "redis, sqlite")
    monkeypatch.setenv("BENCH_INSTANCES", "0")
    assert [setup.name for setup in harness.plan()] == ["redis", "sqlite"]

    monkeypatch.setenv("BENCH_ENGINES", "none")
    monkeypatch.setenv("BENCH_INSTANCES", "3")
    monkeypatch.setenv("BENCH_INSTANCE_WORKERS", "2")
    (setup,) = harness.plan()
    assert (setup.name, setup.instances, setup.workers) == ("3 instances, postgres", 3, 2)


def test_an_unknown_engine_is_named_with_the_choices(monkeypatch, capsys):
    monkeypatch.setenv("BENCH_ENGINES", "sqlite,mysql")
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/wrk")

    assert harness.main() == 2
    error = capsys.readouterr().err
    assert "mysql" in error and "sqlite, postgres, redis" in error


def test_a_row_whose_database_does_not_answer_is_skipped_with_the_reason(
    monkeypatch, tmp_path, capsys
):
    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/test"
    monkeypatch.setattr(engine_setups, "POSTGRES_DSN", dead)
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/wrk")
    monkeypatch.setenv("BENCH_ENGINES", "postgres")
    monkeypatch.setenv("BENCH_INSTANCES", "2")
    monkeypatch.setenv("BENCH_OUTPUT", str(tmp_path / "http.json"))

    assert harness.main() == 1  # nothing measured
    out, err = capsys.readouterr()
    assert f"postgres: SKIPPED, no PostgreSQL answers at {dead}" in out
    assert f"2 instances, postgres: SKIPPED, no PostgreSQL answers at {dead}" in out
    assert "nothing was measured" in err
    assert '"rows": []' in (tmp_path / "http.json").read_text()


def test_a_plugin_set_without_redis_needs_no_redis():
    sqlite = ENGINES["sqlite"]

    assert engine_setups.services_needed(sqlite, ["storage.sqlite", "http"]) == ()
    assert engine_setups.services_needed(sqlite, ["storage.sqlite", "ratelimit"]) == ("redis",)
    assert engine_setups.services_needed(ENGINES["postgres"], ["events"]) == (
        "postgres",
        "redis",
    )


def test_bench_plugins_cannot_swap_the_engine_s_store(monkeypatch):
    monkeypatch.setenv("BENCH_PLUGINS", "storage.sqlite,graph.sql,http")

    assert engine_setups.our_plugins(ENGINES["redis"]) == ["storage.redis", "http"]
    assert engine_setups.our_plugins(ENGINES["postgres"]) == [
        "storage.postgres",
        "graph.sql",
        "http",
    ]


# -- wrk and workers ----------------------------------------------------------------------


def test_wrk_output_is_read_in_milliseconds():
    output = """Running 1s test @ http://127.0.0.1:1/
  2 threads and 32 connections
  Latency Distribution
     50%  635.91us
     75%  712.00us
     90%    0.86ms
     99%    1.58s
  21645 requests in 10.10s, 3.52MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 7
Requests/sec:   2143.22
Transfer/sec:    356.61KB
"""
    measured = harness.parse_wrk(output)

    assert measured.requests_per_second == 2143.22
    assert measured.p50_ms == pytest.approx(0.63591)
    assert measured.p99_ms == pytest.approx(1580.0)
    assert (measured.requests, measured.non_2xx, measured.socket_errors) == (21645, 7, 3)


def test_without_wrk_the_driver_says_how_to_install_it(monkeypatch, capsys):
    monkeypatch.setattr(shutil, "which", lambda name: None)

    assert harness.main() != 0
    assert "apt-get install -y wrk" in capsys.readouterr().err


def test_a_run_served_by_one_of_two_workers_is_not_counted_as_two():
    assert harness.balanced([5.1, 4.2], workers=2)
    assert not harness.balanced([9.6], workers=2)  # the other worker stayed idle
    assert not harness.balanced([8.0, 1.0], workers=2)
    assert harness.balanced([9.6], workers=1)
    assert harness.balanced([], workers=2)  # no /proc: nothing known, the run counts
