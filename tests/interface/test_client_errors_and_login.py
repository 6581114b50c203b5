"""Error answers become typed exceptions carrying the problem's members; a JWT login is
kept, and a refused token is replaced by logging in again once."""

from __future__ import annotations

import asyncio

import pytest

from butterflyfx.interface.client import (
    ButterflyFX,
    ButterflyFXError,
    Forbidden,
    NotFound,
    Unauthorized,
    Unavailable,
    ValidationFailed,
)

MISSING = "0x00000000DEADBEEF"


def test_a_missing_substrate_is_not_found_with_the_problem_and_request_id(client):
    with pytest.raises(NotFound) as caught:
        client.get_substrate(MISSING)

    error = caught.value
    assert isinstance(error, ButterflyFXError)
    assert error.status == 404 and error.type.endswith("/not-found")
    assert MISSING.lower() in error.detail.lower() and error.title
    assert error.request_id and error.problem["status"] == 404


def test_bad_input_is_validation_failed_naming_the_field(client):
    with pytest.raises(ValidationFailed) as unknown_type:
        client.create_relationship(MISSING, MISSING, "no-such-type")
    with pytest.raises(ValidationFailed) as bad_limit:
        client.substrate_page(limit=0)

    assert unknown_type.value.status == 422 and unknown_type.value.field == "relationship_type"
    assert bad_limit.value.field == "limit"


def test_no_key_or_a_wrong_key_is_unauthorized_and_a_narrow_one_forbidden(server, client):
    reader = client.create_key(tier="free", scopes=["read"], name="reader")
    with ButterflyFX(server.url, retries=0) as anonymous:
        with pytest.raises(Unauthorized) as nobody:
            next(anonymous.list_substrates())
    with ButterflyFX(server.url, api_key="sk-butterflyfx-" + "W" * 43) as wrong:
        with pytest.raises(Unauthorized):
            wrong.stats()
    with ButterflyFX(server.url, api_key=reader.key) as narrow:
        assert narrow.stats().substrates >= 0
        with pytest.raises(Forbidden) as refused:
            narrow.create_substrate("lambda", "lambda: 3")

    assert nobody.value.status == 401
    assert refused.value.status == 403 and "write" in refused.value.detail
    assert client.get_key(reader.id).scopes == ["read"]
    client.revoke_key(reader.id)
    assert client.get_key(reader.id).revoked_at is not None


def test_login_keeps_the_token_and_logs_in_again_once_when_it_is_refused(server, alice):
    with ButterflyFX(server.url, retries=0) as client:
        answer = client.login(*alice)
        first = client.token
        made = client.create_substrate("lambda", "lambda: 'by alice'")
        client.token = first[:-4] + "AAAA"  # as a token past its expiry is: refused with 401
        read = client.get_substrate(made.substrate_id)
        renewed = client.token

    assert answer.token_type == "bearer" and first == answer.access_token
    assert read == made
    assert renewed != first[:-4] + "AAAA"
    with ButterflyFX(server.url, retries=0) as wrong, pytest.raises(Unauthorized):
        wrong.login("alice", "not the password")


def test_a_server_that_does_not_answer_is_unavailable_with_status_zero(server):
    with ButterflyFX(f"http://127.0.0.1:{free_port()}", retries=0) as nowhere:
        with pytest.raises(Unavailable) as caught:
            nowhere.health()
    assert caught.value.status == 0


def free_port() -> int:
    from butterflyfx.testing.process import free_port as pick

    return pick()


def test_from_env_finds_the_server_in_the_environment_or_a_profile(server, tmp_path, monkeypatch):
    from butterflyfx.interface.client import AsyncButterflyFX, ProfileError

    profiles = tmp_path / "profile.toml"
    profiles.write_text(
        f'[default]\nurl = "http://127.0.0.1:9"\n\n'
        f'[local]\nurl = "{server.url}"\nkey = "{server.admin_key}"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("BUTTERFLYFX_PROFILE_FILE", str(profiles))
    monkeypatch.delenv("BUTTERFLYFX_URL", raising=False)
    monkeypatch.delenv("BUTTERFLYFX_API_KEY", raising=False)
    monkeypatch.delenv("BUTTERFLYFX_PROFILE", raising=False)

    with ButterflyFX.from_env("local", retries=0) as client:
        assert client.stats().substrates >= 0  # the key of the profile is accepted
    with ButterflyFX.from_env() as nowhere:  # the default profile
        assert nowhere.base_url == "http://127.0.0.1:9" and nowhere.api_key is None

    monkeypatch.setenv("BUTTERFLYFX_URL", server.url)  # the environment wins over a profile
    monkeypatch.setenv("BUTTERFLYFX_API_KEY", server.admin_key)
    chosen = AsyncButterflyFX.from_env()
    assert chosen.base_url == server.url
    asyncio.run(chosen.close())
    with ButterflyFX.from_env() as client:
        assert client.health().status == "ok" and client.api_key == server.admin_key

    with pytest.raises(ProfileError, match="no profile 'staging'"):
        ButterflyFX.from_env("staging")
