"""``auth.jwt``: users log in with a password for an HS256 bearer token.

Users (``butterflyfx users add NAME --tenant T --tier pro --password-stdin``) live, with
argon2id password hashes, in a SQLite file (one machine), or in PostgreSQL when
``database`` is set, so that every instance behind a load balancer knows every user.
``POST /api/v1/auth/login`` answers ``{"access_token", "token_type": "bearer",
"expires_in"}``; the token carries the user's tenant, tier and scopes. Any bearer
credential shaped like a JWT is this plugin's to judge: verified with the algorithm pinned
to HS256 and every claim checked, and refused (401, saying why) when anything is wrong, or
when its user has since been removed or disabled. Other credentials (API keys) are left
to other plugins.

Config section ``[auth.jwt]``::

    secret = "..."              # unset: generated once into secret_file (mode 0600),
                                # or with database, into the database (one for all)
    secret_file = "/var/lib/butterflyfx/jwt-secret"   # default <data_dir>/jwt-secret
    path = "/var/lib/butterflyfx/auth-users.sqlite3"  # default <data_dir>/auth-users.sqlite3
    database = "postgresql://butterflyfx@db:5432/butterflyfx"  # instead of path: shared
    schema = "butterflyfx_auth"  # the PostgreSQL schema of the users table
    issuer = "butterflyfx"
    audience = "butterflyfx-api"
    token_seconds = 3600
    login_attempts = "5/minute"  # failed logins per username and per client address
    attempts_storage = "memory://"  # or "redis://host:port/db"; Redis with several workers
                                    # or instances
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import TYPE_CHECKING, Any

from butterflyfx.core.auth import Caller, Principal
from butterflyfx.core.health import PluginHealth
from butterflyfx.core.hookspecs import hookimpl

from .attempts import where
from .commands import UsersCommand
from .login import login_blueprint
from .runtime import JwtAuth, register, running, unregister
from .settings import SECTION, JwtSettings, settings_of, users_path
from .tokens import looks_like_jwt

if TYPE_CHECKING:
    from butterflyfx.core.commands import Command
    from butterflyfx.core.context import ServerContext

__all__ = ["SECTION", "JwtAuth", "JwtSettings"]


@hookimpl
def butterflyfx_config_model() -> tuple[str, type[JwtSettings]]:
    return SECTION, JwtSettings


@hookimpl
async def butterflyfx_startup(ctx: ServerContext) -> None:
    register(ctx, await JwtAuth.start(ctx))


@hookimpl
async def butterflyfx_shutdown(ctx: ServerContext) -> None:
    auth = unregister(ctx)
    if auth is not None:
        await auth.close()


@hookimpl
def butterflyfx_routes(app: Any, ctx: ServerContext) -> None:
    app.register_blueprint(login_blueprint(ctx))


@hookimpl
def butterflyfx_authenticate(caller: Caller, ctx: ServerContext) -> Awaitable[Principal] | None:
    token = caller.token
    if token is None or not looks_like_jwt(token):
        return None  # not a token of ours: an API key, say
    auth = running(ctx)
    if auth is None:
        raise RuntimeError("auth.jwt has not started")
    return auth.principal(token)


@hookimpl
async def butterflyfx_health(ctx: ServerContext) -> PluginHealth:
    auth = running(ctx)
    settings = settings_of(ctx)
    detail: dict[str, Any] = (
        {"store": "postgresql"}
        if settings.database is not None
        else {"store": "sqlite", "path": str(users_path(ctx))}
    )
    if auth is None:
        return PluginHealth("down", {**detail, "error": "not started"})
    try:
        detail["users"] = await auth.users.count()
    except Exception as error:
        return PluginHealth("down", {**detail, "error": f"{type(error).__name__}: {error}"})
    detail["attempts_storage"] = where(settings.attempts_storage)
    if not await auth.attempts.healthy():
        return PluginHealth("degraded", {**detail, "error": "attempts storage does not answer"})
    return PluginHealth("ok", detail)


@hookimpl
def butterflyfx_commands() -> Mapping[str, Command]:
    return {"users": UsersCommand()}
