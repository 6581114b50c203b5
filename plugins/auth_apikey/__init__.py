"""``auth.apikey``: API keys (``Authorization: Bearer sk-butterflyfx-...``) per tenant.

Keys live in their own SQLite file, only as SHA-256 digests; each has a tenant, a tier,
scopes, and created, last-used and revoked times. ``butterflyfx keys create|list|revoke``
manages them from the shell, ``/api/v1/keys`` from an admin key. On the first start with
no key at all, one admin key for tenant ``default`` is created and printed once on stdout.

Config section ``[auth.apikey]``::

    path = "/var/lib/butterflyfx/auth-keys.sqlite3"  # default: <data_dir>/auth-keys.sqlite3
    bootstrap = true              # first start with no keys: create and print an admin key
    bootstrap_tier = "enterprise" # the tier of that key
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from pydantic import Field, field_validator

from butterflyfx.core.auth import TIERS, Caller, Principal
from butterflyfx.core.commands import Command
from butterflyfx.core.config import StrictModel
from butterflyfx.core.health import PluginHealth
from butterflyfx.core.hookspecs import hookimpl

from .command import KeysCommand
from .keys import PREFIX, ApiKey, IssuedKey
from .keystore import KeyStore, KeyStoreError
from .routes import KeyRoutes
from .service import BOOTSTRAP_TENANT, ApiKeyService

if TYPE_CHECKING:
    from butterflyfx.core.context import ServerContext

__all__ = ["PREFIX", "SECTION", "ApiKey", "ApiKeySettings", "IssuedKey", "KeyStore",
           "KeyStoreError", "keys_path"]  # fmt: skip

SECTION = "auth.apikey"
DEFAULT_FILE_NAME = "auth-keys.sqlite3"
log = structlog.get_logger("butterflyfx.auth.apikey")


class ApiKeySettings(StrictModel):
    """The ``[auth.apikey]`` config section."""

    path: Path | None = Field(
        default=None, description="the SQLite file of API keys; default in data_dir"
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


def settings_of(ctx: ServerContext) -> ApiKeySettings:
    section = ctx.section(SECTION)
    return section if isinstance(section, ApiKeySettings) else ApiKeySettings()


def keys_path(ctx: ServerContext) -> Path:
    """The configured file, or ``auth-keys.sqlite3`` in the server's data folder."""
    return settings_of(ctx).path or Path(ctx.data_dir) / DEFAULT_FILE_NAME


# One service per running context (tests run several contexts in one process). The
# context is kept beside it: an id is only unique while its object lives.
_running: dict[int, tuple[ServerContext, ApiKeyService]] = {}


def service_of(ctx: ServerContext) -> ApiKeyService:
    entry = _running.get(id(ctx))
    if entry is None or entry[0] is not ctx:
        raise RuntimeError("the auth.apikey plugin has not started")
    return entry[1]


@hookimpl
def butterflyfx_config_model() -> tuple[str, type[ApiKeySettings]]:
    return SECTION, ApiKeySettings


@hookimpl
async def butterflyfx_startup(ctx: ServerContext) -> None:
    settings = settings_of(ctx)
    service = ApiKeyService(KeyStore(keys_path(ctx)))
    await service.start()
    _running[id(ctx)] = (ctx, service)
    if not settings.bootstrap:
        return
    issued = await service.bootstrap(settings.bootstrap_tier)
    if issued is not None:
        key = issued.key
        log.info("api_key_bootstrapped", key_id=key.id, tenant=key.tenant, tier=key.tier)
        # stdout, once, never the log: the operator copies it from the console.
        print(
            f"auth.apikey: no API keys existed, so an admin key was created for tenant "
            f"{BOOTSTRAP_TENANT!r} ({key.id}, tier {key.tier}); it is shown only now:",
            flush=True,
        )
        print(issued.secret, flush=True)


@hookimpl
async def butterflyfx_shutdown(ctx: ServerContext) -> None:
    entry = _running.pop(id(ctx), None)
    if entry is not None and entry[0] is ctx:
        await entry[1].stop()


@hookimpl
async def butterflyfx_authenticate(caller: Caller, ctx: ServerContext) -> Principal | None:
    if caller.token is None or not caller.token.startswith(PREFIX):
        return None  # another plugin's credential
    return await service_of(ctx).authenticate(caller.token)


@hookimpl
def butterflyfx_routes(app: Any, ctx: ServerContext) -> None:
    app.register_blueprint(KeyRoutes(lambda: service_of(ctx).store).blueprint())


@hookimpl
def butterflyfx_commands() -> Mapping[str, Command]:
    return {"keys": KeysCommand(keys_path)}


@hookimpl
async def butterflyfx_health(ctx: ServerContext) -> PluginHealth:
    try:
        store = service_of(ctx).store
    except RuntimeError as error:
        return PluginHealth("down", {"error": str(error)})
    try:
        active, revoked = await store.count()
    except Exception as error:
        return PluginHealth("down", {"error": f"{type(error).__name__}: {error}"})
    return PluginHealth("ok", {"keys": active, "revoked_keys": revoked})
