"""Both built-in auth plugins pass the shared auth conformance suite, issuing credentials the
way their users do: an API key from the key store, a token from a password login."""

from __future__ import annotations

import itertools
import secrets

import pytest

from butterflyfx.core.context import ServerContext
from butterflyfx.plugins.auth_apikey import service_of
from butterflyfx.plugins.auth_jwt.passwords import hash_password
from butterflyfx.plugins.auth_jwt.runtime import running
from butterflyfx.testing.auth import AuthConformance, AuthFactory, Grant


async def issue_key(ctx: ServerContext, grant: Grant) -> str:
    store = service_of(ctx).store
    issued = await store.create(grant.tenant, grant.tier, sorted(grant.scopes))
    return issued.secret


async def revoke_key(ctx: ServerContext, credential: str) -> None:
    store = service_of(ctx).store
    found = await store.find(credential)
    assert found is not None
    await store.revoke(found.id)


class TestApiKeys(AuthConformance):
    @pytest.fixture
    def auth_factory(self) -> AuthFactory:
        return AuthFactory(
            ["auth.apikey"], issue_key, revoke_key, "[auth.apikey]\nbootstrap = false\n"
        )


class Logins:
    """Users made with a password, then logged in for a token; revoking removes the user."""

    def __init__(self) -> None:
        self.names = (f"user{n}" for n in itertools.count())
        self.owners: dict[str, str] = {}

    async def issue(self, ctx: ServerContext, grant: Grant) -> str:
        auth = running(ctx)
        assert auth is not None
        name, password = next(self.names), secrets.token_urlsafe(16)
        await auth.users.add(
            name, grant.tenant, grant.tier, sorted(grant.scopes), await hash_password(password)
        )
        token = await auth.login(name, password, "127.0.0.1")
        self.owners[token] = name
        return token

    async def revoke(self, ctx: ServerContext, credential: str) -> None:
        auth = running(ctx)
        assert auth is not None
        assert await auth.users.remove(self.owners[credential])


class TestPasswordLogins(AuthConformance):
    @pytest.fixture
    def auth_factory(self) -> AuthFactory:
        logins = Logins()
        return AuthFactory(["auth.jwt"], logins.issue, logins.revoke)
