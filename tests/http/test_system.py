"""Health, docs, request ids, other plugins' routes, and the last-resort 500."""

from __future__ import annotations

import asyncio
import re
import types
import uuid

import pytest
from pydantic import BaseModel
from quart import Blueprint
from quart_schema import validate_request
from substrate_api import API, body, problem

from butterflyfx.core.config import read_config
from butterflyfx.core.context import ServerContext
from butterflyfx.core.health import PluginHealth
from butterflyfx.core.hookspecs import hookimpl
from butterflyfx.core.plugins import PluginError
from butterflyfx.plugins.http.app import create_app


def run_with_plugins(tmp_path, extra, scenario):
    """One server life with third-party plugins given as objects (not entry points)."""

    async def main():
        config = read_config(
            None,
            env={"BUTTERFLYFX_PLUGINS": ",".join(["storage.memory", "http", *extra])},
            overrides={"data_dir": tmp_path},
        )
        app = create_app(ServerContext.build(config, extra))
        async with app.test_app() as running:
            return await scenario(running.test_client())

    return asyncio.run(main())


def plugin(name, **hooks):
    return types.SimpleNamespace(__name__=name, **{k: hookimpl(v) for k, v in hooks.items()})


# -- health ---------------------------------------------------------------------------


def test_health_reports_every_plugin_and_the_version(serve):
    async def story(client):
        response = await client.get(f"{API}/health")
        assert response.status_code == 200
        health = await body(response)
        assert health["status"] == "ok"
        assert re.fullmatch(r"\d+\.\d+\.\d+.*", health["version"])
        assert health["uptime_seconds"] >= 0
        assert set(health["plugins"]) == {"storage.memory", "http"}
        assert all(state["status"] == "ok" for state in health["plugins"].values())
        assert response.headers["Cache-Control"] == "no-store"

    serve(story)


def test_a_plugin_that_is_down_makes_the_server_not_ready_but_still_alive(tmp_path):
    async def story(client):
        health = await client.get(f"{API}/health")
        ready = await client.get(f"{API}/ready")
        return health.status_code, await body(health), await problem(ready, 503), ready.headers

    down = plugin("cache", butterflyfx_health=lambda ctx: PluginHealth("down", {"error": "gone"}))
    status, health, refused, headers = run_with_plugins(tmp_path, {"cache": down}, story)
    assert status == 200  # liveness: the process answers; restarting it would not help
    assert health["status"] == "down"
    assert health["plugins"]["cache"] == {"status": "down", "error": "gone"}
    assert refused["type"].endswith("/not-ready") and refused["down"] == ["cache"]
    assert refused["detail"] == "plugin down: cache: gone"
    assert refused["plugins"]["cache"] == {"status": "down", "error": "gone"}
    assert headers["Cache-Control"] == "no-store"


def test_a_degraded_plugin_leaves_the_server_ready(tmp_path):
    async def story(client):
        ready = await client.get(f"{API}/ready")
        return ready.status_code, await body(ready)

    slow = plugin("cache", butterflyfx_health=lambda ctx: PluginHealth("degraded", {"ms": 900}))
    status, ready = run_with_plugins(tmp_path, {"cache": slow}, story)
    assert (status, ready["status"]) == (200, "degraded")
    assert ready["plugins"]["cache"] == {"status": "degraded", "ms": 900}


# -- request ids ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", [f"{API}/health", f"{API}/substrates/0x1", f"{API}/nowhere", f"{API}/substrates/x"]
)
def test_a_safe_client_request_id_is_echoed_on_every_response(serve, path):
    async def story(client):
        response = await client.get(path, headers={"X-Request-ID": "trace-42.a_B"})
        assert response.headers["X-Request-ID"] == "trace-42.a_B"

    serve(story)


@pytest.mark.parametrize(
    "given", [None, "", "has space", "semi;colon", "x" * 129, "\u00e9t\u00e9", "a\tb"]
)
def test_a_missing_or_unsafe_request_id_is_replaced_by_a_fresh_one(serve, given):
    async def story(client):
        headers = {} if given is None else {"X-Request-ID": given}
        first = await client.get(f"{API}/health", headers=headers)
        second = await client.get(f"{API}/health", headers=headers)
        ids = [first.headers["X-Request-ID"], second.headers["X-Request-ID"]]
        assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
        assert uuid.UUID(hex=ids[0]).version == 4
        assert ids[0] != ids[1]

    serve(story)


def test_a_websocket_handshake_on_a_route_that_does_not_exist_gets_a_404_problem(serve):
    """``/api/v1/events`` on a server without the events plugin: a client is told the
    route is not there, not given a 500."""
    from quart.testing import WebsocketResponseError

    async def handshake(client):
        try:
            async with client.websocket(f"{API}/events") as socket:
                await socket.receive()
        except WebsocketResponseError as refused:
            return refused.response
        raise AssertionError("the handshake was accepted")

    async def story(client):
        answer = await asyncio.wait_for(handshake(client), 10)  # a failing handler never answers
        assert answer.status_code == 404
        assert answer.content_type == "application/problem+json"
        document = await answer.get_json(force=True)
        assert document["detail"] == f"no route matches {API}/events"
        assert document["instance"] == f"{API}/events"

    serve(story)


def test_a_128_character_request_id_is_still_echoed(serve):
    async def story(client):
        given = "A" * 128
        response = await client.get(f"{API}/health", headers={"X-Request-ID": given})
        assert response.headers["X-Request-ID"] == given

    serve(story)


# -- docs -----------------------------------------------------------------------------


def test_the_docs_page_loads_everything_from_this_server(serve):
    async def story(client):
        page = await client.get(f"{API}/docs")
        assert page.status_code == 200
        assert page.headers["Content-Type"].startswith("text/html")
        html = (await page.get_data()).decode()
        assert "SwaggerUIBundle" in html
        urls = re.findall(r'(?:src|href)="([^"]+)"', html) + re.findall(r'url: "([^"]+)"', html)
        assert urls and all(u.startswith("/api/v1/") for u in urls), urls  # no CDN
        assert "/api/v1/openapi.json" in urls
        for url in urls:
            asset = await client.get(url)
            assert asset.status_code == 200, url
            assert len(await asset.get_data()) > 100, url
        script = await client.get(f"{API}/docs/swagger-ui-bundle.js")
        assert "javascript" in script.headers["Content-Type"]
        assert "max-age" in script.headers["Cache-Control"]
        css = await client.get(f"{API}/docs/swagger-ui.css")
        assert css.headers["Content-Type"].startswith("text/css")

    serve(story)


def test_only_the_docs_assets_are_served_from_the_package(serve):
    async def story(client):
        for name in ("index.html", "swagger-initializer.js", "..%2F__init__.py", "x.js.map"):
            await problem(await client.get(f"{API}/docs/{name}"), 404)

    serve(story)


def test_the_openapi_document_lists_every_route(serve):
    async def story(client):
        response = await client.get(f"{API}/openapi.json")
        assert response.status_code == 200
        spec = await body(response)
        assert spec["openapi"].startswith("3.1")
        operations = {
            (method.upper(), path) for path, item in spec["paths"].items() for method in item
        }
        assert operations == {
            ("POST", "/api/v1/substrates"),
            ("POST", "/api/v1/substrates/batch"),
            ("GET", "/api/v1/substrates"),
            ("GET", "/api/v1/substrates/{substrate_id}"),
            ("PATCH", "/api/v1/substrates/{substrate_id}"),
            ("DELETE", "/api/v1/substrates/{substrate_id}"),
            ("POST", "/api/v1/substrates/{substrate_id}/divide"),
            ("POST", "/api/v1/substrates/{substrate_id}/invoke"),
            ("POST", "/api/v1/substrates/multiply"),
            ("POST", "/api/v1/relationships"),
            ("POST", "/api/v1/relationships/batch"),
            ("GET", "/api/v1/relationships"),
            ("GET", "/api/v1/relationships/{relationship_id}"),
            ("DELETE", "/api/v1/relationships/{relationship_id}"),
            ("GET", "/api/v1/relationships/outgoing/{substrate_id}"),
            ("GET", "/api/v1/relationships/incoming/{substrate_id}"),
            ("GET", "/api/v1/relationships/graph"),
            ("POST", "/api/v1/query/traverse"),
            ("POST", "/api/v1/query/path"),
            ("POST", "/api/v1/query/search"),
            ("GET", "/api/v1/query/stats"),
            ("GET", "/api/v1/health"),
            ("GET", "/api/v1/ready"),
            ("GET", "/api/status"),
            ("GET", "/api/stats"),
            ("GET", "/api/connections"),
            ("GET", "/api/manifold/evaluate"),
        }
        create = spec["paths"]["/api/v1/substrates"]["post"]
        request_schema = create["requestBody"]["content"]["application/json"]["schema"]
        assert set(request_schema["properties"]) == {
            "expression_type", "expression_code", "metadata",
        }  # fmt: skip
        assert {"200", "201", "422"} <= set(create["responses"])
        assert "application/problem+json" in create["responses"]["422"]["content"]
        relate = spec["paths"]["/api/v1/relationships"]["post"]
        relate_schema = relate["requestBody"]["content"]["application/json"]["schema"]
        if "$ref" in relate_schema:
            relate_schema = spec["components"]["schemas"][relate_schema["$ref"].split("/")[-1]]
        assert set(relate_schema["properties"]) == {
            "source_id", "target_id", "relationship_type", "bidirectional", "weight", "metadata",
        }  # fmt: skip
        graph = spec["paths"]["/api/v1/relationships/graph"]["get"]
        assert {p["name"] for p in graph["parameters"]} == {"root", "depth", "types", "max_nodes"}
        assert "503" in graph["responses"]
        ids = [op["operationId"] for item in spec["paths"].values() for op in item.values()]
        assert len(ids) == len(set(ids))

    serve(story)


# -- other plugins' routes and the last resort -----------------------------------------


class Order(BaseModel):
    quantity: int


def shop_plugin():
    def butterflyfx_routes(app, ctx):
        bp = Blueprint("shop", __name__, url_prefix="/api/v1/shop")

        @bp.get("/hello")
        async def hello():
            return {"hello": "world", "plugins": ctx.plugins.names}

        @bp.post("/orders")
        @validate_request(Order)
        async def order(data: Order):
            return {"ordered": data.quantity}

        @bp.get("/boom")
        async def boom():
            raise RuntimeError("secret database password is hunter2")

        app.register_blueprint(bp)

    return plugin("shop", butterflyfx_routes=butterflyfx_routes)


def test_another_plugin_adds_routes_that_share_json_and_request_ids(tmp_path):
    async def story(client):
        response = await client.get(f"{API}/shop/hello", headers={"X-Request-ID": "abc"})
        assert response.status_code == 200
        assert response.headers["X-Request-ID"] == "abc"
        assert await body(response) == {
            "hello": "world",
            "plugins": ["storage.memory", "http", "shop"],
        }

    run_with_plugins(tmp_path, {"shop": shop_plugin()}, story)


def test_another_plugins_quart_schema_validation_answers_with_the_same_problems(tmp_path):
    async def story(client):
        ok = await client.post(f"{API}/shop/orders", json={"quantity": 3})
        assert await body(ok) == {"ordered": 3}
        wrong = await problem(await client.post(f"{API}/shop/orders", json={"quantity": "x"}), 422)
        assert wrong["field"] == "quantity"
        broken = await client.post(
            f"{API}/shop/orders", data=b"{", headers={"Content-Type": "application/json"}
        )
        await problem(broken, 400)
        not_json = await client.post(f"{API}/shop/orders", data=b"quantity=3")
        assert not_json.status_code in (400, 415, 422)
        await problem(not_json, not_json.status_code)

    run_with_plugins(tmp_path, {"shop": shop_plugin()}, story)


def test_an_unexpected_error_is_a_500_problem_that_reveals_nothing(tmp_path, capsys, caplog):
    async def story(client):
        response = await client.get(f"{API}/shop/boom", headers={"X-Request-ID": "req-500"})
        found = await problem(response, 500)
        assert found["type"].endswith("/internal-error")
        assert found["request_id"] == "req-500"
        text = (await response.get_data()).decode()
        assert "hunter2" not in text and "RuntimeError" not in text
        assert response.headers["X-Request-ID"] == "req-500"

    run_with_plugins(tmp_path, {"shop": shop_plugin()}, story)
    logged = capsys.readouterr()  # structlog prints, or hands to logging once configured so
    assert "req-500" in logged.out + logged.err + caplog.text  # the operator can find it


def test_an_async_routes_hook_is_refused_by_name(tmp_path):
    async def butterflyfx_routes(app, ctx):
        return None

    config = read_config(
        None,
        env={"BUTTERFLYFX_PLUGINS": "storage.memory,http,lazy"},
        overrides={"data_dir": tmp_path},
    )
    ctx = ServerContext.build(
        config, {"lazy": plugin("lazy", butterflyfx_routes=butterflyfx_routes)}
    )
    with pytest.raises(PluginError, match="'lazy'"):
        create_app(ctx)


def test_the_docs_can_be_switched_off(tmp_path):
    async def story(client):
        await problem(await client.get(f"{API}/docs"), 404)
        assert (await client.get(f"{API}/openapi.json")).status_code == 200

    async def main():
        config = read_config(
            None,
            env={"BUTTERFLYFX_PLUGINS": "storage.memory,http", "BUTTERFLYFX_HTTP__DOCS": "false"},
            overrides={"data_dir": tmp_path},
        )
        app = create_app(ServerContext.build(config))
        async with app.test_app() as running:
            await story(running.test_client())

    asyncio.run(main())


def test_a_tryfirst_plugin_can_replace_a_built_in_route(tmp_path):
    def butterflyfx_routes(app, ctx):
        bp = Blueprint("own_health", __name__)

        @bp.get("/api/v1/health")
        async def health():
            return {"status": "ok", "mine": True}

        app.register_blueprint(bp)

    own = types.SimpleNamespace(
        __name__="own", butterflyfx_routes=hookimpl(tryfirst=True)(butterflyfx_routes)
    )

    async def story(client):
        return await body(await client.get(f"{API}/health"))

    assert run_with_plugins(tmp_path, {"own": own}, story) == {"status": "ok", "mine": True}
