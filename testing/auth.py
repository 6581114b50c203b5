"""The auth conformance suite: does a plugin's ``butterflyfx_authenticate`` keep its promises?

An auth plugin passes it by subclassing :class:`AuthConformance` and providing one fixture,
``auth_factory``, that returns an :class:`AuthFactory`: the plugins to load and how to give
a credential for a :class:`Grant` on a running server (and, if the plugin can, how to take
it back)::

    # tests/test_conformance.py of the plugin "butterflyfx-auth-acme"
    import pytest

    from butterflyfx.testing.auth import AuthConformance, AuthFactory
    from butterflyfx_auth_acme import issue_token, revoke_token


    class TestAcmeAuth(AuthConformance):
        @pytest.fixture
        def auth_factory(self):
            return AuthFactory(["auth.acme"], issue=issue_token, revoke=revoke_token)

Each story starts a real server (the plugins given, ``storage.memory`` and ``http``, a data
folder of its own) and sends requests through the real HTTP app. The stories: a credential
acts for exactly its grant (tenant, tier, scopes) and only inside its tenant; scopes decide
each action; missing, malformed, altered and foreign credentials are 401 with a Bearer
challenge, never another status; a revoked credential is refused on the very next request;
and no credential ever appears in the server's log.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from butterflyfx.core.auth import Principal
from butterflyfx.core.config import read_config
from butterflyfx.core.context import ServerContext
from butterflyfx.core.hookspecs import hookimpl

__all__ = ["AuthConformance", "AuthFactory", "Grant"]

SUBSTRATES = "/api/v1/substrates"
DOUBLE = {"expression_type": "lambda", "expression_code": "lambda **kw: kw.get('x', 0) * 2"}
EVERY_SCOPE = frozenset({"read", "write", "invoke", "admin"})


@dataclass(frozen=True)
class Grant:
    """What a credential is for."""

    tenant: str
    tier: str = "pro"
    scopes: frozenset[str] = frozenset({"read", "write", "invoke"})


@dataclass(frozen=True)
class AuthFactory:
    """``plugins``: what to load beside ``storage.memory`` and ``http``. ``issue(ctx, grant)``
    returns a bearer credential on the running server ``ctx``; ``revoke(ctx, credential)``
    takes it back (None: the plugin cannot). ``sections``: TOML added to the config."""

    plugins: Sequence[str]
    issue: Callable[[ServerContext, Grant], Awaitable[str]]
    revoke: Callable[[ServerContext, str], Awaitable[None]] | None = None
    sections: str = ""
    extra: Mapping[str, object] = field(default_factory=dict)


class Witness:
    """Remembers the principals the guard asks about; has no opinion itself."""

    def __init__(self) -> None:
        self.principals: list[Principal] = []

    @hookimpl
    def butterflyfx_authorize(self, principal: Principal) -> None:
        self.principals.append(principal)


Story = Callable[[Any, ServerContext, Witness], Awaitable[None]]


def on_server(factory: AuthFactory, story: Story) -> list[Any]:
    """Run ``story(client, ctx, witness)`` on a new server; the log events it wrote."""
    from quart import Quart  # the http plugin's app; imported here so the suite loads lazily

    from butterflyfx.plugins.http.app import create_app

    witness = Witness()
    with tempfile.TemporaryDirectory(prefix="butterflyfx-auth-") as folder:
        path = Path(folder) / "butterflyfx.toml"
        names = ["storage.memory", "http", *factory.plugins, "witness", *factory.extra]
        path.write_text(
            f"plugins = {names!r}\n[server]\ndata_dir = {folder!r}\n{factory.sections}",
            encoding="utf-8",
        )
        ctx = ServerContext.build(read_config(path), {"witness": witness, **factory.extra})
        app: Quart = create_app(ctx)

        async def main() -> None:
            async with app.test_app() as running:
                await story(running.test_client(), ctx, witness)

        with capture_logs() as logs:
            asyncio.run(main())
    return logs


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


async def refused(response: Any, status: int = 401) -> dict[str, Any]:
    body = await response.get_json()
    assert response.status_code == status, (response.status_code, body)
    assert response.headers["Content-Type"] == "application/problem+json"
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    return dict(body)


def altered(credential: str) -> list[str]:
    """Near misses of a real credential: each must be refused."""
    last = credential[-1]
    flipped = credential[:-1] + ("A" if last != "A" else "B")
    middle = len(credential) // 2
    return [
        flipped,
        credential[:-1],
        credential + "x",
        credential[:middle]
        + ("x" if credential[middle] != "x" else "y")
        + credential[middle + 1 :],
        credential.swapcase(),
    ]


MALFORMED = [
    "x",
    "sk-butterflyfx-",
    "sk-butterflyfx-" + "A" * 43,
    "a.b.c",
    "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
    "e30.e30.e30",
    "ключ-доступа",
    "%00%0a",
    "A" * 8_000,
    "..",
]


class AuthConformance:
    """Stories every authentication plugin must pass; subclass it as ``Test<YourPlugin>``."""

    def test_a_credential_acts_for_exactly_its_grant(self, auth_factory: AuthFactory) -> None:
        grant = Grant("acme", "pro", frozenset({"read"}))

        async def story(client: Any, ctx: ServerContext, witness: Witness) -> None:
            credential = await auth_factory.issue(ctx, grant)
            response = await client.get(SUBSTRATES, headers=bearer(credential))
            assert response.status_code == 200, await response.get_json()
            [principal] = witness.principals
            assert (principal.tenant, principal.tier, principal.scopes) == (
                grant.tenant, grant.tier, grant.scopes,
            )  # fmt: skip
            assert principal.subject and principal.authenticated_by

        on_server(auth_factory, story)

    def test_scopes_decide_each_action(self, auth_factory: AuthFactory) -> None:
        async def story(client: Any, ctx: ServerContext, witness: Witness) -> None:
            reader = bearer(
                await auth_factory.issue(ctx, Grant("acme", scopes=frozenset({"read"})))
            )
            writer = bearer(
                await auth_factory.issue(ctx, Grant("acme", scopes=frozenset({"write"})))
            )
            made = await client.post(SUBSTRATES, json=DOUBLE, headers=writer)
            assert made.status_code == 201
            substrate_id = (await made.get_json())["substrate_id"]
            assert (
                await client.get(f"{SUBSTRATES}/{substrate_id}", headers=reader)
            ).status_code == 200
            await refused(await client.post(SUBSTRATES, json=DOUBLE, headers=reader), 403)
            invoke = f"{SUBSTRATES}/{substrate_id}/invoke"
            await refused(await client.post(invoke, json={}, headers=writer), 403)

        on_server(auth_factory, story)

    def test_a_credential_sees_only_its_own_tenant(self, auth_factory: AuthFactory) -> None:
        async def story(client: Any, ctx: ServerContext, witness: Witness) -> None:
            acme = bearer(await auth_factory.issue(ctx, Grant("acme")))
            globex = bearer(await auth_factory.issue(ctx, Grant("globex")))
            made = await client.post(SUBSTRATES, json=DOUBLE, headers=acme)
            substrate_id = (await made.get_json())["substrate_id"]
            path = f"{SUBSTRATES}/{substrate_id}"
            await refused(await client.get(path, headers=globex), 404)
            await refused(await client.delete(path, headers=globex), 404)
            await refused(await client.post(f"{path}/invoke", json={}, headers=globex), 404)
            listed = await (await client.get(SUBSTRATES, headers=globex)).get_json()
            assert listed["items"] == []
            assert (await client.get(path, headers=acme)).status_code == 200

        on_server(auth_factory, story)

    def test_missing_malformed_altered_and_foreign_credentials_are_401(
        self, auth_factory: AuthFactory
    ) -> None:
        async def story(client: Any, ctx: ServerContext, witness: Witness) -> None:
            credential = await auth_factory.issue(ctx, Grant("acme", scopes=EVERY_SCOPE))
            await refused(await client.get(SUBSTRATES))
            for scheme in ("Basic dXNlcjpwYXNz", f"Token {credential}", credential):
                await refused(await client.get(SUBSTRATES, headers={"Authorization": scheme}))
            for wrong in [*MALFORMED, *altered(credential)]:
                await refused(await client.get(SUBSTRATES, headers=bearer(wrong)))
            assert witness.principals == []  # nothing reached authorization
            assert (await client.get(SUBSTRATES, headers=bearer(credential))).status_code == 200

        on_server(auth_factory, story)

    def test_a_revoked_credential_is_refused_on_the_next_request(
        self, auth_factory: AuthFactory
    ) -> None:
        if auth_factory.revoke is None:
            pytest.skip("the plugin cannot take a credential back (revoke=None)")
        revoke = auth_factory.revoke

        async def story(client: Any, ctx: ServerContext, witness: Witness) -> None:
            credential = await auth_factory.issue(ctx, Grant("acme"))
            other = await auth_factory.issue(ctx, Grant("acme"))
            assert (await client.get(SUBSTRATES, headers=bearer(credential))).status_code == 200
            await revoke(ctx, credential)
            await refused(await client.get(SUBSTRATES, headers=bearer(credential)))
            assert (await client.get(SUBSTRATES, headers=bearer(other))).status_code == 200

        on_server(auth_factory, story)

    def test_no_credential_ever_reaches_the_log(self, auth_factory: AuthFactory) -> None:
        issued: list[str] = []

        async def story(client: Any, ctx: ServerContext, witness: Witness) -> None:
            credential = await auth_factory.issue(ctx, Grant("acme"))
            issued.append(credential)
            await client.get(SUBSTRATES, headers=bearer(credential))
            for wrong in altered(credential):
                await client.get(SUBSTRATES, headers=bearer(wrong))
            await client.post(SUBSTRATES, json=DOUBLE, headers=bearer(credential))

        logs = on_server(auth_factory, story)
        text = repr(logs)
        assert issued and all(credential not in text for credential in issued)
        assert all(wrong not in text for wrong in altered(issued[0]))
