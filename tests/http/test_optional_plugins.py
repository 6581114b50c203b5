"""A plugin marked ``required = false`` that fails to load or to start: the server starts
without it, says which plugin and why in ``/api/v1/ready`` and ``/api/v1/health``, and its
routes answer 503 naming it. Without the mark the same failure stops the server, naming it."""

from __future__ import annotations

import asyncio
import types

import pytest
from quart import Blueprint
from substrate_api import API, body, problem
from substrate_api import SEED_SUBSTRATE as SUBSTRATE

from butterflyfx.core.config import ConfigError, effective_settings, read_config
from butterflyfx.core.context import ServerContext
from butterflyfx.core.hookspecs import hookimpl
from butterflyfx.core.plugins import PluginError
from butterflyfx.plugins.http.app import create_app

BASE = ["storage.memory", "http"]


def config_for(tmp_path, plugins, sections="", env=None):
    path = tmp_path / "butterflyfx.toml"
    path.write_text(f"plugins = {plugins!r}\n{sections}".replace("'", '"'), encoding="utf-8")
    return read_config(path, env=env or {}, overrides={"data_dir": tmp_path})


def run(config, extra, scenario):
    async def main():
        app = create_app(ServerContext.build(config, extra))
        async with app.test_app() as running:
            return await scenario(running.test_client())

    return asyncio.run(main())


def plugin(name, **hooks):
    return types.SimpleNamespace(__name__=name, **{k: hookimpl(v) for k, v in hooks.items()})


def failing_start(ctx):
    raise ConnectionRefusedError("audit log at 10.0.0.9:514 refused the connection")


def audit_routes(app, ctx):
    bp = Blueprint("audit", __name__)

    @bp.get("/api/v1/audit")
    async def audit():
        return {"entries": []}

    app.register_blueprint(bp)


AUDIT = plugin("audit", butterflyfx_startup=failing_start, butterflyfx_routes=audit_routes)


async def look_around(client):
    ready = await client.get(f"{API}/ready")
    health = await client.get(f"{API}/health")
    created = await client.post(f"{API}/substrates", json=SUBSTRATE)
    audit = await client.get(f"{API}/audit")
    return {
        "ready": (ready.status_code, await body(ready)),
        "health": await body(health),
        "created": created.status_code,
        "audit": await problem(audit, 503),
    }


def test_an_optional_plugin_that_fails_to_start_is_left_out_and_reported(tmp_path):
    config = config_for(tmp_path, [*BASE, "audit"], "[audit]\nrequired = false\n")
    seen = run(config, {"audit": AUDIT}, look_around)

    status, ready = seen["ready"]
    assert status == 200  # the server takes traffic without it
    assert ready["status"] == "degraded"
    reported = ready["plugins"]["audit"]
    assert reported["status"] == "down" and reported["state"] == "failed"
    assert reported["required"] is False
    assert reported["error"] == (
        "plugin 'audit' failed to start: ConnectionRefusedError: "
        "audit log at 10.0.0.9:514 refused the connection"
    )
    assert seen["health"]["plugins"]["audit"] == reported
    assert seen["created"] == 201  # everything else works
    refused = seen["audit"]
    assert refused["type"].endswith("/plugin-unavailable") and refused["plugin"] == "audit"
    assert refused["detail"].startswith("plugin 'audit' is not running: plugin 'audit' failed")


def test_the_same_failure_stops_the_server_when_the_plugin_is_required(tmp_path):
    ctx = ServerContext.build(config_for(tmp_path, [*BASE, "audit"]), {"audit": AUDIT})

    with pytest.raises(PluginError, match=r"plugin 'audit' failed to start: ConnectionRefused"):
        asyncio.run(ctx.start())
    assert ctx.states["audit"] == "failed"


def test_an_optional_plugin_left_out_is_never_called_again(tmp_path):
    calls = []

    def on_event(event):
        calls.append(event.kind)

    broken = plugin("audit", butterflyfx_startup=failing_start, butterflyfx_on_event=on_event)
    config = config_for(tmp_path, [*BASE, "audit"], "[audit]\nrequired = false\n")

    async def story(client):
        return (await client.post(f"{API}/substrates", json=SUBSTRATE)).status_code

    assert run(config, {"audit": broken}, story) == 201
    assert calls == []


def test_an_optional_plugin_that_is_not_installed_is_reported_not_fatal(tmp_path):
    sections = '[reporting]\nrequired = false\nendpoint = "https://example.invalid"\n'
    config = config_for(tmp_path, [*BASE, "reporting"], sections)

    async def story(client):
        ready = await client.get(f"{API}/ready")
        return ready.status_code, await body(ready)

    status, ready = run(config, None, story)
    assert status == 200
    reported = ready["plugins"]["reporting"]
    assert reported["status"] == "down" and reported["required"] is False
    assert reported["error"].startswith("unknown plugin 'reporting'; available plugins: ")


def test_an_optional_plugin_that_fails_to_load_names_itself(tmp_path):
    def config_model():
        raise ImportError("No module named 'grpc'")

    broken = plugin("tracing", butterflyfx_config_model=config_model)
    config = config_for(tmp_path, [*BASE, "tracing"], "[tracing]\nrequired = false\n")

    async def story(client):
        return (await body(await client.get(f"{API}/ready")))["plugins"]["tracing"]

    reported = run(config, {"tracing": broken}, story)
    assert reported["error"] == (
        "plugin 'tracing' failed to give its config model: ImportError: No module named 'grpc'"
    )


def test_a_down_optional_plugin_keeps_the_server_ready(tmp_path):
    from butterflyfx.core.health import PluginHealth

    cache = plugin("cache", butterflyfx_health=lambda: PluginHealth("down", {"error": "gone"}))
    config = config_for(tmp_path, [*BASE, "cache"], "[cache]\nrequired = false\n")

    async def story(client):
        ready = await client.get(f"{API}/ready")
        return ready.status_code, await body(ready)

    status, ready = run(config, {"cache": cache}, story)
    assert (status, ready["status"]) == (200, "degraded")
    assert ready["plugins"]["cache"] == {"status": "down", "error": "gone"}


def test_an_optional_store_that_fails_to_open_gives_way_to_the_next(tmp_path):
    class Unreachable:
        async def open(self):
            raise OSError("connection refused")

        async def close(self):
            pass

    remote = plugin("storage.remote", butterflyfx_storage=lambda: Unreachable())
    # Listed after storage.memory, so it is asked first (later plugins win the storage hook).
    config = config_for(tmp_path, [*BASE, "storage.remote"], "[storage.remote]\nrequired = false\n")

    async def story(client):
        created = await client.post(f"{API}/substrates", json=SUBSTRATE)
        health = await body(await client.get(f"{API}/health"))
        return created.status_code, health["plugins"]["storage.remote"]["error"]

    status, error = run(config, {"storage.remote": remote}, story)
    assert status == 201
    assert error == "plugin 'storage.remote' failed to open its store: OSError: connection refused"


def test_required_must_be_true_or_false_and_is_taken_from_the_environment(tmp_path):
    with pytest.raises(ConfigError, match=r"section \[audit\], key 'required': must be true"):
        config_for(tmp_path, [*BASE, "audit"], '[audit]\nrequired = "maybe"\n')

    config = config_for(tmp_path, [*BASE, "audit"], env={"BUTTERFLYFX_AUDIT__REQUIRED": "false"})
    assert config.optional == {"audit"}
    assert effective_settings(config)["optional_plugins"] == ["audit"]
    assert config_for(tmp_path, [*BASE, "audit"], "[audit]\nrequired = true\n").optional == set()


def test_required_is_not_passed_to_the_plugins_own_settings(tmp_path):
    config = config_for(
        tmp_path, [*BASE], "[http]\nrequired = false\n[storage.memory]\nrequired = true\n"
    )
    ctx = ServerContext.build(config)  # neither section is left for a model to refuse
    assert ctx.config.optional == {"http"}
