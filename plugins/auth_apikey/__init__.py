"""``auth.apikey``: API keys (``Authorization: Bearer sk-butterflyfx-...``) per tenant.

Keys are stored only as SHA-256 digests; each has a tenant, a tier, scopes, and created,
last-used and revoked times. They live in a SQLite file of their own (one machine), or in
a PostgreSQL table when ``database`` is set, so that every instance behind a load balancer
knows every key and every revocation. ``butterflyfx keys create|list|revoke`` manages them
from the shell, ``/api/v1/keys`` from an admin key. On the first start with no key at all,
one admin key for tenant ``default`` is created and printed once on stdout (by exactly one
of several instances starting at once).

Config section ``[auth.apikey]``::

    path = "/var/lib/butterflyfx/auth-keys.sqlite3"  # default: <data_dir>/auth-keys.sqlite3
    database = "postgresql://butterflyfx@db:5432/butterflyfx"  # instead of path: shared
    schema = "butterflyfx_auth"   # the PostgreSQL schema of the keys table
    bootstrap = true              # first start with no keys: create and print an admin key
    bootstrap_tier = "enterprise" # the tier of that key
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import structlog

from butterflyfx.core.auth import Caller, Principal
from butterflyfx.core.commands import Command
from butterflyfx.core.health import PluginHealth
from butterflyfx.core.hookspecs import hookimpl

from .command import KeysCommand
from .keys import PREFIX, ApiKey, IssuedKey
from .keystore import KeyStore, KeyStoreError
from .postgres_keystore import PostgresKeyStore
from .routes import KeyRoutes
from .service import BOOTSTRAP_TENANT, ApiKeyService
from .settings import DEFAULT_FILE_NAME, SECTION, ApiKeySettings, keys_path, settings_of
from .stores import KeyStorage, key_store

if TYPE_CHECKING:
    from butterflyfx.core.context import ServerContext

__all__ = ["DEFAULT_FILE_NAME", "PREFIX", "SECTION", "ApiKey", "ApiKeySettings", "IssuedKey",
           "KeyStorage", "KeyStore", "KeyStoreError", "PostgresKeyStore", "key_store",
           "keys_path", "service_of"]  # fmt: skip

log = structlog.get_logger("butterflyfx.auth.apikey")


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
    service = ApiKeyService(key_store(ctx))
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
    return {"keys": KeysCommand(key_store)}


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
    return PluginHealth("ok", {"keys": active, "revoked_keys": revoked, "store": store.kind})
