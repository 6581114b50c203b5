"""``http``: the HTTP API (Quart) under ``/api/v1``, as an ordinary plugin.

It supplies the ASGI app, and adds its own endpoints through ``butterflyfx_routes`` like
any other plugin would. Its startup starts the worker's idle-connection sweep
(``core/runtime``), which its edge feeds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from butterflyfx.core.hookspecs import hookimpl
from butterflyfx.core.runtime import runtime_of

from .settings import HttpSettings

if TYPE_CHECKING:
    from butterflyfx.core.context import ServerContext


@hookimpl
def butterflyfx_config_model() -> tuple[str, type[HttpSettings]]:
    return "http", HttpSettings


@hookimpl(trylast=True)
def butterflyfx_asgi_app(ctx: ServerContext) -> Any:
    from .app import create_app  # Quart is imported only when an app is wanted

    return create_app(ctx)


@hookimpl(trylast=True)
def butterflyfx_routes(app: Any, ctx: ServerContext) -> None:
    from .app import TITLE, settings_of
    from .manifold_routes import ManifoldRoutes
    from .query import QueryRoutes
    from .relationships import RelationshipRoutes
    from .runtime_routes import RuntimeRoutes, mark_admin_pool
    from .substrates import SubstrateRoutes
    from .system import SystemRoutes

    settings = settings_of(ctx)

    app.register_blueprint(SubstrateRoutes(ctx).blueprint())
    app.register_blueprint(RelationshipRoutes(ctx).blueprint())
    app.register_blueprint(QueryRoutes(ctx).blueprint())
    app.register_blueprint(SystemRoutes(ctx, TITLE, settings.docs).blueprint())
    app.register_blueprint(RuntimeRoutes(ctx, settings.public_status).blueprint())
    app.register_blueprint(ManifoldRoutes(ctx).blueprint())
    mark_admin_pool(app)


@hookimpl
async def butterflyfx_startup(ctx: ServerContext) -> None:
    await runtime_of(ctx).start()


@hookimpl
async def butterflyfx_shutdown(ctx: ServerContext) -> None:
    await runtime_of(ctx).stop()
