"""Plugins are loaded by name from the config; mistakes stop start-up with a clear message."""

from __future__ import annotations

import asyncio
import types

import pytest

from butterflyfx.core.config import StrictModel, read_config
from butterflyfx.core.context import ServerContext
from butterflyfx.core.events import SUBSTRATE_CREATED, Event
from butterflyfx.core.health import PluginHealth
from butterflyfx.core.hookspecs import hookimpl
from butterflyfx.core.plugins import (
    PluginError,
    PluginHost,
    available_plugins,
    await_maybe,
    first_result,
)


def plugin(name: str, **hooks) -> types.SimpleNamespace:
    """A third-party plugin as a plain namespace of hook implementations."""
    return types.SimpleNamespace(__name__=name, **{k: hookimpl(v) for k, v in hooks.items()})


def test_built_in_plugins_are_registered_as_entry_points():
    assert {"storage.memory", "storage.sqlite", "http"} <= set(available_plugins())


def test_an_unknown_plugin_name_lists_the_available_ones():
    with pytest.raises(PluginError) as caught:
        PluginHost(["storage.memroy"])
    message = str(caught.value)
    assert "unknown plugin 'storage.memroy'" in message
    assert "storage.memory" in message and "storage.sqlite" in message


def test_a_misspelled_hook_implementation_is_caught_at_boot():
    def butterflyfx_on_evnt(event):
        return None

    with pytest.raises(PluginError, match="plugin .audit. has an unknown hook"):
        PluginHost(["audit"], {"audit": plugin("audit", butterflyfx_on_evnt=butterflyfx_on_evnt)})


def test_a_plugin_named_twice_is_refused():
    with pytest.raises(PluginError, match="twice"):
        PluginHost(["storage.memory", "storage.memory"])


def test_await_maybe_resolves_values_and_coroutines_alike():
    async def later():
        return 42

    async def main():
        return (
            await await_maybe(7),
            await await_maybe(later()),
            await first_result([None, later(), 3]),
        )

    assert asyncio.run(main()) == (7, 42, 42)


def test_an_async_first_result_hook_returning_none_does_not_win():
    async def nothing():
        return None

    assert asyncio.run(first_result([nothing(), "second"])) == "second"


def test_the_plugin_info_lists_hooks_and_versions():
    host = PluginHost(["storage.memory"])
    info = host.info["storage.memory"]
    assert info.distribution == "butterflyfx"
    assert info.version
    assert "butterflyfx_storage" in info.hooks


class AuditSettings(StrictModel):
    destination: str = "stdout"


def test_a_running_context_starts_plugins_emits_events_and_reports_health(tmp_path):
    heard: list[Event] = []
    started: list[str] = []

    async def on_event(event, ctx):
        heard.append(event)

    audit = plugin(
        "audit",
        butterflyfx_config_model=lambda: ("audit", AuditSettings),
        butterflyfx_startup=lambda ctx: started.append(ctx.section("audit").destination),
        butterflyfx_on_event=on_event,
        butterflyfx_health=lambda ctx: PluginHealth("degraded", {"why": "testing"}),
    )
    (tmp_path / "c.toml").write_text(
        'plugins = ["storage.memory", "audit"]\n[audit]\ndestination = "file"\n'
    )
    config = read_config(tmp_path / "c.toml")
    ctx = ServerContext.build(config, {"audit": audit})

    async def story():
        await ctx.start()
        try:
            substrate, created = await ctx.substrates.create(
                "default", "lambda", "lambda **kw: kw.get('x', 0) * kw.get('y', 0)"
            )
            status, states = await ctx.health()
        finally:
            await ctx.stop()
        return substrate, created, status, states

    substrate, created, status, states = asyncio.run(story())
    assert created and started == ["file"]
    assert [(e.kind, e.subject_id) for e in heard] == [(SUBSTRATE_CREATED, substrate.substrate_id)]
    assert status == "degraded"
    assert states["storage.memory"].status == "ok"
    assert ctx.states["audit"] == "stopped"


def test_a_plugin_that_fails_to_start_names_itself(tmp_path):
    def broken(ctx):
        raise OSError("cannot reach the audit server")

    config = read_config(None, {"BUTTERFLYFX_PLUGINS": "storage.memory,audit"})
    ctx = ServerContext.build(config, {"audit": plugin("audit", butterflyfx_startup=broken)})
    with pytest.raises(PluginError, match="'audit' failed to start: OSError: cannot reach"):
        asyncio.run(ctx.start())


def test_without_a_storage_plugin_the_server_refuses_to_start():
    ctx = ServerContext.build(read_config(None, {"BUTTERFLYFX_PLUGINS": ""}))
    with pytest.raises(PluginError, match="no storage plugin"):
        asyncio.run(ctx.start())


class ClosableStore:
    """The memory store, remembering whether it was closed."""

    def __init__(self) -> None:
        from butterflyfx.plugins.storage_memory import MemoryStore

        self.inner, self.closed = MemoryStore(), False

    def __getattr__(self, name):
        return getattr(self.inner, name)

    async def close(self) -> None:
        self.closed = True
        await self.inner.close()


def test_a_failed_start_closes_the_store_it_had_opened():
    store = ClosableStore()
    extra = {
        "tracked": plugin("tracked", butterflyfx_storage=lambda ctx: store),
        "audit": plugin("audit", butterflyfx_startup=lambda ctx: 1 / 0),
    }
    ctx = ServerContext.build(read_config(None, {"BUTTERFLYFX_PLUGINS": "tracked,audit"}), extra)
    with pytest.raises(PluginError, match="'audit' failed to start: ZeroDivisionError"):
        asyncio.run(ctx.start())
    assert store.closed
    assert ctx.states["audit"] == "failed"


def test_a_storage_plugin_that_breaks_is_named():
    def broken(ctx):
        raise ConnectionRefusedError("db.internal:5432")

    extra = {"remote": plugin("remote", butterflyfx_storage=broken)}
    ctx = ServerContext.build(read_config(None, {"BUTTERFLYFX_PLUGINS": "remote"}), extra)
    with pytest.raises(PluginError, match="'remote' failed to give its store: Connection"):
        asyncio.run(ctx.start())


def test_a_store_without_a_health_hook_reports_its_own_health():
    async def story():
        ctx = ServerContext.build(read_config(None, {"BUTTERFLYFX_PLUGINS": "storage.memory"}))
        await ctx.start()
        try:
            await ctx.substrates.create("default", "lambda", "lambda **kw: 1")
            return await ctx.health()
        finally:
            await ctx.stop()

    status, states = asyncio.run(story())
    assert status == "ok"
    assert states["storage.memory"].detail == {"substrates": 1}


def test_a_hook_may_take_only_the_arguments_it_needs():
    heard = []

    async def story():
        extra = {"audit": plugin("audit", butterflyfx_on_event=lambda event: heard.append(event))}
        config = read_config(None, {"BUTTERFLYFX_PLUGINS": "storage.memory,audit"})
        ctx = ServerContext.build(config, extra)
        await ctx.start()
        try:
            await ctx.substrates.create("default", "lambda", "lambda **kw: 1")
        finally:
            await ctx.stop()

    asyncio.run(story())
    assert [event.kind for event in heard] == [SUBSTRATE_CREATED]


def test_a_hook_function_without_the_decorator_is_refused():
    forgetful = types.SimpleNamespace(__name__="forgetful", butterflyfx_startup=lambda ctx: None)
    with pytest.raises(PluginError, match="'forgetful': butterflyfx_startup lacks the @hookimpl"):
        PluginHost(["forgetful"], {"forgetful": forgetful})


def test_an_async_config_model_and_a_contested_section_name_the_plugins():
    async def model():
        return "audit", StrictModel

    with pytest.raises(PluginError, match="'audit': butterflyfx_config_model must return"):
        ServerContext.build(
            read_config(None, {"BUTTERFLYFX_PLUGINS": "audit"}),
            {"audit": plugin("audit", butterflyfx_config_model=model)},
        )
    twins = {
        name: plugin(name, butterflyfx_config_model=lambda: ("shared", StrictModel))
        for name in ("one", "two")
    }
    with pytest.raises(PluginError, match="'one' and 'two' both claim config section"):
        ServerContext.build(read_config(None, {"BUTTERFLYFX_PLUGINS": "one,two"}), twins)
