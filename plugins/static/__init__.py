"""``static``: the files of one folder at ``/`` and ``/<path>``, for a site or a UI beside the API.

Config section ``[static]``::

    directory = "/srv/butterflyfx/site"   # unset: no file is served (the default)
    index = "index.html"                  # what a folder's URL ending in / serves
    cache_seconds = 0                     # Cache-Control max-age; 0 sends no-cache

Files are public (open routes, still rate limited by client address), answered with their
content type, ETag and Last-Modified (304 to a matching If-None-Match or If-Modified-Since)
and one byte range on request (206, or 416 outside the file). Only GET and HEAD. Nothing
outside the folder, no dotfile and no folder listing is ever served: each is a 404, the
same as a file that does not exist. ``/api`` and ``/-`` and everything below them are never
static, so the API keeps its own answers.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from butterflyfx.core.health import PluginHealth
from butterflyfx.core.hookspecs import hookimpl

from .settings import SECTION, StaticSettings

if TYPE_CHECKING:
    from butterflyfx.core.context import ServerContext

__all__ = ["SECTION", "StaticSettings"]


def settings_of(ctx: ServerContext) -> StaticSettings:
    section = ctx.section(SECTION)
    return section if isinstance(section, StaticSettings) else StaticSettings()


@hookimpl
def butterflyfx_config_model() -> tuple[str, type[StaticSettings]]:
    return SECTION, StaticSettings


@hookimpl
def butterflyfx_startup(ctx: ServerContext) -> None:
    directory = settings_of(ctx).directory
    if directory is not None and not os.path.isdir(directory):
        # The core names the plugin: "plugin 'static' failed to start: NotADirectoryError: ..."
        raise NotADirectoryError(
            f"[static] directory {str(directory)!r} is not a folder "
            f"(from {os.getcwd()!r}); create it, or leave the key unset to serve no files"
        )


# trylast: a default, added after every other plugin's routes.
@hookimpl(trylast=True)
def butterflyfx_routes(app: Any, ctx: ServerContext) -> None:
    settings = settings_of(ctx)
    if settings.directory is None:
        return
    from .routes import StaticRoutes  # Quart is imported only when files are served

    StaticRoutes(settings).install(app)


@hookimpl
def butterflyfx_health(ctx: ServerContext) -> PluginHealth:
    settings = settings_of(ctx)
    if settings.directory is None:
        return PluginHealth(
            "ok", {"serving": False, "detail": "static.directory is not set: no file is served"}
        )
    detail = {"serving": True, "directory": str(settings.directory), "index": settings.index}
    if not os.path.isdir(settings.directory):
        # The API still answers; only the files are gone, so degraded, not down.
        return PluginHealth(
            "degraded",
            {**detail, "serving": False, "detail": "the directory is missing or not a folder"},
        )
    return PluginHealth("ok", detail)
