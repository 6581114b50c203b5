"""Every request served is reported to ``butterflyfx_on_request`` listeners, once its
response is sent: route template (not the path), status, principal, timing; and each is
announced to ``butterflyfx_on_request_started`` listeners first, exactly once."""

from __future__ import annotations

import asyncio

from butterflyfx.core.auth import Caller, Principal
from butterflyfx.core.config import read_config
from butterflyfx.core.context import ServerContext
from butterflyfx.core.hookspecs import hookimpl
from butterflyfx.core.observe import RequestRecord
from butterflyfx.plugins.http.app import create_app


class Recorder:
    def __init__(self) -> None:
        self.records: list[RequestRecord] = []

    @hookimpl
    async def butterflyfx_on_request(self, record: RequestRecord) -> None:
        self.records.append(record)


class Broken:
    @hookimpl
    def butterflyfx_on_request_started(self) -> None:
        raise RuntimeError("a listener that fails must not fail the request")

    @hookimpl
    def butterflyfx_on_request(self) -> None:
        raise RuntimeError("a listener that fails must not fail the request")


class Awaiting:
    """Announcements are not awaited: an ``async def`` listener is logged, never run."""

    ran = False

    @hookimpl
    async def butterflyfx_on_request_started(self) -> None:
        Awaiting.ran = True


class Timeline:
    """Every start and every record, in the order they were heard."""

    def __init__(self) -> None:
        self.heard: list[tuple[str, ...]] = []

    @hookimpl
    def butterflyfx_on_request_started(self, method: str, path: str, pool: str) -> None:
        self.heard.append(("started", method, path, pool))

    @hookimpl
    def butterflyfx_on_request(self, record: RequestRecord) -> None:
        self.heard.append(("served", record.method, record.path, str(record.status)))


class OneUser:
    @hookimpl
    def butterflyfx_authenticate(self, caller: Caller) -> Principal | None:
        if caller.token == "ada":
            return Principal("acme", "ada", "pro", frozenset({"read", "write"}), "one-user")
        return None


def test_each_request_is_reported_with_its_route_template_status_and_principal(tmp_path):
    recorder = Recorder()
    plugins = {"broken": Broken(), "recorder": recorder, "one": OneUser()}
    names = ",".join(["storage.memory", "http", *plugins])
    config = read_config(None, {"BUTTERFLYFX_PLUGINS": names}, {"data_dir": tmp_path})
    app = create_app(ServerContext.build(config, plugins))
    ada = {"Authorization": "Bearer ada"}

    async def story() -> None:
        async with app.test_app() as running:
            client = running.test_client()
            made = await client.post(
                "/api/v1/substrates", headers=ada,
                json={"expression_type": "constant", "expression_code": "7"},
            )  # fmt: skip
            substrate_id = (await made.get_json())["substrate_id"]
            assert (
                await client.get(f"/api/v1/substrates/{substrate_id}", headers=ada)
            ).status_code == 200
            refused = await client.post(  # ada has no `invoke` scope: still logged as hers
                f"/api/v1/substrates/{substrate_id}/invoke", headers=ada, json={"parameters": {}}
            )
            assert refused.status_code == 403
            assert (await client.get("/api/v1/substrates")).status_code == 401
            assert (await client.get("/no/such/page")).status_code == 404
            assert (await client.get("/api/v1/health")).status_code == 200

    asyncio.run(story())
    seen = [(r.method, r.route, r.status, r.tenant, r.pool) for r in recorder.records]
    assert seen == [
        ("POST", "/api/v1/substrates", 201, "acme", "api"),
        ("GET", "/api/v1/substrates/<substrate_id>", 200, "acme", "api"),
        ("POST", "/api/v1/substrates/<substrate_id>/invoke", 403, "acme", "api"),
        ("GET", "/api/v1/substrates", 401, None, "api"),
        ("GET", None, 404, None, "http"),
        ("GET", "/api/v1/health", 200, None, "api"),
    ]
    first = recorder.records[0]
    assert first.path == "/api/v1/substrates" and first.subject == "ada"
    assert all(r.duration_ms > 0 and r.request_id and r.worker for r in recorder.records)
    assert not any(r.failed for r in recorder.records)


def test_each_request_is_announced_once_before_its_record_whatever_the_answer(tmp_path):
    timeline = Timeline()
    plugins = {"broken": Broken(), "awaiting": Awaiting(), "timeline": timeline}
    names = ",".join(["storage.memory", "http", *plugins])
    env = {"BUTTERFLYFX_PLUGINS": names, "BUTTERFLYFX_SERVER__MAX_CONNECTIONS": "1"}
    config = read_config(None, env, {"data_dir": tmp_path, "max_body_bytes": 1024})
    app = create_app(ServerContext.build(config, plugins))

    def on(port: int) -> dict[str, object]:  # a client connection the edge tracks
        return {"client": ("10.0.0.7", port), "server": ("127.0.0.1", 8000)}

    async def story() -> list[int]:
        async with app.test_app() as running:
            client = running.test_client()
            return [
                (await client.get("/api/v1/health", scope_base=on(5001))).status_code,
                (await client.get("/no/such/page", scope_base=on(5001))).status_code,
                (await client.post("/api/v1/substrates", data=b"x" * 2048)).status_code,
                # 5001 stays open (keep-alive) and max_connections is 1: a second is refused
                (await client.get("/api/v1/health", scope_base=on(5002))).status_code,
            ]

    assert asyncio.run(story()) == [200, 404, 413, 503]
    assert timeline.heard == [
        ("started", "GET", "/api/v1/health", "api"), ("served", "GET", "/api/v1/health", "200"),
        ("started", "GET", "/no/such/page", "http"), ("served", "GET", "/no/such/page", "404"),
        ("started", "POST", "/api/v1/substrates", "api"),
        ("served", "POST", "/api/v1/substrates", "413"),
        ("started", "GET", "/api/v1/health", "api"), ("served", "GET", "/api/v1/health", "503"),
    ]  # fmt: skip
    assert not Awaiting.ran
