"""``butterflyfx plugins``: what is loaded, what is installed, and what each one hooks.

The rows come from :func:`butterflyfx.core.plugins.plugin_rows`, which ``GET /-/plugins``
serves too, so the command and the page list the same plugins alike.
"""

from __future__ import annotations

from typing import Any

from butterflyfx.core.context import ServerContext
from butterflyfx.core.plugins import HOOK_PREFIX, plugin_rows


def plugin_inventory(ctx: ServerContext) -> list[dict[str, Any]]:
    """The config's plugins in load order with their states, then every other installed
    plugin by name (``not enabled``, or ``broken: why``)."""
    return plugin_rows(ctx.plugins, ctx.states)


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
