"""The Quart application: lifecycle, JSON, errors, docs, and every plugin's routes."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from quart import Quart, Response, has_request_context, request, websocket
from quart_schema import Info, QuartSchema, Tag

from butterflyfx.core.context import ServerContext
from butterflyfx.core.plugins import PluginError
from butterflyfx.core.problems import Problem, ProblemError

from . import guard, problems
from .edge import Edge
from .json import OrjsonProvider
from .openapi import ButterflyOpenAPI
from .settings import HttpSettings
from .system import OPENAPI_PATH, server_version

TITLE = "ButterflyFX Server"
DESCRIPTION = (
    "Content-addressed mathematical substrates: create, divide into nine dimensions, "
    "multiply back, invoke; relate them and query the graph they form. Errors are RFC 9457 "
    "problem details."
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
        tags=[
            Tag(name="substrates", description="Content-addressed expressions and their algebra"),
            Tag(name="relationships", description="Typed relationships between substrates"),
            Tag(name="query", description="Traversals, paths, search and statistics"),
            Tag(name="system", description="Health of the server and its plugins"),
            Tag(name="manifold", description="Points on the manifold helix (seed 004)"),
        ],
    )
    app.json = OrjsonProvider(app)  # after QuartSchema, which installs its own provider
    app.make_response = responses_pass_through(app.make_response)  # type: ignore[method-assign]
    problems.install(app)
    guard.install(app, ctx, open_paths=frozenset({OPENAPI_PATH}))
    app.before_serving(ctx.start)
    app.after_serving(ctx.stop)
    add_routes(app, ctx)
    app.asgi_app = Edge(  # type: ignore[method-assign]
        app.asgi_app, ctx.settings.max_body_bytes, ctx
    )
    return app


def responses_pass_through(
    make_response: Callable[[Any], Awaitable[Response]],
) -> Callable[[Any], Awaitable[Response]]:
    """Hand a ready ``Response`` straight back.

    quart-schema wraps ``make_response`` to turn returned models into JSON; our handlers
    build their responses themselves, and skipping its checks is measurable per request.
    Anything else (another plugin returning a model or a dict) still goes through it.
    """

    @functools.wraps(make_response)
    async def make(result: Any) -> Response:
        if type(result) is Response:
            return result
        return await make_response(result)

    return make


def add_routes(app: Quart, ctx: ServerContext) -> None:
    """Call every plugin's ``butterflyfx_routes`` (this one's included) to add blueprints.

    In pluggy's call order: ``tryfirst`` plugins add theirs before this plugin's defaults
    (``trylast``), so their rules win where both claim a path.
    """
    values = {"app": app, "ctx": ctx}
    owners: dict[str, str] = {}
    for implementation in reversed(ctx.plugins.hook.butterflyfx_routes.get_hookimpls()):
        before = set(app.view_functions)
        result = implementation.function(**{name: values[name] for name in implementation.argnames})
        if inspect.isawaitable(result):
            if inspect.iscoroutine(result):
                result.close()
            raise PluginError(
                f"plugin {implementation.plugin_name!r}: butterflyfx_routes must add its "
                "blueprints synchronously, not return an awaitable"
            )
        owners.update(dict.fromkeys(set(app.view_functions) - before, implementation.plugin_name))
    refuse_left_out_routes(app, ctx, owners)


def refuse_left_out_routes(app: Quart, ctx: ServerContext, owners: dict[str, str]) -> None:
    """A route of an optional plugin that failed to start answers 503 naming the plugin
    (its routes were added before the server started, the plugin is not running)."""

    def check() -> None:
        endpoint = request.endpoint if has_request_context() else websocket.endpoint
        plugin = owners.get(endpoint or "")
        if plugin is not None and ctx.left_out(plugin):
            raise ProblemError(
                Problem(
                    503, "plugin-unavailable", "Plugin unavailable",
                    f"plugin {plugin!r} is not running: {ctx.plugins.failed[plugin]}",
                    {"plugin": plugin},
                )
            )  # fmt: skip

    app.before_request(check)
    app.before_websocket(check)
