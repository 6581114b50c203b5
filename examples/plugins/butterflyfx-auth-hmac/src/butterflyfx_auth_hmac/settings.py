"""The ``[auth.hmac]`` config section: the signing secret, how long a token may live, and
the token ids an operator has revoked."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field, SecretStr, field_validator

from butterflyfx.core.config import StrictModel

if TYPE_CHECKING:
    from butterflyfx.core.context import ServerContext

SECTION = "auth.hmac"
MIN_SECRET_CHARACTERS = 32  # HMAC-SHA256 deserves a key of at least 256 bits


class HmacSettings(StrictModel):
    """The ``[auth.hmac]`` config section; an unknown key or a short secret stops start-up."""

    secret: SecretStr = Field(
        description="the HMAC-SHA256 signing secret, at least 32 characters; usually set "
        "by the environment variable BUTTERFLYFX_AUTH_HMAC__SECRET",
    )
    max_lifetime_seconds: int = Field(
        default=86400,
        ge=1,
        description="the longest a token may be valid for; tokens reaching further are refused",
    )
    revoked: list[str] = Field(
        default_factory=list,
        description="ids of tokens refused although their signature is good",
    )

    @field_validator("secret")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < MIN_SECRET_CHARACTERS:
            raise ValueError(
                f"must be at least {MIN_SECRET_CHARACTERS} characters; make one with "
                "python -c 'import secrets; print(secrets.token_urlsafe(48))'"
            )
        return value


def settings_of(ctx: ServerContext) -> HmacSettings:
    """The validated section; the server refuses to start without one (the secret is required)."""
    section = ctx.section(SECTION)
    if not isinstance(section, HmacSettings):
        raise RuntimeError(f"[{SECTION}] was not validated: is {SECTION!r} in the plugins list?")
    return section
