"""The ``[auth.hmac]`` section and the ``butterflyfx hmac-token`` command, as an operator
meets them: the secret comes from the environment, mistakes stop start-up naming the key,
and a minted token is printed once, as the last line, ready for ``tail -n 1``."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from butterflyfx_auth_hmac import HmacSettings, verify

from butterflyfx.core.config import ConfigError, effective_settings, read_config
from butterflyfx.core.context import ServerContext
from butterflyfx.server import cli

SECRET = secrets.token_urlsafe(48)
VARIABLE = "BUTTERFLYFX_AUTH_HMAC__SECRET"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "butterflyfx.toml"
    path.write_text(
        'plugins = ["storage.memory", "http", "auth.hmac"]\n\n'
        "[auth.hmac]\nmax_lifetime_seconds = 7200\n",
        encoding="utf-8",
    )
    return path


def test_the_secret_comes_from_the_environment_and_config_check_masks_it(config):
    ctx = ServerContext.build(read_config(config, {VARIABLE: SECRET}))

    assert ctx.section("auth.hmac").secret.get_secret_value() == SECRET
    assert effective_settings(ctx.config)["auth.hmac"] == {
        "secret": "********",
        "max_lifetime_seconds": 7200,
        "revoked": [],
    }


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "key 'secret': Field required"),
        ({VARIABLE: "too-short"}, "at least 32 characters"),
    ],
    ids=["missing", "short"],
)
def test_a_missing_or_short_secret_stops_start_up_naming_the_section_and_key(config, env, message):
    with pytest.raises(ConfigError) as caught:
        ServerContext.build(read_config(config, env))

    assert f"{config}, section [auth.hmac], key 'secret'" in str(caught.value)
    assert message in str(caught.value)
    assert "too-short" not in str(caught.value)


def mint(config: Path, *args: str) -> int:
    return cli.main(["hmac-token", "--config", str(config), *args])


def test_hmac_token_prints_its_id_then_a_working_token_as_the_last_line(
    config, monkeypatch, capsys
):
    monkeypatch.setenv(VARIABLE, SECRET)

    code = mint(config, "--tenant", "acme", "--tier", "free", "--scopes", "read,invoke")

    out = capsys.readouterr().out
    assert code == 0
    *said, token = out.splitlines()
    principal = verify(token, HmacSettings(secret=SECRET, max_lifetime_seconds=7200))
    assert principal is not None
    assert (principal.tenant, principal.tier, principal.scopes) == (
        "acme", "free", frozenset({"read", "invoke"}),
    )  # fmt: skip
    assert said == [
        f"token {principal.subject} for tenant acme (tier free, scopes read,invoke), "
        f"valid until {said[0].rsplit(' ', 1)[1]}"
    ]
    assert SECRET not in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--lifetime", "7201"], "longer than [auth.hmac] max_lifetime_seconds (7200)"),
        (["--lifetime", "0"], "lifetime_seconds must be at least 1"),
        (["--scopes", "read,root"], "unknown scopes root"),
        (["--tenant", "a b"], "'a b' is not a tenant"),
    ],
)
def test_hmac_token_refuses_what_the_server_would_refuse(
    config, monkeypatch, capsys, args, message
):
    monkeypatch.setenv(VARIABLE, SECRET)

    code = mint(config, "--tenant", "acme", "--tier", "pro", *args)

    printed = capsys.readouterr()
    assert code == 2
    assert printed.out == ""
    assert message in printed.err
