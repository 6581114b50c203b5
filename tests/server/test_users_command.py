"""`butterflyfx users` and a real `butterflyfx serve` with auth.jwt: add a user from the
command line (to the SQLite file, or to PostgreSQL), log in over HTTP, use the token;
several workers need Redis to count failed logins, and with it they count them together."""

from __future__ import annotations

import subprocess
import uuid

import redis
from server_process import COMMAND_TIMEOUT, START_DEADLINE, wait_for

from butterflyfx.testing import services
from butterflyfx.testing.services import POSTGRES_DSN, postgres_schema

PLUGINS = {"BUTTERFLYFX_PLUGINS": "storage.sqlite,http,auth.jwt"}
PASSWORD = "a long and unguessable passphrase"
REDIS_URL = "redis://127.0.0.1:6379/0"
LOGIN = "/api/v1/auth/login"


def users(cli, *args: str, password: str | None = None) -> subprocess.CompletedProcess[str]:
    """``butterflyfx users ARGS``, with ``password`` on stdin when given."""
    return subprocess.run(
        [*cli.command(), "users", *args], cwd=cli.cwd, env={**cli.env, **PLUGINS},
        input=None if password is None else password + "\n",
        stdin=subprocess.DEVNULL if password is None else None,
        capture_output=True, text=True, timeout=COMMAND_TIMEOUT,
    )  # fmt: skip


def test_a_user_added_on_the_command_line_logs_in_over_http_and_uses_the_token(
    butterflyfx, tmp_path
):
    data = str(tmp_path / "data")
    added = users(butterflyfx, "add", "alice", "--tenant", "acme", "--tier", "pro",
                  "--password-stdin", "--data-dir", data, password=PASSWORD)  # fmt: skip
    too_short = users(butterflyfx, "add", "bob", "--tenant", "acme", "--tier", "free",
                      "--password-stdin", "--data-dir", data, password="hunter2")  # fmt: skip
    listed = users(butterflyfx, "list", "--json", "--data-dir", data)

    assert added.returncode == 0, added.stderr
    assert (
        added.stdout.strip() == "added user alice (tenant acme, tier pro, scopes read,write,invoke)"
    )
    assert too_short.returncode == 2 and "shorter than 8 characters" in too_short.stderr
    assert listed.returncode == 0 and '"name": "alice"' in listed.stdout
    assert "argon2" not in listed.stdout and "bob" not in listed.stdout

    server = butterflyfx.start("--data-dir", data, env=PLUGINS).wait_ready()
    with server.client() as client:
        wrong = client.post(LOGIN, json={"username": "alice", "password": "not it"})
        answer = client.post(LOGIN, json={"username": "alice", "password": PASSWORD})
        token = answer.json()["access_token"]
        bearer = {"Authorization": f"Bearer {token}"}
        substrate = {"expression_type": "lambda", "expression_code": "lambda: 1"}
        made = client.post("/api/v1/substrates", headers=bearer, json=substrate)
        listed_over_http = client.get("/api/v1/substrates", headers=bearer)
        removed = users(butterflyfx, "remove", "alice", "--data-dir", data)
        after_removal = client.get("/api/v1/substrates", headers=bearer)

    assert wrong.status_code == 401
    assert answer.status_code == 200
    assert answer.json() == {"access_token": token, "token_type": "bearer", "expires_in": 3600}
    assert made.status_code == 201 and listed_over_http.status_code == 200
    assert made.json()["substrate_id"] in listed_over_http.text
    assert removed.returncode == 0
    assert after_removal.status_code == 401  # its tokens stop working at once
    assert PASSWORD not in server.log_text() and PASSWORD not in server.output()


def test_two_workers_counting_failed_logins_in_memory_refuse_to_start_and_name_redis(
    butterflyfx, tmp_path
):
    server = butterflyfx.start("--workers", "2", "--data-dir", str(tmp_path / "d"), env=PLUGINS)

    assert server.wait() == 2
    log = server.log_text()
    assert "cannot start" in log and "Redis" in log and "attempts_storage" in log
    assert "Traceback" not in log


def redis_or_skip() -> redis.Redis:
    return services.redis_client(REDIS_URL)


def test_two_workers_sharing_redis_refuse_the_sixth_failed_login_whichever_answers(
    butterflyfx, tmp_path
):
    shared = redis_or_skip()
    # Every attempt comes from 127.0.0.1: forget that address's failures from earlier runs.
    for key in shared.scan_iter(match="*butterflyfx-auth-jwt-login/address/127.0.0.1/*"):
        shared.delete(key)
    shared.close()
    data, name = str(tmp_path / "d"), f"dora-{uuid.uuid4().hex[:8]}"
    env = {**PLUGINS, "BUTTERFLYFX_AUTH_JWT__ATTEMPTS_STORAGE": REDIS_URL}
    added = users(butterflyfx, "add", name, "--tenant", "acme", "--tier", "pro",
                  "--password-stdin", "--data-dir", data, password=PASSWORD)  # fmt: skip
    assert added.returncode == 0, added.stderr
    server = butterflyfx.start("--workers", "2", "--data-dir", data, env=env).wait_ready()
    wait_for(lambda: len(server.events("worker_ready")) == 2, START_DEADLINE, "two workers")

    def attempt(password: str) -> int:
        with server.client() as client:  # a new connection each time: either worker answers
            return client.post(LOGIN, json={"username": name, "password": password}).status_code

    failures = [attempt(f"guess {n}") for n in range(5)]
    later = [attempt(PASSWORD)]

    def answered_by() -> set[str]:
        return {e["worker"] for e in server.events() if e.get("event", "").startswith("login_")}

    while len(answered_by()) < 2 and len(later) < 30:  # until both workers have answered
        later.append(attempt(PASSWORD))
    assert failures == [401] * 5
    assert later == [429] * len(later), f"answered by workers {answered_by()}"


def test_users_added_on_the_command_line_live_in_postgresql_with_the_generated_secret(
    butterflyfx, tmp_path
):
    with postgres_schema() as schema:
        database = {"BUTTERFLYFX_AUTH_JWT__DATABASE": POSTGRES_DSN,
                    "BUTTERFLYFX_AUTH_JWT__SCHEMA": schema}  # fmt: skip
        butterflyfx.env.update(database)
        command_data, server_data = str(tmp_path / "command"), str(tmp_path / "server")
        added = users(butterflyfx, "add", "erin", "--tenant", "acme", "--tier", "pro",
                      "--password-stdin", "--data-dir", command_data,
                      password=PASSWORD)  # fmt: skip
        server = butterflyfx.start("--data-dir", server_data, env=PLUGINS).wait_ready()
        with server.client() as client:
            answer = client.post(LOGIN, json={"username": "erin", "password": PASSWORD})
            bearer = {"Authorization": f"Bearer {answer.json()['access_token']}"}
            before = client.get("/api/v1/substrates", headers=bearer)
            removed = users(butterflyfx, "remove", "erin", "--data-dir", command_data)
            after = client.get("/api/v1/substrates", headers=bearer)
        listed = users(butterflyfx, "list", "--data-dir", command_data)

    assert added.returncode == 0, added.stderr
    assert answer.status_code == 200 and before.status_code == 200
    assert removed.returncode == 0 and after.status_code == 401
    assert listed.stdout.startswith("no users")
    for folder in (tmp_path / "command", tmp_path / "server"):  # neither users nor a secret
        assert not (folder / "auth-users.sqlite3").exists()
        assert not (folder / "jwt-secret").exists()
    assert PASSWORD not in server.log_text()


def test_an_unreachable_users_database_is_one_clear_line_for_the_command(butterflyfx, tmp_path):
    butterflyfx.env["BUTTERFLYFX_AUTH_JWT__DATABASE"] = (
        "postgresql://postgres:hunter2@127.0.0.1:1/test"
    )

    listed = users(butterflyfx, "list", "--data-dir", str(tmp_path / "data"))

    assert listed.returncode == 2
    assert listed.stderr.startswith(
        "butterflyfx: cannot open the users database at 127.0.0.1:1/test, schema butterflyfx_auth"
    )
    assert "Traceback" not in listed.stderr and "hunter2" not in listed.stderr
