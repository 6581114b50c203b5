"""The plugin while a server runs: its users, its token authority and its failed-login
counters, and the two things it does with them: log a user in, and vouch for a token."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

from butterflyfx.core.auth import Principal, unauthenticated
from butterflyfx.core.plugins import PluginError
from butterflyfx.core.problems import ProblemError

from .attempts import FailedLogins, attempts_storage, where
from .passwords import hash_password, needs_rehash, verify_password
from .passwords import prepare as prepare_passwords
from .postgres_users import PostgresUserStore
from .secret import shared_signing_secret, signing_secret
from .settings import SECTION, secret_path, settings_of
from .stores import UserStorage, user_store
from .tokens import TokenAuthority

if TYPE_CHECKING:
    from butterflyfx.core.context import ServerContext

log = structlog.get_logger("butterflyfx.auth.jwt")
_running: dict[int, tuple[ServerContext, JwtAuth]] = {}  # by id(ctx): contexts are unhashable


@dataclass
class JwtAuth:
    users: UserStorage
    authority: TokenAuthority
    attempts: FailedLogins
    worker: str

    @classmethod
    async def start(cls, ctx: ServerContext) -> JwtAuth:
        settings = settings_of(ctx)
        storage_url = settings.attempts_storage
        if ctx.settings.workers > 1 and storage_url.startswith("memory://"):
            raise PluginError(
                f"plugin {SECTION!r}: with {ctx.settings.workers} workers, memory:// would "
                "count failed logins in each worker apart, multiplying the login_attempts "
                "limit; configure Redis: [auth.jwt] attempts_storage = "
                '"redis://127.0.0.1:6379/0" (or BUTTERFLYFX_AUTH_JWT__ATTEMPTS_STORAGE)'
            )
        if settings.database is not None and storage_url.startswith("memory://"):
            log.warning(
                "jwt_attempts_counted_per_instance",
                detail="users are shared through PostgreSQL, but failed logins are counted "
                "in this process only: each instance behind a balancer allows the full "
                "login_attempts; set [auth.jwt] attempts_storage to a redis:// URL",
            )  # fmt: skip
        attempts = FailedLogins(attempts_storage(storage_url), settings.login_attempts, storage_url)
        if not storage_url.startswith("memory://") and not await attempts.healthy():
            raise PluginError(
                f"plugin {SECTION!r}: Redis at {where(storage_url)} (attempts_storage) does "
                "not answer; start it or change the URL"
            )
        await prepare_passwords()
        users = user_store(ctx)
        await users.open()
        try:
            if isinstance(users, PostgresUserStore):
                secret = await shared_signing_secret(settings, users)
            else:
                secret = signing_secret(settings, secret_path(ctx))
        except BaseException:
            await users.close()
            raise
        authority = TokenAuthority(
            secret, settings.issuer, settings.audience, settings.token_seconds
        )
        return cls(users, authority, attempts, ctx.worker_id)

    async def close(self) -> None:
        await self.users.close()
        client = getattr(getattr(self.attempts.storage, "bridge", None), "storage", None)
        close = getattr(client, "aclose", None)  # Redis: let its connections go cleanly
        if close is not None:
            await close()

    async def login(self, username: str, password: str, address: str) -> str:
        """A token for the user whose password this is; 401 or 429 otherwise."""
        try:
            await self.attempts.check(username, address)
        except ProblemError:
            log.info("login_throttled", user=username[:64], client=address, worker=self.worker)
            raise
        user = await self.users.get(username)
        matches = await verify_password(user.password_hash if user else None, password)
        if user is None or not matches or user.disabled:
            reason = "unknown user" if user is None else "disabled" if matches else "wrong password"
            log.info(
                "login_failed", user=username[:64], client=address, reason=reason,
                worker=self.worker,
            )  # fmt: skip
            await self.attempts.failed(username, address)
            raise unauthenticated("the user name or password is wrong", invalid=False)
        if needs_rehash(user.password_hash):
            await self.users.replace_hash(user.name, user.password_hash,
                                          await hash_password(password))  # fmt: skip
        log.info("login", user=user.name, tenant=user.tenant, client=address, worker=self.worker)
        return self.authority.issue(user)

    async def principal(self, token: str) -> Principal:
        """The principal a token stands for, if its user may still act; else 401."""
        claims = self.authority.verify(token)
        user = await self.users.get(claims.subject)
        if user is None:
            raise unauthenticated("the token's user no longer exists", reason="user")
        if user.disabled:
            raise unauthenticated("the token's user is disabled", reason="user")
        if int(user.created_at.timestamp()) > claims.issued_at or user.tenant != claims.tenant:
            # A user removed and added again under the same name is someone new.
            raise unauthenticated(
                "the token was issued to an earlier user of this name", reason="user"
            )
        return Principal(claims.tenant, claims.subject, claims.tier, claims.scopes, SECTION)


def register(ctx: ServerContext, auth: JwtAuth) -> None:
    _running[id(ctx)] = (ctx, auth)


def unregister(ctx: ServerContext) -> JwtAuth | None:
    found = _running.get(id(ctx))
    if found is None or found[0] is not ctx:
        return None
    del _running[id(ctx)]
    return found[1]


def running(ctx: ServerContext) -> JwtAuth | None:
    found = _running.get(id(ctx))
    return found[1] if found is not None and found[0] is ctx else None
