"""The server as plugins see it: config, plugins, store and services, started and stopped."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from pydantic import BaseModel

from butterflyfx.kernel import BUILTIN_LANGUAGES, ExpressionLanguage

from .auth import Guard
from .config import LoadedConfig, ServerSettings, validate_sections
from .events import Event
from .graph import GraphEngine
from .health import PluginHealth, Status, overall
from .observe import RequestRecord
from .plugins import PluginError, PluginHost, await_maybe, call
from .queries import QueryService
from .relationships import RelationshipService, RelationshipTypes
from .store import StoreUnavailable, SubstrateStore
from .substrates import SubstrateService

log = structlog.get_logger("butterflyfx")
RUN_ID_VARIABLE = "BUTTERFLYFX_RUN_ID"


@dataclass
class ServerContext:
    """Built from a config; ``start`` opens it and ``stop`` closes it."""

    config: LoadedConfig
    plugins: PluginHost
    started_at: float = field(default_factory=time.time)
    worker_id: str = field(default_factory=lambda: str(os.getpid()))
    # One id per `butterflyfx serve`, shared by its workers (they inherit it): what they
    # share (a metrics folder, say) is named by it. A context outside serve gets its own.
    run_id: str = field(
        default_factory=lambda: os.environ.get(RUN_ID_VARIABLE) or f"p{os.getpid()}"
    )
    _store: SubstrateStore | None = None
    _substrates: SubstrateService | None = None
    _flusher: asyncio.Task[None] | None = None
    _graph: GraphEngine | None = None
    _relationships: RelationshipService | None = None
    _queries: QueryService | None = None
    _guard: Guard | None = None
    _listeners: list[Any] | None = None
    _start_listeners: list[Any] | None = None
    storage_plugin: str | None = None
    graph_plugin: str | None = None
    states: dict[str, str] = field(default_factory=dict)

    # -- building --------------------------------------------------------------------
    @classmethod
    def build(
        cls, config: LoadedConfig, extra: Mapping[str, object] | None = None
    ) -> ServerContext:
        """Load the plugins the config names and validate every plugin's section."""
        host = PluginHost(config.plugins, extra, optional=config.optional)
        models: dict[str, type[BaseModel]] = {}
        owners: dict[str, str] = {}
        for implementation in host.hook.butterflyfx_config_model.get_hookimpls():
            name = implementation.plugin_name
            try:
                model = _config_model(name, implementation)
            except PluginError as error:
                if config.required(name):
                    raise
                _log_left_out(name, str(error))
                host.leave_out(name, str(error))
                continue
            if model is None:
                continue
            section, model_class = model
            if section in owners:
                raise PluginError(
                    f"plugins {owners[section]!r} and {name!r} both claim config section "
                    f"[{section}]"
                )
            owners[section] = name
            models[section] = model_class
        # A section of an optional plugin that could not load is kept, unchecked.
        validate_sections(config, models, unchecked=set(host.failed))
        ctx = cls(config, host)
        ctx.states = {name: "loaded" for name in host.names}
        for name, reason in host.failed.items():
            ctx.states[name] = "failed"
            if name not in host.info:
                _log_left_out(name, reason)
        return ctx

    @property
    def settings(self) -> ServerSettings:
        return self.config.server

    @property
    def data_dir(self) -> Path:
        return self.config.server.data_dir

    def section(self, name: str) -> Any:
        """This plugin's validated config section (its pydantic model instance)."""
        return self.config.section(name)

    @property
    def guard(self) -> Guard:
        """Authenticates, authorizes and rate-limits requests (see :mod:`core.auth`)."""
        if self._guard is None:
            self._guard = Guard(self)
        return self._guard

    @property
    def store(self) -> SubstrateStore:
        if self._store is None:
            raise RuntimeError("the server has not started")
        return self._store

    @property
    def graph(self) -> GraphEngine | None:
        """The graph engine, or None when no graph plugin is loaded."""
        return self._graph

    @property
    def substrates(self) -> SubstrateService:
        if self._substrates is None:
            raise RuntimeError("the server has not started")
        return self._substrates

    @property
    def relationships(self) -> RelationshipService:
        if self._relationships is None:
            raise RuntimeError("the server has not started")
        return self._relationships

    @property
    def queries(self) -> QueryService:
        """Traversals, paths, subgraphs (503 without a graph engine), searches, statistics."""
        if self._queries is None:
            raise RuntimeError("the server has not started")
        return self._queries

    # -- running ---------------------------------------------------------------------
    async def start(self) -> None:
        """Pick the store, open it, build the services, run every startup hook.

        A failure names the plugin at fault; whatever was already opened is closed again.
        """
        self.started_at = time.time()
        try:
            await self._start()
        except BaseException:
            await self._close_store()
            raise

    async def _start(self) -> None:
        hook = self.plugins.hook
        store = await self._open_store()
        languages: dict[str, ExpressionLanguage] = dict(BUILTIN_LANGUAGES)
        for implementation in reversed(hook.butterflyfx_expression_languages.get_hookimpls()):
            async with self._blaming(implementation.plugin_name, "give its languages"):
                languages.update(await await_maybe(call(implementation, ctx=self)) or {})
        self._store = store
        self._substrates = SubstrateService(
            store, self.emit, languages=languages,
            cache_size=self.settings.compiled_cache_size,
        )  # fmt: skip
        for implementation in reversed(hook.butterflyfx_graph_engine.get_hookimpls()):
            name = implementation.plugin_name
            async with self._blaming(name, "give its graph engine"):
                engine = await await_maybe(call(implementation, ctx=self))
            if engine is None or self.left_out(name):
                continue
            async with self._blaming(name, "open its graph engine"):
                await engine.open()
            if self.left_out(name):
                with contextlib.suppress(Exception):
                    await engine.close()
                continue
            self._graph = engine
            self.graph_plugin = name
            break
        types = RelationshipTypes(self.settings.relationship_types)
        self._relationships = RelationshipService(store, self.emit, types=types)
        self._queries = QueryService(
            store, self._graph, self.settings, types=types, substrates=self._substrates,
            storage_plugin=self.storage_plugin, graph_plugin=self.graph_plugin,
            started_at=self.started_at,
        )  # fmt: skip
        for implementation in reversed(hook.butterflyfx_startup.get_hookimpls()):
            name = implementation.plugin_name
            if self.left_out(name):
                continue
            async with self._blaming(name, "start"):
                await await_maybe(call(implementation, ctx=self))
            if not self.left_out(name):
                self.states[name] = "started"
        for name in self.plugins.names:
            if not self.left_out(name):
                self.states[name] = "started"
        self._flusher = asyncio.create_task(self._flush_periodically())

    async def _open_store(self) -> SubstrateStore:
        """The first storage plugin's store that opens (an optional one that fails is
        passed over for the next)."""
        for implementation in reversed(self.plugins.hook.butterflyfx_storage.get_hookimpls()):
            name = implementation.plugin_name
            store = None
            async with self._blaming(name, "give its store"):
                store = await await_maybe(call(implementation, ctx=self))
            if store is None or self.left_out(name):
                continue
            async with self._blaming(name, "open its store"):
                await store.open()
            if not self.left_out(name):
                self.storage_plugin = name
                return store  # type: ignore[no-any-return]
            with contextlib.suppress(Exception):  # whatever it did open
                await store.close()
        raise PluginError(
            "no storage plugin is loaded: add one (e.g. storage.sqlite) to plugins"
            + "".join(f"; {reason}" for reason in self.plugins.failed.values())
        )

    def left_out(self, plugin: str) -> bool:
        """Whether ``plugin`` failed to load or start and the server runs without it."""
        return plugin in self.plugins.failed

    @contextlib.asynccontextmanager
    async def _blaming(self, plugin: str | None, doing: str) -> AsyncIterator[None]:
        """Turn any error into a PluginError that names the plugin and what it was doing.

        For a plugin whose section says ``required = false`` the error is logged instead
        and the plugin left out: none of its hooks is called again (check
        :meth:`left_out` after the block)."""
        try:
            yield
        except PluginError as error:
            if plugin is None or self.config.required(plugin):
                raise
            self._leave_out(plugin, str(error))
        except Exception as error:
            message = f"plugin {plugin!r} failed to {doing}: {type(error).__name__}: {error}"
            if plugin is not None:
                self.states[plugin] = "failed"
                if not self.config.required(plugin):
                    self._leave_out(plugin, message)
                    return
            raise PluginError(message) from error

    def _leave_out(self, plugin: str, reason: str) -> None:
        _log_left_out(plugin, reason)
        self.plugins.leave_out(plugin, reason)
        self.states[plugin] = "failed"

    async def _close_store(self) -> None:
        graph, self._graph = self._graph, None
        self.graph_plugin = None
        if graph is not None:
            try:
                await graph.close()
            except Exception:
                log.exception("graph_close_failed")
        store, self._store = self._store, None
        if store is not None:
            try:
                await store.close()
            except Exception:
                log.exception("store_close_failed", plugin=self.storage_plugin)

    async def stop(self) -> None:
        """Flush counts, run every shutdown hook, close the store."""
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        if self._substrates is not None:
            await self._substrates.flush_invocations()
        for implementation in self.plugins.hook.butterflyfx_shutdown.get_hookimpls():
            try:
                await await_maybe(call(implementation, ctx=self))
            except Exception:  # one plugin failing to stop must not keep others open
                log.exception("plugin_shutdown_failed", plugin=implementation.plugin_name)
            self.states[implementation.plugin_name] = "stopped"
        await self._close_store()
        for name in self.plugins.names:
            self.states[name] = "stopped"

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.settings.invocation_flush_seconds)
            try:
                await self.substrates.flush_invocations()
            except StoreUnavailable as error:  # said in one line; the counts wait
                log.warning("invocation_flush_postponed", reason=str(error))
            except Exception:
                log.exception("invocation_flush_failed")

    async def emit(self, event: Event) -> None:
        """Tell every ``on_event`` plugin; a failing listener is logged, never the caller's."""
        for implementation in self.plugins.hook.butterflyfx_on_event.get_hookimpls():
            try:
                await await_maybe(call(implementation, event=event, ctx=self))
            except Exception:
                log.exception("event_listener_failed", plugin=implementation.plugin_name)

    async def observe(self, record: RequestRecord) -> None:
        """Tell every ``on_request`` plugin about a request served; failures are logged."""
        for implementation in self._request_listeners():
            try:
                await await_maybe(call(implementation, record=record, ctx=self))
            except Exception:
                log.exception("request_listener_failed", plugin=implementation.plugin_name)

    def _request_listeners(self) -> list[Any]:
        if self._listeners is None:  # asked on every request: looked up once
            self._listeners = list(self.plugins.hook.butterflyfx_on_request.get_hookimpls())
        return self._listeners

    def request_started(self, method: str, path: str, pool: str) -> None:
        """Tell every ``on_request_started`` plugin a request arrived (synchronously: an
        implementation that returns an awaitable is a mistake, logged); failures are logged."""
        if self._start_listeners is None:
            hook = self.plugins.hook.butterflyfx_on_request_started
            self._start_listeners = list(hook.get_hookimpls())
        for implementation in self._start_listeners:
            try:
                result = call(implementation, method=method, path=path, pool=pool, ctx=self)
                if inspect.isawaitable(result):
                    if inspect.iscoroutine(result):
                        result.close()
                    raise TypeError("butterflyfx_on_request_started must not be async")
            except Exception:
                log.exception("request_listener_failed", plugin=implementation.plugin_name)

    async def health(self) -> tuple[Status, dict[str, PluginHealth]]:
        """Each plugin's state: its health hook, else its store's health(), else its lifecycle."""
        states: dict[str, PluginHealth] = {}
        for implementation in self.plugins.hook.butterflyfx_health.get_hookimpls():
            name = implementation.plugin_name
            try:
                result = await await_maybe(call(implementation, ctx=self))
            except Exception as error:
                result = PluginHealth("down", {"error": f"{type(error).__name__}: {error}"})
            if result is not None:
                states[name] = result
        plugin = self.storage_plugin
        if plugin is not None and plugin not in states and self._store is not None:
            try:
                states[plugin] = PluginHealth("ok", dict(await self._store.health()))
            except Exception as error:
                states[plugin] = PluginHealth("down", {"error": f"{type(error).__name__}: {error}"})
        for name in self.plugins.names:
            if name not in states and name not in self.plugins.failed:
                state = self.states.get(name)
                status: Status = "ok" if state == "started" else "down"
                states[name] = PluginHealth(status, {"state": state})
        for name, reason in self.plugins.failed.items():
            states[name] = PluginHealth(
                "down", {"state": "failed", "required": False, "error": reason}
            )
        return overall(states, optional=self.config.optional), states


def _config_model(name: str, implementation: Any) -> tuple[str, type[BaseModel]] | None:
    """What one plugin's ``butterflyfx_config_model`` says, checked."""
    try:
        result = call(implementation)
    except Exception as error:
        raise PluginError(
            f"plugin {name!r} failed to give its config model: {type(error).__name__}: {error}"
        ) from error
    if result is None:
        return None
    if not (
        isinstance(result, tuple)
        and len(result) == 2
        and isinstance(result[0], str)
        and isinstance(result[1], type)
        and issubclass(result[1], BaseModel)
    ):
        if inspect.iscoroutine(result):
            result.close()
        raise PluginError(
            f"plugin {name!r}: butterflyfx_config_model must return (section name, "
            f"pydantic model class) synchronously, not {type(result).__name__}"
        )
    return result[0], result[1]


def _log_left_out(plugin: str, reason: str) -> None:
    log.error("plugin_left_out", plugin=plugin, required=False, reason=reason)
