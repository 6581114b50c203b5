"""auth.hmac tokens as their users meet them: minted, checked, refused, revoked by config.

The token format is rebuilt here from its description (``bfxh.`` + base64url JSON + ``.`` +
base64url HMAC-SHA256), independently of the plugin's code, so a change to the format
fails a test rather than silently breaking tokens already handed out.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import time
from pathlib import Path
from typing import Any

import pytest
from butterflyfx_auth_hmac import HmacSettings, issue, verify
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from butterflyfx.core.auth import Principal
from butterflyfx.core.config import read_config
from butterflyfx.core.context import ServerContext
from butterflyfx.core.problems import ProblemError
from butterflyfx.server.asgi import application_for

SECRET = secrets.token_urlsafe(48)
SERVER = HmacSettings(secret=SECRET)
DAY = 86400


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def forge(secret: str, payload: bytes) -> str:
    """A token for any payload bytes, signed as the format says: what a minter would do."""
    body = b64(payload)
    signature = hmac.new(secret.encode(), f"bfxh.{body}".encode(), hashlib.sha256).digest()
    return f"bfxh.{body}.{b64(signature)}"


def claims(**changed: Any) -> bytes:
    body = {"tid": "t0k3n-id-0001", "tenant": "acme", "tier": "pro", "scopes": ["read"],
            "exp": int(time.time()) + 600}  # fmt: skip
    return json.dumps({**body, **changed}).encode()


def refusal(token: str, server: HmacSettings = SERVER, now: float | None = None) -> str:
    """The detail of the 401 the token gets; fails the test on any other outcome."""
    with pytest.raises(ProblemError) as refused:
        verify(token, server, now)
    problem = refused.value.problem
    assert problem.status == 401
    assert problem.headers["WWW-Authenticate"].startswith("Bearer")
    return str(problem.detail)


# -- minting and checking -------------------------------------------------------------


def test_an_issued_token_is_the_documented_format_and_stands_for_its_grant():
    token = issue(SECRET, "acme", "pro", ["write", "read"], 3600)

    prefix, body, signature = token.split(".")
    assert prefix == "bfxh"
    assert forge(SECRET, base64.urlsafe_b64decode(body + "==")) == token
    said = json.loads(base64.urlsafe_b64decode(body + "=="))
    assert set(said) == {"tid", "tenant", "tier", "scopes", "exp"}
    assert said["exp"] - time.time() == pytest.approx(3600, abs=60)
    assert verify(token, SERVER) == Principal(
        "acme", said["tid"], "pro", frozenset({"read", "write"}), "auth.hmac"
    )


def test_two_tokens_for_the_same_grant_have_different_ids():
    first, second = (issue(SECRET, "acme", "pro", ["read"], 60) for _ in range(2))

    assert verify(first, SERVER).subject != verify(second, SERVER).subject


def test_a_token_signed_with_another_secret_is_refused():
    token = issue(secrets.token_urlsafe(48), "acme", "pro", ["read"], 60)

    assert "signature does not match" in refusal(token)


def test_a_token_whose_payload_was_edited_to_a_better_tier_is_refused():
    token = issue(SECRET, "acme", "free", ["read"], 60)
    _, body, signature = token.split(".")
    said = json.loads(base64.urlsafe_b64decode(body + "=="))
    upgraded = b64(json.dumps({**said, "tier": "enterprise", "scopes": ["admin"]}).encode())

    assert "signature does not match" in refusal(f"bfxh.{upgraded}.{signature}")


def test_an_expired_token_is_refused_saying_when_it_expired():
    token = issue(SECRET, "acme", "pro", ["read"], 60)

    assert verify(token, SERVER, now=time.time() + 30) is not None
    assert "expired at" in refusal(token, now=time.time() + 61)


def test_a_token_minted_for_longer_than_the_server_allows_is_refused():
    week = issue(SECRET, "acme", "pro", ["read"], 7 * DAY)

    assert "max_lifetime_seconds = 86400" in refusal(week)
    assert verify(week, HmacSettings(secret=SECRET, max_lifetime_seconds=8 * DAY)) is not None


def test_tokens_of_other_plugins_are_left_to_them():
    for foreign in ("sk-butterflyfx-" + "A" * 43, "eyJhbGciOiJIUzI1NiJ9.e30.c2ln", "", "bfxh"):
        assert verify(foreign, SERVER) is None


def test_issue_refuses_a_bad_tenant_tier_scope_lifetime_or_secret():
    good: dict[str, Any] = {"secret": SECRET, "tenant": "acme", "tier": "pro",
                            "scopes": ["read"], "lifetime_seconds": 60}  # fmt: skip
    for bad, message in [
        ({"tenant": "acme/../globex"}, "is not a tenant"),
        ({"tier": "gold"}, "tier must be one of free, pro, enterprise"),
        ({"scopes": ["read", "root"]}, "unknown scopes root"),
        ({"scopes": []}, "give at least one scope"),
        ({"lifetime_seconds": 0}, "at least 1"),
        ({"secret": "short"}, "at least 32 characters"),
    ]:
        with pytest.raises(ValueError, match=message):
            issue(**{**good, **bad})


# -- whatever arrives, the answer is a token's principal, None, or a 401 ---------------


SIGNED_BUT_WRONG = {  # what is wrong -> (payload bytes, the refusal's reason)
    "not JSON": (b"tier=enterprise", "not base64url-encoded JSON"),
    "not UTF-8": (b"\xff\xfe\x00{", "not base64url-encoded JSON"),
    "a JSON list": (b'["acme", "pro"]', "expected exactly the fields"),
    "a field missing": (b'{"tid": "t0k3n-id-0001", "tenant": "acme"}', "expected exactly"),
    "an extra field": (claims(admin=True), "expected exactly the fields"),
    "an unknown tier": (claims(tier="gold"), "tier must be one of"),
    "an unknown scope": (claims(scopes=["read", "root"]), "scopes must be"),
    "no scopes": (claims(scopes=[]), "scopes must be"),
    "scopes as a string": (claims(scopes="read"), "scopes must be"),
    "an empty tenant": (claims(tenant=""), "tenant is not"),
    "a tenant with a slash": (claims(tenant="acme/globex"), "tenant is not"),
    "a short tid": (claims(tid="x"), "tid is not"),
    "exp as text": (claims(exp="tomorrow"), "exp is not"),
    "exp as a float": (claims(exp=time.time() + 600.5), "exp is not"),
    "exp as NaN": (claims(exp=float("nan")), "exp is not"),
    "exp as true": (claims(exp=True), "exp is not"),
    "exp far in the past": (claims(exp=-(10**30)), "expired at epoch second -1000"),
    "exp beyond any calendar": (claims(exp=10**30), "longer than this server allows"),
    "too long to be ours": (claims(tenant="a" * 2000), "not a well-formed"),
    "deeply nested": (b"[" * 100_000 + b"]" * 100_000, "not a well-formed"),
}


@pytest.mark.parametrize("what", sorted(SIGNED_BUT_WRONG))
def test_a_well_signed_token_with_broken_claims_is_refused_saying_why(what):
    payload, reason = SIGNED_BUT_WRONG[what]

    assert reason in refusal(forge(SECRET, payload))


def test_a_token_from_the_format_description_is_accepted():
    assert verify(forge(SECRET, claims()), SERVER) == Principal(
        "acme", "t0k3n-id-0001", "pro", frozenset({"read"}), "auth.hmac"
    )


def judged(token: str) -> Principal | None:
    """verify()'s answer, a 401 counting as None; any other exception fails the test."""
    try:
        return verify(token, SERVER)
    except ProblemError as refused:
        assert refused.problem.status == 401
        return None


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@FUZZ
@given(st.text() | st.text().map(lambda text: "bfxh." + text))
def test_any_text_is_ours_or_not_but_never_an_error(text):
    judged(text)


@FUZZ
@given(st.binary(max_size=300))
def test_any_well_signed_bytes_are_judged_never_an_error(payload):
    judged(forge(SECRET, payload))


@FUZZ
@given(
    st.fixed_dictionaries({name: JSON for name in ("tid", "tenant", "tier", "scopes", "exp")})
    | JSON
)
def test_any_well_signed_json_is_judged_never_an_error(body):
    judged(forge(SECRET, json.dumps(body).encode()))


# -- an operator revokes a token through the config -----------------------------------


def statuses_on_a_new_server(config: Path, env: dict[str, str], tokens: list[str]) -> list[int]:
    """What ``GET /api/v1/substrates`` answers each token on a server started from ``config``."""
    ctx = ServerContext.build(read_config(config, env, {"data_dir": config.parent}))
    app = application_for(ctx)

    async def ask() -> list[int]:
        async with app.test_app() as running:
            client = running.test_client()
            answers = []
            for token in tokens:
                headers = {"Authorization": f"Bearer {token}"}
                answers.append(
                    (await client.get("/api/v1/substrates", headers=headers)).status_code
                )
            return answers

    return asyncio.run(ask())


def test_a_token_revoked_in_the_config_is_refused_by_the_restarted_server_and_no_other(tmp_path):
    config = tmp_path / "butterflyfx.toml"
    config.write_text('plugins = ["storage.memory", "http", "auth.hmac"]\n\n[auth.hmac]\n')
    env = {"BUTTERFLYFX_AUTH_HMAC__SECRET": SECRET}
    leaked, kept = (issue(SECRET, "acme", "pro", ["read"], 600) for _ in range(2))
    leaked_id = verify(leaked, SERVER).subject

    assert statuses_on_a_new_server(config, env, [leaked, kept]) == [200, 200]

    by_variable = {**env, "BUTTERFLYFX_AUTH_HMAC__REVOKED": json.dumps([leaked_id])}
    assert statuses_on_a_new_server(config, by_variable, [leaked, kept]) == [401, 200]

    config.write_text(config.read_text() + f'revoked = ["{leaked_id}"]\n')
    assert statuses_on_a_new_server(config, env, [leaked, kept]) == [401, 200]
    assert f"token {leaked_id} has been revoked" in refusal(
        leaked, HmacSettings(secret=SECRET, revoked=[leaked_id])
    )
