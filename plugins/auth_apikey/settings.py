"""The ``[auth.apikey]`` config section: where the keys live and what the first start does."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ConfigDict, Field, field_validator, model_validator

from butterflyfx.core.auth import TIERS
from butterflyfx.core.config import StrictModel

if TYPE_CHECKING:
    from butterflyfx.core.context import ServerContext

SECTION = "auth.apikey"
DEFAULT_FILE_NAME = "auth-keys.sqlite3"
DEFAULT_SCHEMA = "butterflyfx_auth"
DATABASE_SCHEMES = ("postgresql://", "postgres://")


class ApiKeySettings(StrictModel):
    """The ``[auth.apikey]`` config section. The keys live in the SQLite file ``path``
    (one machine), or in PostgreSQL when ``database`` is set (instances on many machines).
    The field is ``schema_name`` in Python (``schema`` would shadow a BaseModel attribute)
    and ``schema`` in the file."""

    model_config = ConfigDict(**StrictModel.model_config, serialize_by_alias=True)

    path: Path | None = Field(
        default=None, description="the SQLite file of API keys; default in data_dir"
    )
    database: str | None = Field(
        default=None,
        description="a postgresql:// URL: keep the keys there, shared by every instance",
    )
    schema_name: str = Field(
        default=DEFAULT_SCHEMA,
        alias="schema",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$",
        description="the PostgreSQL schema of the keys table (with database)",
    )
    max_pool: int = Field(
        default=4,
        ge=1,
        le=100,
        description="most PostgreSQL connections per worker (with database)",
    )
    bootstrap: bool = Field(
        default=True,
        description="on a start with no keys at all, create one admin key for tenant "
        "default and print it once on stdout",
    )
    bootstrap_tier: str = Field(default="enterprise", description="the tier of that first key")

    @field_validator("bootstrap_tier")
    @classmethod
    def _known_tier(cls, value: str) -> str:
        if value not in TIERS:
            raise ValueError(f"must be one of {', '.join(TIERS)}")
        return value

    @field_validator("database")
    @classmethod
    def _postgresql_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(DATABASE_SCHEMES):
            raise ValueError("must be a postgresql://user@host:5432/database URL")
        return value

    @model_validator(mode="after")
    def _one_place(self) -> ApiKeySettings:
        if self.path is not None and self.database is not None:
            raise ValueError(
                "set path (a SQLite file on this machine) or database (PostgreSQL, shared "
                "by every instance), not both"
            )
        return self


def settings_of(ctx: ServerContext) -> ApiKeySettings:
    section = ctx.section(SECTION)
    return section if isinstance(section, ApiKeySettings) else ApiKeySettings()


def keys_path(ctx: ServerContext) -> Path:
    """The configured file, or ``auth-keys.sqlite3`` in the server's data folder."""
    return settings_of(ctx).path or Path(ctx.data_dir) / DEFAULT_FILE_NAME
