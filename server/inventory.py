"""``butterflyfx plugins``: what is loaded, what is installed, and what each one hooks."""

from __future__ import annotations

from typing import Any

from butterflyfx.core.context import ServerContext
from butterflyfx.core.plugins import PluginError, PluginHost, PluginInfo, available_plugins

HOOK_PREFIX = "butterflyfx_"


def plugin_inventory(ctx: ServerContext) -> list[dict[str, Any]]:
    """The config's plugins in load order, then every other installed plugin by name.

    An installed plugin that is not enabled is loaded on its own to list its hooks; one
    that fails to load is listed with the reason, as it would fail if enabled.
    """
    rows = [_row(info, enabled=True, state=ctx.states.get(name, "loaded"))
            for name, info in ctx.plugins.info.items()]  # fmt: skip
    for name, entry in sorted(available_plugins().items()):
        if name in ctx.plugins.info:
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


def render_inventory(rows: list[dict[str, Any]]) -> str:
    """A table a person reads: name, state, version, distribution, hooks."""
    table = [("NAME", "STATE", "VERSION", "DISTRIBUTION", "HOOKS")]
    for row in rows:
        hooks = ", ".join(hook.removeprefix(HOOK_PREFIX) for hook in row["hooks"]) or "-"
        table.append(
            (row["name"], row["state"], row["version"] or "-", row["distribution"] or "-", hooks)
        )
    widths = [max(len(line[column]) for line in table) for column in range(4)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line[:4], widths, strict=True))
        + "  "
        + line[4]
        for line in table
    )
