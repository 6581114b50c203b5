"""``storage.redis``: substrates and relationships in Redis, a registry shared by every
server that points at the same Redis.

Config section ``[storage.redis]``::

    url = "redis://127.0.0.1:6379/0"   # a password in it is masked in messages
    prefix = "butterflyfx"              # every key is "{prefix}:{tenant}:..."
    connect_timeout = 5.0               # seconds to open a connection
    command_timeout = 10.0              # seconds a command may take

Each multi-key write (a batch, a delete with its relationships, a relationship with its
end check) is one Lua script, atomic on the server. Search scans the tenant's substrates
in identity order and filters them in Python: O(substrates) per search. A single Redis
server (or a primary with replicas) is supported, not Redis Cluster.

Durability is the Redis server's: with ``appendonly yes`` and ``appendfsync everysec``
a crash loses at most about the last second of acknowledged writes; ``appendfsync
always`` fsyncs every write; without AOF only RDB snapshots survive. The store does not
change server settings; its health reports ``appendonly`` and ``appendfsync``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from butterflyfx.core.config import StrictModel
from butterflyfx.core.health import PluginHealth
from butterflyfx.core.hookspecs import hookimpl
from butterflyfx.core.store import StoreUnavailable

from .store import DEFAULT_URL, RedisStore, RedisStoreError, masked_url

if TYPE_CHECKING:
    from butterflyfx.core.context import ServerContext

__all__ = ["SECTION", "RedisSettings", "RedisStore", "RedisStoreError"]

SECTION = "storage.redis"


class RedisSettings(StrictModel):
    """The ``[storage.redis]`` config section."""

    url: str = Field(default=DEFAULT_URL, description="redis:// (or rediss://) URL of the server")
    prefix: str = Field(
        default="butterflyfx",
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="the first part of every key the store writes",
    )
    connect_timeout: float = Field(
        default=5.0, gt=0, description="seconds to open a connection to Redis"
    )
    command_timeout: float = Field(
        default=10.0, gt=0, description="seconds a command may take before it fails"
    )


def settings_of(ctx: ServerContext) -> RedisSettings:
    section = ctx.section(SECTION)
    return section if isinstance(section, RedisSettings) else RedisSettings()


@hookimpl
def butterflyfx_config_model() -> tuple[str, type[RedisSettings]]:
    return SECTION, RedisSettings


@hookimpl
def butterflyfx_storage(ctx: ServerContext) -> RedisStore:
    settings = settings_of(ctx)
    return RedisStore(
        settings.url,
        prefix=settings.prefix,
        connect_timeout=settings.connect_timeout,
        command_timeout=settings.command_timeout,
    )


@hookimpl
async def butterflyfx_health(ctx: ServerContext) -> PluginHealth | None:
    try:
        store = ctx.store
    except RuntimeError:
        where = masked_url(settings_of(ctx).url)
        return PluginHealth("down", {"url": where, "error": "the store is not open"})
    if not isinstance(store, RedisStore):
        return None
    try:
        return PluginHealth("ok", dict(await store.health()))
    except StoreUnavailable as error:  # names the server and says what failed
        return PluginHealth("down", {"server": store.where, "error": str(error)})
    except Exception as error:
        reason = f"{type(error).__name__}: {masked_url(str(error))}"
        return PluginHealth("down", {"server": store.where, "error": reason})
