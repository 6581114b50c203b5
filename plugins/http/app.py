"""The Quart application: lifecycle, JSON, errors, docs, and every plugin's routes."""

from __future__ import annotations

import inspect
from pathlib import Path

from quart import Quart
from quart_schema import Info, QuartSchema

from butterflyfx.core.context import ServerContext
from butterflyfx.core.plugins import PluginError

from . import problems
from .edge import Edge
from .json import OrjsonProvider
from .openapi import ButterflyOpenAPI
from .settings import HttpSettings
from .system import OPENAPI_PATH, server_version

TITLE = "ButterflyFX Server"
DESCRIPTION = (
    "Content-addressed mathematical substrates: create, divide into nine dimensions, "
    "multiply back, invoke. Errors are RFC 9457 problem details."
)


def settings_of(ctx: ServerContext) -> HttpSettings:
    section = ctx.section("http")
    return section if isinstance(section, HttpSettings) else HttpSettings()


def create_app(ctx: ServerContext) -> Quart:
    """Build the app for ``ctx``; serving it starts the context, and stopping stops it."""
    # Paths given outright: Flask's package search fails on the editable install's layout.
    app = Quart(
        __name__,
        static_folder=None,
        root_path=str(Path(__file__).parent),
        instance_path=str(Path(ctx.data_dir).resolve()),
    )
    app.config["MAX_CONTENT_LENGTH"] = ctx.settings.max_body_bytes
    app.extensions["butterflyfx"] = ctx
    QuartSchema(
        app,
        openapi_path=OPENAPI_PATH,
        # The docs page is ours (system.py): quart-schema's pages load their files from CDNs.
        swagger_ui_path=None,
        redoc_ui_path=None,
        scalar_ui_path=None,
        info=Info(title=TITLE, version=server_version(), description=DESCRIPTION),
        openapi_provider_class=ButterflyOpenAPI,
    )
    app.json = OrjsonProvider(app)  # after QuartSchema, which installs its own provider
    problems.install(app)
    app.before_serving(ctx.start)
    app.after_serving(ctx.stop)
    add_routes(app, ctx)
    app.asgi_app = Edge(app.asgi_app, ctx.settings.max_body_bytes)  # type: ignore[method-assign]
    return app


def add_routes(app: Quart, ctx: ServerContext) -> None:
    """Call every plugin's ``butterflyfx_routes`` (this one's included) to add blueprints."""
    values = {"app": app, "ctx": ctx}
    for implementation in ctx.plugins.hook.butterflyfx_routes.get_hookimpls():
        result = implementation.function(**{name: values[name] for name in implementation.argnames})
        if inspect.isawaitable(result):
            if inspect.iscoroutine(result):
                result.close()
            raise PluginError(
                f"plugin {implementation.plugin_name!r}: butterflyfx_routes must add its "
                "blueprints synchronously, not return an awaitable"
            )
