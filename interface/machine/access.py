"""The bodies of the access routes: API keys (``/api/v1/keys``) and the JWT login.

The auth plugins document their routes with these and build their answers from them;
the client parses the answers into them. Key routes check a new key's fields by hand
(each refusal names the field in the plugin's own words), so :class:`CreateApiKey`
documents that body and lists its fields rather than validating it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_PASSWORD_CHARACTERS = 1024  # hashing is costly; nobody's password is longer

# The tiers and scopes of butterflyfx.core.auth, spelled out here so that the client's
# models stand without the server's core; tests compare the two.
Tier = Literal["free", "pro", "enterprise"]
Scope = Literal["read", "write", "invoke", "admin"]

_TIME = ["2026-02-09T12:34:56Z"]


class ApiKeyBody(BaseModel):
    """An API key as lists show it: never its secret, never the secret's digest."""

    id: str = Field(pattern=r"^key_[0-9a-f]{12}$", examples=["key_3f9a1c2b7d4e"])
    tenant: str = Field(examples=["acme"])
    tier: str = Field(examples=["pro"], description="free, pro or enterprise")
    scopes: list[str] = Field(examples=[["read", "write", "invoke"]])
    name: str | None = Field(examples=["dashboard"])
    created_at: str | None = Field(examples=_TIME)
    last_used_at: str | None = Field(examples=_TIME, description="null: never used")
    revoked_at: str | None = Field(examples=[None], description="null: not revoked")


class NewApiKeyBody(ApiKeyBody):
    """A key just created, with its secret: the only answer that ever shows it."""

    key: str = Field(
        examples=["sk-butterflyfx-..."], description="The secret; send it as Authorization: Bearer"
    )


class ApiKeyList(BaseModel):
    """The caller's tenant's keys, revoked ones included."""

    keys: list[ApiKeyBody]


class CreateApiKey(BaseModel):
    """A new key of the caller's tenant; every field may be left out."""

    model_config = ConfigDict(extra="forbid")

    tier: Tier | None = Field(
        None, description="At most the caller's own tier; left out: the caller's tier"
    )
    scopes: list[Scope] | str | None = Field(
        None,
        examples=[["read"], "read,write"],
        description="Scopes the caller holds, as a list or 'read,write'; "
        "left out: read, write and invoke",
    )
    name: str | None = Field(None, max_length=200, examples=["dashboard"])


class LoginRequest(BaseModel):
    """A user name and password (auth.jwt)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    username: str = Field(min_length=1, max_length=256)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_CHARACTERS)


class LoginAnswer(BaseModel):
    """What a login answers (the seed's format)."""

    access_token: str = Field(description="an HS256 JWT; send it as Authorization: Bearer")
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="seconds the token stays valid")
