"""Liveness, readiness, the plugins page, and the interactive docs (served without internet).

- ``GET /api/v1/health`` (liveness): 200 whenever the process answers, with every
  plugin's state in the body for people; a probe that restarts on failure reads only the
  status code, so a Redis outage never gets a healthy process killed.
- ``GET /api/v1/ready`` (readiness): every plugin's own health; 200 when none is down
  (``degraded`` still serves), else a 503 problem naming the plugins that are down, and why.
- ``GET /-/plugins`` (``admin``): the plugins loaded and installed, their versions,
  distributions, hooks and states, as ``butterflyfx plugins --json`` lists them.

Swagger UI's files come from the ``swagger-ui-bundle-v2`` package (Swagger UI 5, which
reads the OpenAPI 3.1 document quart-schema writes) and are served by this server, so
the docs work where no CDN can be reached.
"""

from __future__ import annotations

import asyncio
import html
import re
import time
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from quart import Blueprint, Response, send_from_directory, url_for
from quart_schema import document_response, hide, tag_blueprint
from werkzeug.exceptions import NotFound

from butterflyfx.core import plugins
from butterflyfx.core.auth import open_route, requires
from butterflyfx.core.context import ServerContext
from butterflyfx.core.health import PluginHealth, Status
from butterflyfx.core.problems import Problem, ProblemError
from butterflyfx.interface.machine.models import HealthBody, ProblemBody

from .json import json_response

OPENAPI_PATH = "/api/v1/openapi.json"
DOCS_PATH = "/api/v1/docs"
NO_STORE = {"Cache-Control": "no-store"}
# Only what the page needs; the rest of the package (source maps, demo pages) stays put.
DOCS_ASSETS = frozenset(
    {
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "swagger-ui-standalone-preset.js",
        "favicon-32x32.png",
        "favicon-16x16.png",
    }
)

DOCS_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{title}</title>
  <link rel="stylesheet" href="{css}">
  <link rel="icon" type="image/png" href="{icon}" sizes="32x32">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{js}" charset="utf-8"></script>
  <script>
    window.ui = SwaggerUIBundle({{
      url: "{spec}",
      dom_id: "#swagger-ui",
      deepLinking: true,
      presets: [SwaggerUIBundle.presets.apis],
      layout: "BaseLayout"
    }});
  </script>
</body>
</html>
"""

MISSING_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>
<body><p>The interactive docs need the <code>swagger-ui-bundle-v2</code> package installed
on the server. The OpenAPI document is at <a href="{spec}">{spec}</a>.</p></body></html>
"""


def server_version() -> str:
    try:
        return metadata.version("butterflyfx")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def _without_status(detail: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in detail.items() if key != "status"}


def _reason(state: PluginHealth) -> str:
    """Why a plugin is down, in its own words (its ``error``, else its lifecycle state)."""
    detail = state.detail
    if "error" in detail:
        return str(detail["error"])
    if "state" in detail:
        return f"its state is {detail['state']!r}"
    return "its health check says down"


def swagger_ui_directory() -> Path | None:
    """Where Swagger UI 5 is installed, or None.

    ``swagger-ui-bundle`` (v1, Swagger UI 4) installs the same module but cannot read
    OpenAPI 3.1, so its files count as missing.
    """
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:
        return None
    found = re.search(r"swagger-ui-(\d+)\.", Path(swagger_ui_path).name)
    if found is None or int(found.group(1)) < 5:
        return None
    return Path(swagger_ui_path)


class SystemRoutes:
    """Health, readiness, the plugins page and docs, bound to one server context."""

    def __init__(self, ctx: ServerContext, title: str, docs: bool = True) -> None:
        self.ctx = ctx
        self.title = title
        self.docs = docs
        self.version = server_version()
        self.assets = swagger_ui_directory()

    def blueprint(self) -> Blueprint:
        bp = Blueprint("system", __name__)
        tag_blueprint(bp, ["system"])
        bp.add_url_rule("/api/v1/health", view_func=self.health, methods=["GET"])
        bp.add_url_rule("/api/v1/ready", view_func=self.ready, methods=["GET"])
        bp.add_url_rule("/-/plugins", view_func=self.plugins_page, methods=["GET"])
        if self.docs:
            bp.add_url_rule(DOCS_PATH, view_func=self.docs_page, methods=["GET"])
            bp.add_url_rule(f"{DOCS_PATH}/<name>", view_func=self.docs_asset, methods=["GET"])
        return bp

    def _report(self, status: Status, states: Mapping[str, PluginHealth]) -> dict[str, Any]:
        return {
            "status": status,
            "version": self.version,
            "uptime_seconds": round(time.time() - self.ctx.started_at, 3),
            "plugins": {
                name: {"status": state.status, **_without_status(state.detail)}
                for name, state in states.items()
            },
        }

    @document_response(HealthBody, 200)
    @open_route
    async def health(self) -> Response:
        """Liveness: 200 while the process answers, with each plugin's own state.

        ``status`` says how the plugins are (``ok``, ``degraded``, ``down``); whether the
        server should get traffic is ``/api/v1/ready``'s answer.
        """
        status, states = await self.ctx.health()
        return json_response(self._report(status, states), 200, NO_STORE)

    @document_response(HealthBody, 200)
    @document_response(ProblemBody, 503)
    @open_route
    async def ready(self) -> Response:
        """Readiness: every plugin's health hook (store reachable, Redis reachable...).

        200 when no plugin is down (``degraded`` still serves); 503, a problem naming the
        plugins that are down and why, when one is.
        """
        status, states = await self.ctx.health()
        report = self._report(status, states)
        # A plugin with `required = false` is listed down but keeps no traffic away.
        optional = self.ctx.config.optional
        down = [n for n, state in states.items() if state.status == "down" and n not in optional]
        if not down:
            return json_response(report, 200, NO_STORE)
        reasons = "; ".join(f"{name}: {_reason(states[name])}" for name in down)
        raise ProblemError(
            Problem(
                503, "not-ready", "Not ready",
                f"{'plugin' if len(down) == 1 else 'plugins'} down: {reasons}",
                {"down": down, "plugins": report["plugins"]}, headers=NO_STORE,
            )
        )  # fmt: skip

    @hide
    @requires("admin")
    async def plugins_page(self) -> Response:
        """The plugins this worker runs and every other one installed, with their hooks."""
        # Listing a plugin that is not enabled loads it (an import): kept off the loop.
        rows = await asyncio.to_thread(plugins.plugin_rows, self.ctx.plugins, self.ctx.states)
        body = {"worker": self.ctx.worker_id, "tracing": plugins.TRACING, "plugins": rows}
        return json_response(body, 200, NO_STORE)

    @hide
    @open_route
    async def docs_page(self) -> Response:
        title = html.escape(self.title)
        if self.assets is None:
            page = MISSING_PAGE.format(title=title, spec=OPENAPI_PATH)
        else:
            asset = "system.docs_asset"
            page = DOCS_PAGE.format(
                title=title,
                css=url_for(asset, name="swagger-ui.css"),
                icon=url_for(asset, name="favicon-32x32.png"),
                js=url_for(asset, name="swagger-ui-bundle.js"),
                spec=url_for("openapi"),
            )
        return Response(page, 200, content_type="text/html; charset=utf-8")

    @hide
    @open_route
    async def docs_asset(self, name: str) -> Response:
        if self.assets is None or name not in DOCS_ASSETS:
            raise NotFound()
        response = await send_from_directory(self.assets, name)
        response.cache_control.public = True
        response.cache_control.max_age = 86400
        return response
