"""``hello``: a third-party ButterflyFX Server plugin, in a package of its own.

It greets callers at ``GET /api/v1/hello``, counts the substrate events its server
hears, reports that count in ``/api/v1/health``, and can append the counts to a file
each time its server stops. Config section ``[hello]``::

    greeting = "Hello"                  # what GET /api/v1/hello says
    summary_file = "hello-summary.jsonl"  # optional: one JSON line per server stop
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field
from quart import Blueprint

from butterflyfx.core.config import StrictModel
from butterflyfx.core.events import Event
from butterflyfx.core.health import PluginHealth
from butterflyfx.core.hookspecs import hookimpl

if TYPE_CHECKING:
    from butterflyfx.core.context import ServerContext

SECTION = "hello"


class HelloSettings(StrictModel):
    """The ``[hello]`` config section; an unknown key or a wrong type stops start-up."""

    greeting: str = Field("Hello", min_length=1, max_length=100)
    summary_file: Path | None = None


# One server runs in a process (each Hypercorn worker is a process of its own), so the
# counts live in the module and start again from zero when the server starts.
heard: Counter[str] = Counter()


def settings_of(ctx: ServerContext) -> HelloSettings:
    """The validated ``[hello]`` section (its defaults when the file has none)."""
    settings = ctx.section(SECTION)
    return settings if isinstance(settings, HelloSettings) else HelloSettings()


@hookimpl
def butterflyfx_config_model() -> tuple[str, type[HelloSettings]]:
    return SECTION, HelloSettings


@hookimpl
def butterflyfx_startup(ctx: ServerContext) -> None:
    heard.clear()
    summary = settings_of(ctx).summary_file
    if summary is not None and not summary.parent.is_dir():
        raise FileNotFoundError(f"summary_file {str(summary)!r}: no folder {str(summary.parent)!r}")


@hookimpl
def butterflyfx_on_event(event: Event, ctx: ServerContext) -> None:
    heard[event.kind] += 1


@hookimpl
def butterflyfx_health(ctx: ServerContext) -> PluginHealth:
    return PluginHealth("ok", {"events_heard": sum(heard.values())})


@hookimpl
def butterflyfx_routes(app: Any, ctx: ServerContext) -> None:
    greeting = settings_of(ctx).greeting
    blueprint = Blueprint("hello", __name__, url_prefix="/api/v1/hello")

    @blueprint.get("")
    async def greet() -> dict[str, Any]:
        return {"greeting": greeting, "events": dict(sorted(heard.items()))}

    @blueprint.get("/<name>")
    async def greet_by_name(name: str) -> dict[str, Any]:
        return {"greeting": f"{greeting}, {name}!"}

    app.register_blueprint(blueprint)


@hookimpl
async def butterflyfx_shutdown(ctx: ServerContext) -> None:
    summary = settings_of(ctx).summary_file
    if summary is None:
        return
    line = {"worker": ctx.worker_id, "events": dict(sorted(heard.items()))}
    with summary.open("a", encoding="utf-8") as file:  # every worker appends its own line
        file.write(json.dumps(line) + "\n")
