"""Loading plugins by name: built-ins and third parties alike come through entry points.

Every hook call the server makes goes through :func:`call`. With the environment variable
``BUTTERFLYFX_TRACE_PLUGINS=1`` (read once, when this module is imported) each call is
logged as a ``hook_call`` event naming the plugin and hook, with its duration; an
awaitable result is timed until it resolves.
"""

from __future__ import annotations

import inspect
import os
import time
from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pluggy
import structlog

from . import hookspecs

ENTRY_POINT_GROUP = "butterflyfx"
TRACE_VARIABLE = "BUTTERFLYFX_TRACE_PLUGINS"


def tracing_requested(env: Mapping[str, str] = os.environ) -> bool:
    """Whether ``env`` asks for hook tracing: set, and not ``0``, ``false`` or ``no``."""
    return env.get(TRACE_VARIABLE, "").strip().lower() not in {"", "0", "false", "no"}


# Read once: the check on every hook call is then one global lookup.
TRACING = tracing_requested()
_trace_log = structlog.get_logger("butterflyfx.plugins")


class PluginError(Exception):
    """A plugin that cannot be loaded or started; the message names it and says why."""


async def await_maybe(value: Any) -> Any:
    """Resolve a hook result that may be a plain value or an awaitable (Datasette's way)."""
    while inspect.isawaitable(value):
        value = await value
    return value


async def first_result(results: Iterable[Any]) -> Any:
    """The first hook result that resolves to non-None, for hooks whose rule is *first*."""
    for result in results:
        resolved = await await_maybe(result)
        if resolved is not None:
            return resolved
    return None


HOOK_PREFIX = "butterflyfx_"


def call(implementation: Any, **arguments: Any) -> Any:
    """Call one hook implementation with the arguments it asks for (pluggy lets an
    implementation take fewer than the spec offers, e.g. ``on_event(event)``)."""
    if TRACING:
        return _traced(implementation, arguments)
    return implementation.function(**{name: arguments[name] for name in implementation.argnames})


def hook_name(implementation: Any) -> str:
    """The hook an implementation answers (pluggy's ``specname`` lets it be named otherwise)."""
    return str(implementation.opts.get("specname") or implementation.function.__name__)


def _traced(implementation: Any, arguments: Mapping[str, Any]) -> Any:
    started = time.perf_counter()
    try:
        result = implementation.function(
            **{name: arguments[name] for name in implementation.argnames}
        )
    except BaseException as error:
        _log_hook_call(implementation, started, error)
        raise
    if inspect.isawaitable(result):
        return _timed(implementation, result, started)
    _log_hook_call(implementation, started, None)
    return result


async def _timed(implementation: Any, result: Awaitable[Any], started: float) -> Any:
    try:
        value = await result
    except BaseException as error:
        _log_hook_call(implementation, started, error)
        raise
    _log_hook_call(implementation, started, None)
    return value


def _log_hook_call(implementation: Any, started: float, error: BaseException | None) -> None:
    fields: dict[str, Any] = {
        "plugin": implementation.plugin_name,
        "hook": hook_name(implementation),
        "duration_ms": round((time.perf_counter() - started) * 1000, 3),
    }
    if error is not None:
        fields["raised"] = type(error).__name__  # the type only: a message may hold data
    _trace_log.info("hook_call", **fields)


def available_plugins() -> dict[str, EntryPoint]:
    """Every plugin installed in this environment, by the name a config file uses."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


@dataclass
class PluginInfo:
    name: str
    module: str
    version: str | None
    distribution: str | None
    hooks: list[str] = field(default_factory=list)


class PluginHost:
    """The pluggy manager with the plugins a config file named, in that order."""

    def __init__(
        self,
        names: Iterable[str],
        extra: Mapping[str, object] | None = None,
        optional: Iterable[str] = (),
    ) -> None:
        """Load ``names`` in order. A plugin that cannot be loaded stops everything with a
        :class:`PluginError` naming it, unless it is in ``optional``: then it is left out
        and the reason kept in :attr:`failed`."""
        self.manager = pluggy.PluginManager("butterflyfx")
        self.manager.add_hookspecs(hookspecs)
        self.info: dict[str, PluginInfo] = {}
        self.failed: dict[str, str] = {}
        optional = frozenset(optional)
        known = available_plugins()
        seen: set[str] = set()
        for name in names:
            if name in seen:
                raise PluginError(f"plugin {name!r} is named twice in the plugins list")
            seen.add(name)
            try:
                self._load(name, known, extra)
            except PluginError as error:
                if name not in optional:
                    raise
                self.failed[name] = str(error)
        while True:
            try:
                self.manager.check_pending()
                break
            except pluggy.PluginValidationError as error:
                name = self.manager.get_name(error.plugin) or repr(error.plugin)
                message = f"plugin {name!r} has an unknown hook: {error}"
                if name not in optional:
                    raise PluginError(message) from error
                self.manager.unregister(name=name)
                del self.info[name]
                self.failed[name] = message

    def _load(
        self, name: str, known: Mapping[str, EntryPoint], extra: Mapping[str, object] | None
    ) -> None:
        if extra and name in extra:
            self._register(name, extra[name], None)
            return
        entry = known.get(name)
        if entry is None:
            choices = sorted({*known, *(extra or {})})
            raise PluginError(f"unknown plugin {name!r}; available plugins: {', '.join(choices)}")
        try:
            plugin = entry.load()
        except Exception as error:  # a broken third-party package must name itself
            raise PluginError(
                f"plugin {name!r} ({entry.value}) failed to load: {type(error).__name__}: {error}"
            ) from error
        self._register(name, plugin, entry)

    def leave_out(self, name: str, reason: str) -> None:
        """Take a loaded plugin out (an optional one that failed to start): none of its
        hooks is called again; it stays listed in :attr:`info`, its reason in :attr:`failed`."""
        if self.manager.has_plugin(name):
            self.manager.unregister(name=name)
        self.failed[name] = reason

    def _register(self, name: str, plugin: object, entry: EntryPoint | None) -> None:
        try:
            self.manager.register(plugin, name=name)
        except pluggy.PluginValidationError as error:
            raise PluginError(f"plugin {name!r} is invalid: {error}") from error
        forgotten = sorted(
            attribute
            for attribute in dir(plugin)
            if attribute.startswith(HOOK_PREFIX)
            and callable(getattr(plugin, attribute, None))
            and self.manager.parse_hookimpl_opts(plugin, attribute) is None
        )
        if forgotten:
            self.manager.unregister(plugin)
            raise PluginError(
                f"plugin {name!r}: {', '.join(forgotten)} lacks the @hookimpl decorator "
                "(from butterflyfx.core.hookspecs import hookimpl), so it would never run"
            )
        dist = entry.dist if entry is not None else None
        self.info[name] = PluginInfo(
            name=name,
            module=getattr(plugin, "__name__", type(plugin).__name__),
            version=dist.version if dist is not None else None,
            distribution=dist.name if dist is not None else None,
            hooks=sorted(caller.name for caller in self.manager.get_hookcallers(plugin) or []),
        )

    @property
    def hook(self) -> Any:
        return self.manager.hook

    @property
    def names(self) -> list[str]:
        return list(self.info)

    def plugin_for(self, implementation: Any) -> str:
        """The config name of the plugin that provided a hook implementation."""
        name = self.manager.get_name(implementation)
        return name if name is not None else type(implementation).__name__


def plugin_rows(host: PluginHost, states: Mapping[str, str]) -> list[dict[str, Any]]:
    """What ``butterflyfx plugins --json`` and ``GET /-/plugins`` list: the host's plugins in
    load order with their ``states``, then every other installed plugin by name.

    An installed plugin that is not enabled is loaded on its own to list its hooks; one
    that fails to load is listed with the reason, as it would fail if enabled.
    """
    rows = [
        _row(info, enabled=True, state=states.get(name, "loaded"))
        for name, info in host.info.items()
    ]
    for name, entry in sorted(available_plugins().items()):
        if name in host.info:
            continue
        try:
            info = PluginHost([name]).info[name]
            state = "not enabled"
        except PluginError as error:
            dist = entry.dist
            info = PluginInfo(
                name, entry.value, dist.version if dist else None, dist.name if dist else None
            )
            state = f"broken: {error}"
        rows.append(_row(info, enabled=False, state=state))
    return rows


def _row(info: PluginInfo, *, enabled: bool, state: str) -> dict[str, Any]:
    return {
        "name": info.name,
        "enabled": enabled,
        "state": state,
        "version": info.version,
        "distribution": info.distribution,
        "module": info.module,
        "hooks": list(info.hooks),
    }
