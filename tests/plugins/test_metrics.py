"""An operator scrapes ``/api/v1/metrics`` and reads what the server really did: requests
by route template and status, latency, requests in flight, connections by pool and state,
invocations and evaluation errors, auth failures, rate-limit refusals, and the store's size;
never a tenant, never a raw path."""

from __future__ import annotations

import asyncio
import fcntl
import os
from typing import Any

import pytest
from apikey_world import bearer, issue
from metrics_world import API, Scrape, run_server, scrape
from prometheus_client import CONTENT_TYPE_LATEST
from quart import Blueprint

from butterflyfx.core.auth import open_route
from butterflyfx.core.config import read_config
from butterflyfx.core.context import ServerContext
from butterflyfx.core.hookspecs import hookimpl
from butterflyfx.core.runtime import POOLS, STATES, runtime_of
from butterflyfx.kernel import EvaluationError
from butterflyfx.plugins.http.app import create_app
from butterflyfx.plugins.metrics.run_folder import RunFolder

SUBSTRATE = f"{API}/substrates/<substrate_id>"
WITH_KEYS = "storage.sqlite,http,auth.apikey,metrics"


def test_a_scrape_counts_each_request_by_route_template_and_status_and_names_no_tenant(tmp_path):
    async def story(client):
        admin = bearer(await issue(tmp_path, "ops-team", "enterprise", ("read", "admin")))
        ada = bearer(await issue(tmp_path, "acme-corp", "pro", ("read", "write", "invoke")))
        made = []
        for code in ("lambda **kw: 1 / kw.get('d', 0)", "lambda **kw: 7"):
            response = await client.post(
                f"{API}/substrates", headers=ada,
                json={"expression_type": "lambda", "expression_code": code},
            )  # fmt: skip
            assert response.status_code == 201
            made.append((await response.get_json())["substrate_id"])
        divide, seven = made
        related = await client.post(
            f"{API}/relationships", headers=ada,
            json={"source_id": divide, "target_id": seven, "relationship_type": "dependency"},
        )  # fmt: skip
        assert related.status_code == 201
        invoke = f"{API}/substrates/{divide}/invoke"
        answered = await client.post(invoke, headers=ada, json={"parameters": {"d": 4}})
        assert (await answered.get_json())["result"] == 0.25
        failed = await client.post(invoke, headers=ada, json={"parameters": {}})
        assert failed.status_code == 422  # ZeroDivisionError
        missing = await client.get(f"{API}/substrates/0x0000000000000001", headers=ada)
        assert missing.status_code == 404
        assert (await client.get("/no/such/page")).status_code == 404
        assert (await client.get(f"{API}/substrates")).status_code == 401
        assert (await client.get(f"{API}/metrics", headers=ada)).status_code == 403
        assert (await client.get("/metrics")).status_code == 401
        response = await client.get(f"{API}/metrics", headers=admin)
        assert response.headers["Content-Type"] == CONTENT_TYPE_LATEST
        return Scrape.parse((await response.get_data()).decode()), made

    metrics, ids = run_server(tmp_path, WITH_KEYS, story)

    assert metrics.requests() == {
        ("POST", f"{API}/substrates", "201"): 2,
        ("POST", f"{API}/relationships", "201"): 1,
        ("POST", f"{SUBSTRATE}/invoke", "200"): 1,
        ("POST", f"{SUBSTRATE}/invoke", "422"): 1,
        ("GET", SUBSTRATE, "404"): 1,
        ("GET", "unmatched", "404"): 1,
        ("GET", f"{API}/substrates", "401"): 1,
        ("GET", f"{API}/metrics", "403"): 1,
        ("GET", "/metrics", "401"): 1,
    }  # the scrape itself is counted once it is answered, so not in itself
    duration = "butterflyfx_http_request_duration_seconds"
    created = {"method": "POST", "route": f"{API}/substrates"}
    assert metrics.value(f"{duration}_count", **created) == 2
    assert metrics.value(f"{duration}_bucket", le="+Inf", **created) == 2
    assert metrics.value(f"{duration}_sum", **created) > 0
    assert metrics.value("butterflyfx_auth_failures_total") == 2
    assert metrics.value("butterflyfx_rate_limit_refusals_total") == 0
    assert metrics.value("butterflyfx_invocations_total") == 1
    assert metrics.value("butterflyfx_evaluation_errors_total") == 1
    assert metrics.value("butterflyfx_substrates", store="storage.sqlite") == 2
    assert metrics.value("butterflyfx_relationships", store="storage.sqlite") == 1
    # Scrapers see routes and stores, never who asked or which object.
    assert "tenant" not in metrics.label_names()
    assert metrics.label_names() <= {"method", "route", "status", "le", "store", "pool", "state"}
    for private in ("acme-corp", "ops-team", *ids, "/no/such/page"):
        assert private not in metrics.text


def test_public_metrics_need_no_key_and_odd_methods_share_one_label(tmp_path):
    async def story(client):
        assert (await client.open("/metrics", method="BREW")).status_code == 405
        first = await scrape(client, "/metrics")
        health = await (await client.get(f"{API}/health")).get_json()
        return first, await scrape(client), health["plugins"]["metrics"]

    first, second, health = run_server(
        tmp_path, WITH_KEYS, story, BUTTERFLYFX_METRICS__PUBLIC="true"
    )

    assert first.requests() == {("other", "unmatched", "405"): 1}
    assert second.requests() == {
        ("other", "unmatched", "405"): 1,
        ("GET", "/metrics", "200"): 1,
        ("GET", f"{API}/health", "200"): 1,
    }
    assert health["status"] == "ok" and health["mode"] == "single-process"
    assert health["series"] > 0


def test_rate_limit_refusals_are_counted_and_a_store_without_sql_shows_no_relationships(
    tmp_path,
):
    async def story(client):
        statuses = [(await client.get(f"{API}/health")).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        return await scrape(client)  # open server: the anonymous principal has every scope

    metrics = run_server(
        tmp_path, "storage.memory,http,ratelimit,metrics", story,
        BUTTERFLYFX_RATELIMIT__ANONYMOUS="2/minute",
    )  # fmt: skip

    assert metrics.value("butterflyfx_rate_limit_refusals_total") == 1
    assert metrics.value("butterflyfx_http_requests_total", method="GET",
                         route=f"{API}/health", status="429") == 1  # fmt: skip
    assert metrics.value("butterflyfx_substrates", store="storage.memory") == 0
    # The memory store counts relationships per tenant only: the series is left out.
    assert "butterflyfx_relationships" not in metrics.samples


def test_a_folder_left_by_a_finished_run_is_removed_and_a_running_ones_is_kept(tmp_path):
    root = tmp_path / "metrics"
    finished = root / "111-1700000000"
    finished.mkdir(parents=True)
    (finished / "counter_111.db").write_bytes(b"\0" * 16)
    running = root / "222-1700000500"
    running.mkdir()
    held = os.open(running / ".lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(held, fcntl.LOCK_SH)  # as a live worker of that run holds it
    try:
        folder = RunFolder.claim(root, "333-1700001000")

        assert sorted(path.name for path in root.iterdir()) == [
            "222-1700000500", "333-1700001000",
        ]  # fmt: skip
        assert RunFolder.claim(root, "333-1700001000") is folder
        with pytest.raises(BlockingIOError):  # and this run's folder is now held too
            probe = os.open(folder.path / ".lock", os.O_RDWR)
            try:
                fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
            finally:
                os.close(probe)
    finally:
        os.close(held)


def test_a_one_worker_server_clears_the_files_an_earlier_several_worker_run_left(tmp_path):
    earlier = tmp_path / "metrics" / "111-1700000000"
    earlier.mkdir(parents=True)
    (earlier / "counter_111.db").write_bytes(b"\0" * 16)

    async def story(client):
        return await scrape(client)

    metrics = run_server(tmp_path, "storage.memory,http,metrics", story)

    assert metrics.requests() == {}  # counted in memory, from nothing
    assert list((tmp_path / "metrics").iterdir()) == []


# -- in flight, connections, failed evaluations ----------------------------------------

OPEN_SERVER = "storage.memory,http,metrics"  # no auth: the anonymous principal may do all
IN_FLIGHT = "butterflyfx_http_requests_in_flight"
CONNECTIONS = "butterflyfx_connections"


def serve_with(tmp_path, story, plugins: dict[str, Any] | None = None, **env: str) -> Any:
    """One server life with in-process ``plugins`` beside OPEN_SERVER's; ``story(client,
    ctx)`` runs while it serves."""
    plugins = plugins or {}
    names = ",".join([OPEN_SERVER, *plugins])
    config = read_config(None, {"BUTTERFLYFX_PLUGINS": names, **env}, {"data_dir": tmp_path})
    ctx = ServerContext.build(config, plugins)

    async def main() -> Any:
        async with create_app(ctx).test_app() as running:
            return await story(running.test_client(), ctx)

    return asyncio.run(main())


class HeldRequests:
    """A plugin whose ``GET /api/v1/held`` answers only once the test lets it."""

    def __init__(self) -> None:
        self.arrived: asyncio.Event | None = None
        self.release: asyncio.Event | None = None

    @hookimpl
    def butterflyfx_routes(self, app: Any) -> None:
        held = Blueprint("held", __name__)

        @held.get(f"{API}/held")
        @open_route
        async def answer_when_released() -> dict[str, bool]:
            assert self.arrived is not None and self.release is not None
            self.arrived.set()
            await self.release.wait()
            return {"released": True}

        app.register_blueprint(held)


def test_a_request_held_open_is_in_flight_until_answered_and_then_the_gauge_is_back_at_0(
    tmp_path,
):
    plugin = HeldRequests()

    async def story(client, ctx):
        plugin.arrived, plugin.release = asyncio.Event(), asyncio.Event()
        for _ in range(3):
            assert (await client.get(f"{API}/health")).status_code == 200
        before = await scrape(client, "/metrics")  # a scrape at /metrics: pool http
        held = asyncio.create_task(client.get(f"{API}/held"))
        await plugin.arrived.wait()
        during = await scrape(client, "/metrics")
        plugin.release.set()
        assert (await held).status_code == 200
        return before, during, await scrape(client, "/metrics")

    before, during, after = serve_with(tmp_path, story, {"held": plugin})

    # Each scrape is itself in flight while it is answered: http 1, every time.
    assert before.value(IN_FLIGHT, pool="api") == 0  # three health checks, all answered
    assert during.value(IN_FLIGHT, pool="api") == 1  # the held request
    assert after.value(IN_FLIGHT, pool="api") == 0
    assert {s.value(IN_FLIGHT, pool="http") for s in (before, during, after)} == {1}


def test_an_idle_keep_alive_connection_shows_by_pool_and_state_until_the_sweep_closes_it(
    tmp_path,
):
    peer = {"client": ("10.0.0.7", 50001), "server": ("127.0.0.1", 8000)}

    async def story(client, ctx):
        for _ in range(2):  # two requests on one keep-alive connection
            response = await client.get(f"{API}/health", scope_base=peer)
            assert response.status_code == 200
        idle = await scrape(client)  # from no address: not a tracked connection
        connections = runtime_of(ctx).connections
        now = connections.clock()
        assert connections.sweep(now + connections.timeout) == 1  # idle past the timeout
        closed = await scrape(client)
        connections.sweep(now + connections.timeout)  # the next sweep files it away
        return idle, closed, await scrape(client)

    idle, closed, archived = serve_with(tmp_path, story)

    def api_states(scrape: Scrape) -> dict[str, float]:
        return {state: scrape.value(CONNECTIONS, pool="api", state=state) for state in STATES}

    assert api_states(idle) == {**dict.fromkeys(STATES, 0), "idle": 1}
    after_sweep = api_states(closed)  # the server's own sweep may have archived it already
    assert after_sweep["idle"] == 0 and after_sweep["closed"] + after_sweep["archived"] == 1
    assert api_states(archived) == {**dict.fromkeys(STATES, 0), "archived": 1}
    for pool in POOLS:  # every pool and state is a series, from the first scrape
        if pool != "api":
            assert {idle.value(CONNECTIONS, pool=pool, state=s) for s in STATES} == {0}


class FailedInvocations:
    def __init__(self) -> None:
        self.heard: list[tuple[str, dict[str, Any]]] = []

    @hookimpl
    def butterflyfx_on_event(self, event: Any) -> None:
        if event.kind == "substrate.invocation_failed":
            self.heard.append((event.subject_id, dict(event.data)))


def test_a_failed_evaluation_is_counted_once_from_its_event_and_bad_input_is_not(tmp_path):
    listener = FailedInvocations()

    async def story(client, ctx):
        made = await client.post(
            f"{API}/substrates",
            json={"expression_type": "lambda", "expression_code": "lambda **kw: 10 ** kw['n']"},
        )
        substrate_id = (await made.get_json())["substrate_id"]
        invoke = f"{API}/substrates/{substrate_id}/invoke"
        too_big = await client.post(invoke, json={"parameters": {"n": 10**5}})
        assert too_big.status_code == 422
        assert (await too_big.get_json())["type"].endswith("/limit-exceeded")
        # Bad input, refused before anything runs: 422s and a 404, no evaluation error.
        for body in ({"parameters": "n=3"}, {"parameters": {"n": 3}, "extra": True}):
            assert (await client.post(invoke, json=body)).status_code == 422
        missing = f"{API}/substrates/0x0000000000000001/invoke"
        assert (await client.post(missing, json={"parameters": {}})).status_code == 404
        # A failure outside HTTP (a plugin invoking) is counted too: the event is the source.
        with pytest.raises(EvaluationError):
            await ctx.substrates.invoke("default", substrate_id, {})  # no n: KeyError
        return substrate_id, await scrape(client)

    substrate_id, metrics = serve_with(tmp_path, story, {"listener": listener})

    assert metrics.value("butterflyfx_evaluation_errors_total") == 2
    assert metrics.value("butterflyfx_invocations_total") == 0
    assert metrics.requests()[("POST", f"{SUBSTRATE}/invoke", "422")] == 3
    (limited, limit_data), (keyed, key_data) = listener.heard
    assert limited == keyed == substrate_id
    assert limit_data.pop("invocation_time_ms") >= 0 and key_data.pop("invocation_time_ms") >= 0
    assert limit_data == {"error_type": "EvaluationLimitExceeded", "limit": "max_int_bits"}
    assert key_data == {"error_type": "KeyError"}  # never the parameters nor the message
