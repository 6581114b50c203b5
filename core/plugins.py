"""Loading plugins by name: built-ins and third parties alike come through entry points."""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pluggy

from . import hookspecs

ENTRY_POINT_GROUP = "butterflyfx"


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
    return implementation.function(**{name: arguments[name] for name in implementation.argnames})


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

    def __init__(self, names: Iterable[str], extra: Mapping[str, object] | None = None) -> None:
        self.manager = pluggy.PluginManager("butterflyfx")
        self.manager.add_hookspecs(hookspecs)
        self.info: dict[str, PluginInfo] = {}
        known = available_plugins()
        for name in names:
            if name in self.info:
                raise PluginError(f"plugin {name!r} is named twice in the plugins list")
            if extra and name in extra:
                self._register(name, extra[name], None)
                continue
            entry = known.get(name)
            if entry is None:
                choices = sorted({*known, *(extra or {})})
                raise PluginError(
                    f"unknown plugin {name!r}; available plugins: {', '.join(choices)}"
                )
            try:
                plugin = entry.load()
            except Exception as error:  # a broken third-party package must name itself
                raise PluginError(
                    f"plugin {name!r} ({entry.value}) failed to load: "
                    f"{type(error).__name__}: {error}"
                ) from error
            self._register(name, plugin, entry)
        try:
            self.manager.check_pending()
        except pluggy.PluginValidationError as error:
            name = self.manager.get_name(error.plugin) or repr(error.plugin)
            raise PluginError(f"plugin {name!r} has an unknown hook: {error}") from error

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
