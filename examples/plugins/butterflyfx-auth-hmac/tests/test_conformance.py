"""auth.hmac keeps the promises every ButterflyFX auth plugin makes: the shared conformance
suite, run on real servers with the plugin loaded by its entry point name.

Each story asks :func:`issue_token` for a credential, the way an operator mints one with
``butterflyfx hmac-token``: with the secret of the running server's ``[auth.hmac]`` section.
A stateless token cannot be taken back while the server runs, so ``revoke`` is None and the
suite skips that story; revoking through the config is a story in test_tokens.py.
"""

from __future__ import annotations

import secrets

import pytest
from butterflyfx_auth_hmac import SECTION, issue

from butterflyfx.core.context import ServerContext
from butterflyfx.testing.auth import AuthConformance, AuthFactory, Grant

SECRET = secrets.token_urlsafe(48)
HMAC_SECTION = f'[auth.hmac]\nsecret = "{SECRET}"\n'


async def issue_token(ctx: ServerContext, grant: Grant) -> str:
    settings = ctx.section(SECTION)
    return issue(
        settings.secret.get_secret_value(), grant.tenant, grant.tier, sorted(grant.scopes), 3600
    )


class TestHmacTokens(AuthConformance):
    @pytest.fixture
    def auth_factory(self) -> AuthFactory:
        return AuthFactory(["auth.hmac"], issue_token, revoke=None, sections=HMAC_SECTION)


class TestHmacTokensBesideJwtLogins(AuthConformance):
    """Listed before auth.jwt, whose tokens are dotted too: auth.hmac still judges its own
    tokens (it asks first, and declines whatever lacks its prefix)."""

    @pytest.fixture
    def auth_factory(self) -> AuthFactory:
        return AuthFactory(
            ["auth.hmac", "auth.jwt"], issue_token, revoke=None, sections=HMAC_SECTION
        )
