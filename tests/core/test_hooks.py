"""Hooks no other test exercises, each through a plugin a third party could write.

Plugins here are plain objects given to ``ServerContext.build`` by name: the same hook
implementations an installed package would provide, run by the real plugin host, the
real stores and the real HTTP app.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import structlog
from quart import Quart

from butterflyfx.core.config import read_config
from butterflyfx.core.context import ServerContext
from butterflyfx.core.hookspecs import hookimpl
from butterflyfx.core.plugins import PluginError
from butterflyfx.kernel import (
    CompiledExpression,
    ExpressionInfo,
    ExpressionRejected,
    Limits,
    UnknownExpressionType,
    substrate_identity,
)
from butterflyfx.kernel.identity import identity_from_canonical
from butterflyfx.plugins.storage_memory import MemoryStore
from butterflyfx.server.asgi import application_for

DOUBLE = "lambda **kw: kw.get('x', 0) * 2"


def server(tmp_path: Path, names: str, **plugins: object) -> ServerContext:
    config = read_config(None, {"BUTTERFLYFX_PLUGINS": names}, {"data_dir": tmp_path / "data"})
    return ServerContext.build(config, plugins)


def run(ctx: ServerContext, story: Callable[[ServerContext], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        await ctx.start()
        try:
            return await story(ctx)
        finally:
            await ctx.stop()

    return asyncio.run(main())


# -- butterflyfx_expression_languages ---------------------------------------------


class SumLanguage:
    """``expression_code`` lists parameter names, ``"x, y"``; invoking adds their values."""

    name = "sum"

    def canonicalize(self, code: str, limits: Limits) -> str:
        names = sorted(part.strip() for part in code.split(","))
        if not all(name.isidentifier() for name in names):
            raise ExpressionRejected("a sum lists parameter names, separated by commas")
        return ", ".join(names)

    def compile(self, code: str, limits: Limits) -> CompiledExpression:
        canonical = self.canonicalize(code, limits)
        names = canonical.split(", ")

        def add(parameters: dict[str, Any]) -> Any:
            return sum(parameters.get(name, 0) for name in names)

        identity = identity_from_canonical(self.name, canonical)
        return CompiledExpression(self.name, canonical, identity, add, ExpressionInfo(), limits)


class Sums:
    @hookimpl
    def butterflyfx_expression_languages(self, ctx: ServerContext) -> dict[str, SumLanguage]:
        return {"sum": SumLanguage()}


class AsyncSums:
    @hookimpl
    async def butterflyfx_expression_languages(self, ctx: ServerContext) -> dict[str, Any]:
        await asyncio.sleep(0)  # e.g. asked a registry of languages
        return {"sum": SumLanguage()}


def test_a_plugins_expression_type_is_created_invoked_divided_and_multiplied_back(tmp_path):
    async def story(ctx: ServerContext) -> None:
        service = ctx.substrates
        created, is_new = await service.create("default", "sum", "y, x", {"name": "add"})
        same, again = await service.create("default", "sum", "x,y")
        answer = await service.invoke("default", created.substrate_id, {"x": 2, "y": 40})
        division = await service.divide("default", created.substrate_id)
        rebuilt, rebuilt_is_new = await service.multiply_dimensions(
            "default", division.to_dict()["dimensions"]
        )

        assert (is_new, again, same.substrate_id) == (True, False, created.substrate_id)
        languages = {"sum": SumLanguage()}
        assert created.identity == substrate_identity("sum", "x, y", languages=languages)
        assert answer.result == 42
        assert [d.name for d in division.dimensions][:3] == ["Void", "Identity", "Domain"]
        assert (rebuilt.identity, rebuilt_is_new) == (created.identity, False)

    run(server(tmp_path, "storage.memory,sums", sums=Sums()), story)


def test_an_async_languages_hook_adds_its_languages_too(tmp_path):
    async def story(ctx: ServerContext) -> Any:
        created, _ = await ctx.substrates.create("default", "sum", "a, b, c")
        answer = await ctx.substrates.invoke("default", created.substrate_id, {"a": 1, "c": 2})
        return answer.result

    assert run(server(tmp_path, "storage.memory,sums", sums=AsyncSums()), story) == 3


def test_an_expression_type_no_plugin_adds_is_refused_naming_the_known_ones(tmp_path):
    async def create_sum(ctx: ServerContext) -> None:
        await ctx.substrates.create("default", "sum", "x, y")

    with pytest.raises(UnknownExpressionType) as without:
        run(server(tmp_path, "storage.memory"), create_sum)
    assert str(without.value) == "unknown expression_type 'sum'; known types: constant, lambda"

    async def create_product(ctx: ServerContext) -> None:
        await ctx.substrates.create("default", "product", "x, y")

    with pytest.raises(UnknownExpressionType, match="known types: constant, lambda, sum$"):
        run(server(tmp_path, "storage.memory,sums", sums=Sums()), create_product)


def test_the_http_api_accepts_a_plugins_expression_type_and_its_errors(tmp_path):
    app = application_for(server(tmp_path, "storage.memory,http,sums", sums=Sums()))

    async def story() -> tuple[Any, ...]:
        async with app.test_app() as running:
            client = running.test_client()
            created = await client.post(
                "/api/v1/substrates", json={"expression_type": "sum", "expression_code": "x, y"}
            )
            substrate_id = (await created.get_json())["substrate_id"]
            invoked = await client.post(
                f"/api/v1/substrates/{substrate_id}/invoke", json={"parameters": {"x": 1, "y": 2}}
            )
            rejected = await client.post(
                "/api/v1/substrates", json={"expression_type": "sum", "expression_code": "x, 1"}
            )
            return (
                created.status_code,
                (await invoked.get_json())["result"],
                rejected.status_code,
                rejected.headers["Content-Type"],
                (await rejected.get_json())["detail"],
            )

    created, result, rejected, content_type, detail = asyncio.run(story())
    assert (created, result) == (201, 3)
    assert (rejected, content_type) == (422, "application/problem+json")
    assert "a sum lists parameter names" in detail


def test_a_languages_hook_that_fails_stops_start_up_naming_the_plugin(tmp_path):
    class Broken:
        @hookimpl
        def butterflyfx_expression_languages(self, ctx: ServerContext) -> Any:
            raise ImportError("the symbolic maths library is not installed")

    ctx = server(tmp_path, "storage.memory,symbolic", symbolic=Broken())
    with pytest.raises(PluginError, match="plugin 'symbolic' failed to give its languages: Import"):
        asyncio.run(ctx.start())


# -- butterflyfx_shutdown -----------------------------------------------------------


class Recorder:
    """Notes its startup and shutdown in a shared list; may fail to stop."""

    def __init__(self, name: str, heard: list[str], fail_to_stop: bool = False) -> None:
        self.name, self.heard, self.fail_to_stop = name, heard, fail_to_stop

    @hookimpl
    def butterflyfx_startup(self, ctx: ServerContext) -> None:
        self.heard.append(f"start {self.name}")

    @hookimpl
    async def butterflyfx_shutdown(self, ctx: ServerContext) -> None:
        self.heard.append(f"stop {self.name}")
        if self.fail_to_stop:
            raise ConnectionResetError("the audit server hung up")


def test_shutdown_hooks_run_in_the_reverse_of_the_startup_order(tmp_path):
    heard: list[str] = []
    ctx = server(
        tmp_path, "storage.memory,first,second,third",
        first=Recorder("first", heard), second=Recorder("second", heard),
        third=Recorder("third", heard),
    )  # fmt: skip

    async def serving(ctx: ServerContext) -> None:
        heard.append("serving")

    run(ctx, serving)
    starts, stops = heard[: heard.index("serving")], heard[heard.index("serving") + 1 :]
    assert len(starts) == len(stops) == 3
    assert [s.split()[1] for s in stops] == [s.split()[1] for s in reversed(starts)]


def test_at_shutdown_the_counts_are_already_written_and_the_store_still_open(tmp_path):
    class Reporter:
        """Writes each substrate's invocation count to a report when the server stops."""

        @hookimpl
        async def butterflyfx_shutdown(self, ctx: ServerContext) -> None:
            report = {}
            for substrate in await ctx.store.list_substrates("default", limit=10):
                stats = await ctx.store.invocation_stats("default", substrate.identity)
                report[substrate.substrate_id] = stats.count if stats else 0
            (tmp_path / "report.json").write_text(json.dumps(report))

    async def invoke_three_times(ctx: ServerContext) -> str:
        substrate, _ = await ctx.substrates.create("default", "lambda", DOUBLE)
        for x in range(3):
            await ctx.substrates.invoke("default", substrate.substrate_id, {"x": x})
        return substrate.substrate_id

    # SQLite, and a flush interval no test outlives: only the stop itself writes the counts.
    config = read_config(
        None, {"BUTTERFLYFX_PLUGINS": "storage.sqlite,reporter"},
        {"data_dir": tmp_path / "data", "invocation_flush_seconds": 3600},
    )  # fmt: skip
    ctx = ServerContext.build(config, {"reporter": Reporter()})
    substrate_id = run(ctx, invoke_three_times)

    assert json.loads((tmp_path / "report.json").read_text()) == {substrate_id: 3}
    with pytest.raises(RuntimeError, match="has not started"):
        ctx.store  # noqa: B018 - closed after the shutdown hooks


def test_a_plugin_failing_to_stop_is_logged_and_the_others_still_stop(tmp_path):
    heard: list[str] = []
    ctx = server(
        tmp_path, "storage.sqlite,audit,cache",
        audit=Recorder("audit", heard, fail_to_stop=True), cache=Recorder("cache", heard),
    )  # fmt: skip

    async def nothing(ctx: ServerContext) -> None:
        return None

    with structlog.testing.capture_logs() as logs:
        run(ctx, nothing)

    assert {"stop audit", "stop cache"} <= set(heard)
    assert ctx.states == {"storage.sqlite": "stopped", "audit": "stopped", "cache": "stopped"}
    failures = [entry for entry in logs if entry["event"] == "plugin_shutdown_failed"]
    assert [entry["plugin"] for entry in failures] == ["audit"]


# -- butterflyfx_storage --------------------------------------------------------------


class Scratch:
    """A third-party storage plugin (not marked trylast, unlike the built-in stores)."""

    @hookimpl
    def butterflyfx_storage(self, ctx: ServerContext) -> MemoryStore:
        return MemoryStore()


class Declines:
    """A storage plugin with nothing configured: an async hook that gives None."""

    @hookimpl
    async def butterflyfx_storage(self, ctx: ServerContext) -> None:
        return None


async def storage_plugin(ctx: ServerContext) -> str | None:
    return ctx.storage_plugin


@pytest.mark.parametrize("names", ["scratch,storage.sqlite", "storage.sqlite,scratch"])
def test_a_third_party_store_wins_over_the_built_in_ones_wherever_it_is_named(tmp_path, names):
    ctx = server(tmp_path, names, scratch=Scratch())

    assert run(ctx, storage_plugin) == "scratch"
    assert not (tmp_path / "data").exists()  # the SQLite file was never opened


@pytest.mark.parametrize(
    ("names", "chosen"),
    [("storage.memory,storage.sqlite", "storage.memory"),
     ("storage.sqlite,storage.memory", "storage.sqlite")],
)  # fmt: skip
def test_of_two_built_in_stores_the_first_named_provides_the_store(tmp_path, names, chosen):
    assert run(server(tmp_path, names), storage_plugin) == chosen


def test_a_storage_hook_that_gives_none_leaves_the_store_to_the_next_plugin(tmp_path):
    ctx = server(tmp_path, "storage.memory,vault", vault=Declines())

    assert run(ctx, storage_plugin) == "storage.memory"


# -- butterflyfx_asgi_app -----------------------------------------------------------


async def plain_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An ASGI app of a plugin that serves something other than the http plugin's API."""


def test_a_plugins_own_asgi_app_replaces_the_http_plugins_app(tmp_path):
    class Plain:
        @hookimpl
        def butterflyfx_asgi_app(self, ctx: ServerContext) -> Any:
            return plain_app

    assert application_for(server(tmp_path, "storage.memory,http,plain", plain=Plain())) is (
        plain_app
    )


def test_an_asgi_app_hook_that_gives_none_leaves_the_http_plugins_app(tmp_path):
    class Maybe:
        @hookimpl
        def butterflyfx_asgi_app(self, ctx: ServerContext) -> Any:
            return None

    app = application_for(server(tmp_path, "storage.memory,http,maybe", maybe=Maybe()))
    assert isinstance(app, Quart)


def test_an_async_asgi_app_hook_is_refused_by_name(tmp_path):
    class Lazy:
        @hookimpl
        async def butterflyfx_asgi_app(self, ctx: ServerContext) -> Any:
            return plain_app

    with pytest.raises(PluginError, match="plugin 'lazy': butterflyfx_asgi_app must return"):
        application_for(server(tmp_path, "storage.memory,http,lazy", lazy=Lazy()))
