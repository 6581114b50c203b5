"""``storage.sqlite``: the default store, one SQLite file in the data folder.

Config section ``[storage.sqlite]``::

    path = "/var/lib/butterflyfx/butterflyfx.sqlite3"  # default: <data_dir>/butterflyfx.sqlite3
    synchronous = "full"       # "normal" may lose the last commits on power loss, not on a crash
    busy_timeout_ms = 5000     # how long a worker waits for another worker's write lock
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from butterflyfx.core.config import StrictModel
from butterflyfx.core.health import PluginHealth
from butterflyfx.core.hookspecs import hookimpl

from .store import SqliteStore, SqliteStoreError

if TYPE_CHECKING:
    from butterflyfx.core.context import ServerContext

__all__ = ["SECTION", "SqliteSettings", "SqliteStore", "SqliteStoreError"]

SECTION = "storage.sqlite"
DEFAULT_FILE_NAME = "butterflyfx.sqlite3"


class SqliteSettings(StrictModel):
    """The ``[storage.sqlite]`` config section."""

    path: Path | None = Field(default=None, description="the database file; default in data_dir")
    synchronous: Literal["full", "normal"] = Field(
        default="full", description="full: a write survives power loss once acknowledged"
    )
    busy_timeout_ms: int = Field(default=5000, ge=0, description="wait for another process's lock")


def settings_of(ctx: ServerContext) -> SqliteSettings:
    section = ctx.section(SECTION)
    return section if isinstance(section, SqliteSettings) else SqliteSettings()


def database_path(ctx: ServerContext) -> Path:
    """The configured file, or ``butterflyfx.sqlite3`` in the server's data folder."""
    return settings_of(ctx).path or Path(ctx.data_dir) / DEFAULT_FILE_NAME


@hookimpl
def butterflyfx_config_model() -> tuple[str, type[SqliteSettings]]:
    return SECTION, SqliteSettings


@hookimpl(trylast=True)
def butterflyfx_storage(ctx: ServerContext) -> SqliteStore:
    settings = settings_of(ctx)
    return SqliteStore(
        database_path(ctx),
        synchronous=settings.synchronous,
        busy_timeout_ms=settings.busy_timeout_ms,
    )


@hookimpl
async def butterflyfx_health(ctx: ServerContext) -> PluginHealth | None:
    path = str(database_path(ctx))
    try:
        store = ctx.store
    except RuntimeError:
        return PluginHealth("down", {"path": path, "error": "the store is not open"})
    if not isinstance(store, SqliteStore):
        return None  # another storage plugin serves; its own health hook reports it
    try:
        return PluginHealth("ok", dict(await store.health()))
    except Exception as error:
        reason = f"{type(error).__name__}: {error}"
        return PluginHealth("down", {"path": str(store.path), "error": reason})
