"""``butterflyfx keys`` and a real server with ``auth.apikey``: keys made and revoked from
the shell while the server runs (in its SQLite file, or in PostgreSQL), and the admin key
printed once on the first start."""

from __future__ import annotations

import json
import re
import signal

import pytest
from server_process import START_DEADLINE, wait_for

from butterflyfx.testing.services import POSTGRES_DSN, postgres_schema

PLUGINS = "storage.sqlite,http,auth.apikey"
KEY = re.compile(r"sk-butterflyfx-[A-Za-z0-9_-]{43}")
SUBSTRATE = {"expression_type": "lambda", "expression_code": "lambda **kw: kw.get('x', 0) + 1"}


@pytest.fixture
def cli(butterflyfx):
    """The ``butterflyfx`` command with the API-key plugin loaded."""
    butterflyfx.env["BUTTERFLYFX_PLUGINS"] = PLUGINS
    return butterflyfx


def test_a_key_made_on_the_command_line_works_until_it_is_revoked_there(cli, tmp_path):
    data = str(tmp_path / "data")
    created = cli.run("keys", "create", "--data-dir", data, "--tenant", "acme", "--tier", "pro")
    assert created.returncode == 0, created.stderr
    *before, last = created.stdout.splitlines()
    assert KEY.fullmatch(last) and "acme" in before[-1] and "pro" in before[-1]
    key_id = re.search(r"key_[0-9a-f]{12}", before[-1]).group()

    listed = cli.run("keys", "list", "--data-dir", data)
    assert listed.returncode == 0 and key_id in listed.stdout and "acme" in listed.stdout
    assert "sk-butterflyfx-" not in listed.stdout + listed.stderr

    server = cli.start("--data-dir", data).wait_ready()
    with server.client() as client:
        auth = {"Authorization": f"Bearer {last}"}
        assert client.get("/api/v1/substrates").status_code == 401
        made = client.post("/api/v1/substrates", json=SUBSTRATE, headers=auth)
        assert made.status_code == 201
        assert len(client.get("/api/v1/substrates", headers=auth).json()["items"]) == 1

        revoked = cli.run("keys", "revoke", key_id, "--data-dir", data)
        assert revoked.returncode == 0, revoked.stderr
        refused = client.get("/api/v1/substrates", headers=auth)
        assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")

    unknown = cli.run("keys", "revoke", "key_000000000000", "--data-dir", data)
    assert unknown.returncode == 2 and "no API key" in unknown.stderr
    assert server.stop(signal.SIGTERM) == 0
    assert not KEY.search(server.output())  # keys existed: nothing to bootstrap
    assert "sk-butterflyfx-" not in server.log_text()


def test_bad_tiers_scopes_and_tenants_are_refused_by_name(cli, tmp_path):
    data = str(tmp_path / "data")
    for flag, value in [("--tier", "gold"), ("--scopes", "read,fly"), ("--tenant", "a b")]:
        given = {"--tenant": "acme", "--tier": "free", flag: value}
        result = cli.run("keys", "create", "--data-dir", data, *sum(given.items(), ()))
        assert result.returncode == 2
        assert (
            result.stderr.startswith(f"butterflyfx: {flag}:") and "Traceback" not in result.stderr
        )
        assert "sk-butterflyfx-" not in result.stdout


@pytest.mark.parametrize("workers", [1, 2])
def test_the_first_start_prints_exactly_one_admin_key_and_never_logs_it(cli, tmp_path, workers):
    server = cli.start("--data-dir", str(tmp_path / "empty"), "--workers", str(workers))
    server.wait_ready()
    if workers > 1:
        wait_for(
            lambda: len({event["pid"] for event in server.events("worker_ready")}) == workers,
            START_DEADLINE, "every worker ready",
        )  # fmt: skip
    (admin,) = KEY.findall(server.output())
    for _ in range(2 * workers):  # a new connection each time: each worker knows the key
        with server.client() as client:
            listed = client.get("/api/v1/keys", headers={"Authorization": f"Bearer {admin}"})
            assert listed.status_code == 200
            (key,) = listed.json()["keys"]
            assert (key["tenant"], key["tier"]) == ("default", "enterprise")
            assert "admin" in key["scopes"]
    assert server.stop(signal.SIGTERM) == 0
    assert KEY.findall(server.output()) == [admin]
    assert server.events("api_key_bootstrapped")  # the log says it happened ...
    assert "sk-butterflyfx-" not in server.log_text()  # ... but never shows the key


def test_keys_made_and_revoked_on_the_command_line_live_in_postgresql(cli, tmp_path):
    with postgres_schema() as schema:
        cli.env.update(
            {"BUTTERFLYFX_AUTH_APIKEY__DATABASE": POSTGRES_DSN,
             "BUTTERFLYFX_AUTH_APIKEY__SCHEMA": schema}
        )  # fmt: skip
        command_data, server_data = tmp_path / "command", tmp_path / "server"
        created = cli.run("keys", "create", "--data-dir", str(command_data),
                          "--tenant", "acme", "--tier", "pro")  # fmt: skip
        assert created.returncode == 0, created.stderr
        key = created.stdout.splitlines()[-1]
        key_id = re.search(r"key_[0-9a-f]{12}", created.stdout).group()

        server = cli.start("--data-dir", str(server_data)).wait_ready()
        with server.client(key) as client:
            before = client.get("/api/v1/substrates")
            revoked = cli.run("keys", "revoke", key_id, "--data-dir", str(command_data))
            after = client.get("/api/v1/substrates")
        assert server.stop(signal.SIGTERM) == 0  # a graceful stop writes the last use
        listed = cli.run("keys", "list", "--json", "--data-dir", str(command_data))

    assert before.status_code == 200
    assert revoked.returncode == 0, revoked.stderr
    assert after.status_code == 401 and "revoked" in after.json()["detail"]
    (shown,) = json.loads(listed.stdout)
    assert shown["id"] == key_id and shown["revoked_at"] and shown["last_used_at"]
    assert not KEY.search(server.output())  # a key existed: nothing to bootstrap
    for folder in (command_data, server_data):
        assert not (folder / "auth-keys.sqlite3").exists()


def test_an_unreachable_key_database_is_one_clear_line_for_the_command_and_the_server(
    cli, tmp_path
):
    cli.env["BUTTERFLYFX_AUTH_APIKEY__DATABASE"] = "postgresql://postgres:hunter2@127.0.0.1:1/test"
    data = str(tmp_path / "data")

    listed = cli.run("keys", "list", "--data-dir", data)
    server = cli.start("--data-dir", data)

    assert listed.returncode == 2
    assert listed.stderr.startswith(
        "butterflyfx: cannot open the API key database at 127.0.0.1:1/test, schema "
        "butterflyfx_auth (postgresql://postgres:***@127.0.0.1:1/test)"
    )
    assert server.wait() == 2
    log = server.log_text()
    assert "auth.apikey" in log and "cannot open the API key database at 127.0.0.1:1/test" in log
    for said in (listed.stderr, log):
        assert "Traceback" not in said and "hunter2" not in said
