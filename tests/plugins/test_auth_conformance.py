"""Both built-in auth plugins pass the shared auth conformance suite, issuing credentials the
way their users do: an API key from the key store, a token from a password login; each with
its credentials in a SQLite file and in PostgreSQL (a schema of the test's own)."""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass

import pytest
from postgres_service import POSTGRES_DSN, postgres_schema

from butterflyfx.core.context import ServerContext
from butterflyfx.plugins.auth_apikey import service_of
from butterflyfx.plugins.auth_jwt.passwords import hash_password
from butterflyfx.plugins.auth_jwt.runtime import running
from butterflyfx.testing.auth import AuthConformance, AuthFactory, Grant


@dataclass(frozen=True)
class Backend:
    """Where a plugin keeps its credentials: ``kind`` as its store reports it, and the
    TOML lines of its section that choose it."""

    kind: str
    lines: str = ""


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request):
    if request.param == "sqlite":
        yield Backend("sqlite")
        return
    with postgres_schema() as schema:
        yield Backend("postgresql", f'database = "{POSTGRES_DSN}"\nschema = "{schema}"\n')


class Keys:
    """Keys made in the running server's key store, as ``keys create`` would."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    async def issue(self, ctx: ServerContext, grant: Grant) -> str:
        store = service_of(ctx).store
        assert store.kind == self.backend.kind  # the section chose this store
        issued = await store.create(grant.tenant, grant.tier, sorted(grant.scopes))
        return issued.secret

    async def revoke(self, ctx: ServerContext, credential: str) -> None:
        store = service_of(ctx).store
        found = await store.find(credential)
        assert found is not None
        await store.revoke(found.id)


class TestApiKeys(AuthConformance):
    @pytest.fixture
    def auth_factory(self, backend: Backend) -> AuthFactory:
        keys = Keys(backend)
        section = f"[auth.apikey]\nbootstrap = false\n{backend.lines}"
        return AuthFactory(["auth.apikey"], keys.issue, keys.revoke, section)


class Logins:
    """Users made with a password, then logged in for a token; revoking removes the user."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.names = (f"user{n}" for n in itertools.count())
        self.owners: dict[str, str] = {}

    async def issue(self, ctx: ServerContext, grant: Grant) -> str:
        auth = running(ctx)
        assert auth is not None and auth.users.kind == self.backend.kind
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
    def auth_factory(self, backend: Backend) -> AuthFactory:
        logins = Logins(backend)
        return AuthFactory(
            ["auth.jwt"], logins.issue, logins.revoke, f"[auth.jwt]\n{backend.lines}"
        )
