"""The ``[auth.jwt]`` config section, and the files (or the database) it points at."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from limits import parse
from pydantic import ConfigDict, Field, SecretStr, field_validator, model_validator

from butterflyfx.core.config import StrictModel

if TYPE_CHECKING:
    from butterflyfx.core.context import ServerContext

SECTION = "auth.jwt"
USERS_FILE_NAME = "auth-users.sqlite3"
SECRET_FILE_NAME = "jwt-secret"
MIN_SECRET_CHARACTERS = 32  # HS256 wants a key of at least 256 bits (RFC 7518, 3.2)
ATTEMPT_STORAGES = ("memory://", "redis://", "rediss://")
DATABASE_SCHEMES = ("postgresql://", "postgres://")
DEFAULT_SCHEMA = "butterflyfx_auth"


class JwtSettings(StrictModel):
    """The ``[auth.jwt]`` config section. Users live in the SQLite file ``path`` (one
    machine), or in PostgreSQL when ``database`` is set (instances on many machines); the
    field is ``schema_name`` in Python and ``schema`` in the file."""

    model_config = ConfigDict(**StrictModel.model_config, serialize_by_alias=True)

    secret: SecretStr | None = Field(
        default=None,
        description="the HS256 signing secret; unset means one generated into secret_file "
        "(or, with database, into the database)",
    )
    secret_file: Path | None = Field(
        default=None,
        description="where a generated secret is kept (mode 0600); default in data_dir",
    )
    path: Path | None = Field(default=None, description="the users database; default in data_dir")
    database: str | None = Field(
        default=None,
        description="a postgresql:// URL: keep users (and a generated secret) there, shared "
        "by every instance",
    )
    schema_name: str = Field(
        default=DEFAULT_SCHEMA,
        alias="schema",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$",
        description="the PostgreSQL schema of the users table (with database)",
    )
    max_pool: int = Field(
        default=4,
        ge=1,
        le=100,
        description="most PostgreSQL connections per worker (with database)",
    )
    issuer: str = Field(default="butterflyfx", min_length=1, description="the iss claim")
    audience: str = Field(default="butterflyfx-api", min_length=1, description="the aud claim")
    token_seconds: int = Field(
        default=3600, ge=60, le=7 * 24 * 3600, description="how long a token is valid"
    )
    login_attempts: str = Field(
        default="5/minute",
        description="failed logins allowed per username and per client address",
    )
    attempts_storage: str = Field(
        default="memory://",
        description="where failed logins are counted: memory:// or redis://host:port/db",
    )

    @field_validator("secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_SECRET_CHARACTERS:
            raise ValueError(
                f"must be at least {MIN_SECRET_CHARACTERS} characters: HS256 needs a key of "
                "256 bits; e.g. python -c 'import secrets; print(secrets.token_urlsafe(48))'"
            )
        return value

    @field_validator("login_attempts")
    @classmethod
    def _rate(cls, value: str) -> str:
        try:
            parse(value)
        except ValueError:
            raise ValueError(
                f"{value!r} is not a rate: write it as COUNT/PERIOD, e.g. 5/minute or 20/hour"
            ) from None
        return value

    @field_validator("attempts_storage")
    @classmethod
    def _storage(cls, value: str) -> str:
        if not value.startswith(ATTEMPT_STORAGES):
            raise ValueError("must be memory:// or a redis:// (rediss://) URL")
        return value

    @field_validator("database")
    @classmethod
    def _postgresql_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(DATABASE_SCHEMES):
            raise ValueError("must be a postgresql://user@host:5432/database URL")
        return value

    @model_validator(mode="after")
    def _one_place(self) -> JwtSettings:
        if self.database is None:
            return self
        if self.path is not None:
            raise ValueError(
                "set path (a SQLite file on this machine) or database (PostgreSQL, shared "
                "by every instance), not both"
            )
        if self.secret_file is not None:
            raise ValueError(
                "secret_file is not used with database: set secret, or leave it unset to "
                "have one generated once into the database, shared by every instance"
            )
        return self


def settings_of(ctx: ServerContext) -> JwtSettings:
    section = ctx.section(SECTION)
    return section if isinstance(section, JwtSettings) else JwtSettings()


def users_path(ctx: ServerContext) -> Path:
    return settings_of(ctx).path or Path(ctx.data_dir) / USERS_FILE_NAME


def secret_path(ctx: ServerContext) -> Path:
    return settings_of(ctx).secret_file or Path(ctx.data_dir) / SECRET_FILE_NAME
