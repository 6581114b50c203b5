"""``storage.postgres``: substrates and relationships in PostgreSQL, shared by instances.

Config section ``[storage.postgres]``::

    dsn = "postgresql://postgres@127.0.0.1:5432/test"  # a password in it is masked
    schema = "butterflyfx"   # created at start; tables live there
    min_pool = 1             # connections per worker process
    max_pool = 10
    command_timeout = 30.0   # seconds a statement may run
    acquire_timeout = 5.0    # seconds a request waits for a pooled connection
    partitions = 0           # 0: plain tables; N >= 2: N hash partitions by tenant per table
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import ConfigDict, Field, model_validator

from butterflyfx.core.config import StrictModel
from butterflyfx.core.health import PluginHealth
from butterflyfx.core.hookspecs import hookimpl
from butterflyfx.core.sql import masked_dsn
from butterflyfx.core.store import StoreUnavailable

from .layout import MAX_PARTITIONS, Layout
from .store import DEFAULT_DSN, PostgresStore, PostgresStoreError

if TYPE_CHECKING:
    from butterflyfx.core.context import ServerContext

__all__ = ["SECTION", "PostgresSettings", "PostgresStore", "PostgresStoreError"]

SECTION = "storage.postgres"


class PostgresSettings(StrictModel):
    """The ``[storage.postgres]`` config section. The field is ``schema_name`` in Python
    (``schema`` would shadow a BaseModel attribute) and ``schema`` in the file and in
    ``config check``."""

    model_config = ConfigDict(**StrictModel.model_config, serialize_by_alias=True)

    dsn: str = Field(default=DEFAULT_DSN, description="libpq URL of the database")
    schema_name: str = Field(
        default="butterflyfx",
        alias="schema",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$",
        description="the PostgreSQL schema the plugin creates and uses",
    )
    min_pool: int = Field(default=1, ge=0, description="connections kept open per worker")
    max_pool: int = Field(default=10, ge=1, description="most connections per worker")
    command_timeout: float = Field(default=30.0, gt=0, description="seconds a statement may run")
    acquire_timeout: float = Field(
        default=5.0, gt=0, description="seconds a request waits for a pooled connection"
    )
    partitions: int = Field(
        default=0,
        ge=0,
        le=MAX_PARTITIONS,
        description="0: plain tables; N >= 2: each table hash-partitioned by tenant N ways",
    )

    @model_validator(mode="after")
    def _pool_bounds(self) -> PostgresSettings:
        if self.max_pool < self.min_pool:
            raise ValueError(f"max_pool ({self.max_pool}) is below min_pool ({self.min_pool})")
        if self.partitions == 1:
            raise ValueError("partitions must be 0 (plain tables) or at least 2, not 1")
        return self


def settings_of(ctx: ServerContext) -> PostgresSettings:
    section = ctx.section(SECTION)
    return section if isinstance(section, PostgresSettings) else PostgresSettings()


@hookimpl
def butterflyfx_config_model() -> tuple[str, type[PostgresSettings]]:
    return SECTION, PostgresSettings


@hookimpl
def butterflyfx_storage(ctx: ServerContext) -> PostgresStore:
    settings = settings_of(ctx)
    return PostgresStore(
        settings.dsn,
        schema=settings.schema_name,
        min_pool=settings.min_pool,
        max_pool=settings.max_pool,
        command_timeout=settings.command_timeout,
        acquire_timeout=settings.acquire_timeout,
        layout=Layout(settings.partitions),
    )


@hookimpl
async def butterflyfx_health(ctx: ServerContext) -> PluginHealth | None:
    try:
        store = ctx.store
    except RuntimeError:
        where = masked_dsn(settings_of(ctx).dsn)
        return PluginHealth("down", {"dsn": where, "error": "the store is not open"})
    if not isinstance(store, PostgresStore):
        return None
    try:
        return PluginHealth("ok", dict(await store.health()))
    except StoreUnavailable as error:  # names the server and says what failed
        return PluginHealth("down", {"server": store.where, "error": str(error)})
    except Exception as error:
        reason = f"{type(error).__name__}: {masked_dsn(str(error))}"
        return PluginHealth("down", {"server": store.where, "error": reason})
