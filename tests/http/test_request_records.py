"""Every request served is reported to ``butterflyfx_on_request`` listeners, once its
response is sent: route template (not the path), status, principal, timing."""

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
    def butterflyfx_on_request(self) -> None:
        raise RuntimeError("a listener that fails must not fail the request")


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
            assert (await client.get("/api/v1/substrates")).status_code == 401
            assert (await client.get("/no/such/page")).status_code == 404
            assert (await client.get("/api/v1/health")).status_code == 200

    asyncio.run(story())
    seen = [(r.method, r.route, r.status, r.tenant, r.pool) for r in recorder.records]
    assert seen == [
        ("POST", "/api/v1/substrates", 201, "acme", "api"),
        ("GET", "/api/v1/substrates/<substrate_id>", 200, "acme", "api"),
        ("GET", "/api/v1/substrates", 401, None, "api"),
        ("GET", None, 404, None, "http"),
        ("GET", "/api/v1/health", 200, None, "api"),
    ]
    first = recorder.records[0]
    assert first.path == "/api/v1/substrates" and first.subject == "ada"
    assert all(r.duration_ms > 0 and r.request_id and r.worker for r in recorder.records)
    assert not any(r.failed for r in recorder.records)
