"""``metrics``: Prometheus metrics at ``GET /api/v1/metrics`` and ``GET /metrics``.

Counted from what the server reports: every request started and served
(``butterflyfx_on_request_started`` and ``butterflyfx_on_request``: requests in flight;
method, route template, status, duration), substrate invocations and failed evaluations
(``butterflyfx_on_event``: ``substrate.invoked``, ``substrate.invocation_failed``), and
the worker's connections by pool and state (the tracker of ``core/runtime`` tells each
count as it changes); the store's substrates and relationships are counted when scraped.
No series carries a tenant, and routes are templates
(``/api/v1/substrates/<substrate_id>``), never paths.

Config section ``[metrics]``::

    public = false   # true: anyone may scrape; false: a principal with the admin scope

With ``server.workers`` above 1 every worker counts in prometheus-client's multiprocess
mode: each writes its values to files in ``<data_dir>/metrics/<run id>``, and a scrape,
whichever worker answers it, sums every worker's. The library chooses its mode at its
first import from ``PROMETHEUS_MULTIPROC_DIR``, so this plugin sets that variable before
it imports the library (lazily, at start-up). Any start removes the folders of earlier
runs that no running process holds (see ``run_folder``). With one worker the series live
in this process's memory.

The two gauges (in flight, connections) are kept current by each worker as things happen,
not read when scraped: a scrape is answered by one worker, which cannot read the others'
trackers, while every worker's gauge files are summed ("livesum": a worker's values leave
with it). One worker or several, the same code path.
"""

from __future__ import annotations

import os
import weakref
from typing import TYPE_CHECKING, Any

from butterflyfx.core.events import SUBSTRATE_INVOCATION_FAILED, SUBSTRATE_INVOKED, Event
from butterflyfx.core.health import PluginHealth
from butterflyfx.core.hookspecs import hookimpl
from butterflyfx.core.observe import RequestRecord
from butterflyfx.core.plugins import PluginError
from butterflyfx.core.runtime import runtime_of

from .settings import SECTION, MetricsSettings

if TYPE_CHECKING:
    from butterflyfx.core.context import ServerContext

    from .instruments import Instruments

__all__ = ["SECTION", "MetricsSettings"]

MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
FOLDER = "metrics"  # under server.data_dir: one folder per run

# The instruments of each started context (a worker process has one; tests may run several).
_running: dict[int, tuple[weakref.ref[ServerContext], Instruments]] = {}


def settings_of(ctx: ServerContext) -> MetricsSettings:
    section = ctx.section(SECTION)
    return section if isinstance(section, MetricsSettings) else MetricsSettings()


def instruments_of(ctx: ServerContext) -> Instruments | None:
    entry = _running.get(id(ctx))
    if entry is None or entry[0]() is not ctx:
        return None
    return entry[1]


@hookimpl
def butterflyfx_config_model() -> tuple[str, type[MetricsSettings]]:
    return SECTION, MetricsSettings


@hookimpl
def butterflyfx_startup(ctx: ServerContext) -> None:
    from .run_folder import RunFolder, remove_stale

    root, folder = ctx.data_dir.resolve() / FOLDER, None
    if ctx.settings.workers > 1:
        folder = RunFolder.claim(root, ctx.run_id).path
        os.environ[MULTIPROC_VARIABLE] = str(folder)  # workers spawned later inherit it
    elif root.is_dir():  # one worker needs no folder; earlier runs' are removed all the same
        remove_stale(root, keep="")
    from .instruments import Instruments, multiprocess_mode

    if folder is not None and not multiprocess_mode():
        raise PluginError(
            f"plugin {SECTION!r}: prometheus_client was imported before this plugin could set "
            f"{MULTIPROC_VARIABLE}, so each of the {ctx.settings.workers} workers would count "
            "alone; do not import it before the server starts, or run one worker"
        )
    instruments = Instruments(folder)
    instruments.follow(runtime_of(ctx).connections)
    _running[id(ctx)] = (weakref.ref(ctx), instruments)


@hookimpl
def butterflyfx_shutdown(ctx: ServerContext) -> None:
    instruments = instruments_of(ctx)
    _running.pop(id(ctx), None)
    if instruments is not None:
        instruments.close()


@hookimpl
def butterflyfx_routes(app: Any, ctx: ServerContext) -> None:
    from .routes import metrics_blueprint

    public = settings_of(ctx).public
    app.register_blueprint(metrics_blueprint(ctx, public, lambda: instruments_of(ctx)))


@hookimpl
def butterflyfx_on_request_started(pool: str, ctx: ServerContext) -> None:
    instruments = instruments_of(ctx)
    if instruments is not None:
        instruments.started(pool)


@hookimpl
def butterflyfx_on_request(record: RequestRecord, ctx: ServerContext) -> None:
    instruments = instruments_of(ctx)
    if instruments is not None:
        instruments.observe(record)


@hookimpl
def butterflyfx_on_event(event: Event, ctx: ServerContext) -> None:
    instruments = instruments_of(ctx)
    if instruments is None:
        return
    if event.kind == SUBSTRATE_INVOKED:
        instruments.invoked()
    elif event.kind == SUBSTRATE_INVOCATION_FAILED:
        instruments.invocation_failed()


@hookimpl
def butterflyfx_health(ctx: ServerContext) -> PluginHealth:
    instruments = instruments_of(ctx)
    if instruments is None:
        return PluginHealth("down", {"error": "the metrics plugin has not started"})
    if instruments.folder is None:
        return PluginHealth("ok", {"mode": "single-process", "series": instruments.series()})
    if not instruments.folder.is_dir():
        return PluginHealth("down", {"error": f"the folder {instruments.folder} is gone"})
    return PluginHealth("ok", {"mode": "multiprocess", "folder": str(instruments.folder)})
