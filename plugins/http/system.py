"""``/api/v1/health`` and the interactive docs at ``/api/v1/docs``, served without internet.

Swagger UI's files come from the ``swagger-ui-bundle-v2`` package (Swagger UI 5, which
reads the OpenAPI 3.1 document quart-schema writes) and are served by this server, so
the docs work where no CDN can be reached.
"""

from __future__ import annotations

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

from butterflyfx.core.auth import open_route
from butterflyfx.core.context import ServerContext

from .json import json_response
from .models import HealthBody

OPENAPI_PATH = "/api/v1/openapi.json"
DOCS_PATH = "/api/v1/docs"
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
    """Health and docs, bound to one server context."""

    def __init__(self, ctx: ServerContext, title: str, docs: bool = True) -> None:
        self.ctx = ctx
        self.title = title
        self.docs = docs
        self.version = server_version()
        self.assets = swagger_ui_directory()

    def blueprint(self) -> Blueprint:
        bp = Blueprint("system", __name__, url_prefix="/api/v1")
        tag_blueprint(bp, ["system"])
        bp.add_url_rule("/health", view_func=self.health, methods=["GET"])
        if self.docs:
            bp.add_url_rule("/docs", view_func=self.docs_page, methods=["GET"])
            bp.add_url_rule("/docs/<name>", view_func=self.docs_asset, methods=["GET"])
        return bp

    @document_response(HealthBody, 200)
    @document_response(HealthBody, 503)
    @open_route
    async def health(self) -> Response:
        """The server's health, computed from every plugin's own state.

        503 when any plugin is down.
        """
        status, plugins = await self.ctx.health()
        body = {
            "status": status,
            "version": self.version,
            "uptime_seconds": round(time.time() - self.ctx.started_at, 3),
            "plugins": {
                name: {"status": state.status, **_without_status(state.detail)}
                for name, state in plugins.items()
            },
        }
        return json_response(body, 503 if status == "down" else 200, {"Cache-Control": "no-store"})

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
