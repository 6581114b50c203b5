"""Many instances, one set of credentials: two real ``butterflyfx serve`` processes, A and B,
each with a data folder of its own (no file is shared), over one PostgreSQL schema (the
substrates, the API keys, the users and the JWT signing secret generated there) and one
Redis (rate limits). What one instance is told about a key or a user, the other knows on
its next request, and of the two starting at once on an empty schema exactly one prints the
first admin key.

Loopback only. Deadlines only keep a broken run from hanging; nothing is timed.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from server_process import COMMAND_TIMEOUT, Butterflyfx, Server

from butterflyfx.testing import services
from butterflyfx.testing.services import POSTGRES_DSN, postgres_schema

KEY = re.compile(r"sk-butterflyfx-[A-Za-z0-9_-]{43}")
SUBSTRATES = "/api/v1/substrates"
KEYS = "/api/v1/keys"
LOGIN = "/api/v1/auth/login"
PASSWORD = "a long and unguessable passphrase"


def config_text(schema: str, prefix: str) -> str:
    """Every store on the one PostgreSQL schema, every counter on Redis; no file named,
    no JWT secret set (the first instance generates it into the database)."""
    return (
        'plugins = ["storage.postgres", "graph.sql", "http", "auth.apikey", "auth.jwt", '
        '"ratelimit"]\n\n'
        f'[storage.postgres]\ndsn = "{POSTGRES_DSN}"\nschema = "{schema}"\n\n'
        f'[auth.apikey]\ndatabase = "{POSTGRES_DSN}"\nschema = "{schema}"\n\n'
        f'[auth.jwt]\ndatabase = "{POSTGRES_DSN}"\nschema = "{schema}"\n\n'
        f'[ratelimit]\nstorage = "{services.REDIS_URL}"\nkey_prefix = "{prefix}"\n'
    )


@dataclass
class Shared:
    """Instances ``a`` and ``b`` of one configuration, and the admin key one of them printed."""

    a: Server
    b: Server
    config: Path
    printed: list[str]

    @property
    def admin(self) -> dict[str, str]:
        (key,) = self.printed
        return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def shared(butterflyfx: Butterflyfx, tmp_path: Path) -> Iterator[Shared]:
    """A and B started at once on a schema that does not exist yet."""
    services.redis_client(services.REDIS_URL).close()  # skips, or fails under REQUIRE_SERVICES
    with postgres_schema() as schema, services.redis_prefix(services.REDIS_URL) as prefix:
        config = tmp_path / "butterflyfx.toml"
        config.write_text(config_text(schema, prefix))
        a = butterflyfx.start("--config", str(config), "--data-dir", str(tmp_path / "a"))
        b = butterflyfx.start("--config", str(config), "--data-dir", str(tmp_path / "b"))
        try:
            a.wait_ready(), b.wait_ready()
            printed = KEY.findall(a.output()) + KEY.findall(b.output())
            yield Shared(a, b, config, printed)
        finally:
            # Stopped before the schema is dropped, so no pooled connection holds it.
            a.destroy()
            b.destroy()


def users(cli: Butterflyfx, config: Path, *args: str, password: str | None = None) -> str:
    """``butterflyfx users ARGS --config CONFIG`` from a folder of its own; its stdout."""
    done = subprocess.run(
        [*cli.command(), "users", *args, "--config", str(config),
         "--data-dir", str(cli.cwd / "cli")],
        cwd=cli.cwd, env=cli.env, input=None if password is None else password + "\n",
        stdin=subprocess.DEVNULL if password is None else None,
        capture_output=True, text=True, timeout=COMMAND_TIMEOUT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_of_two_instances_starting_at_once_on_an_empty_schema_one_prints_the_admin_key(
    shared, tmp_path
):
    assert len(shared.printed) == 1, (shared.a.output(), shared.b.output())
    for server in (shared.a, shared.b):
        with server.client() as client:
            listed = client.get(KEYS, headers=shared.admin)
            assert listed.status_code == 200, listed.text
            (key,) = listed.json()["keys"]
            assert (key["tenant"], key["tier"]) == ("default", "enterprise")
    assert "sk-butterflyfx-" not in shared.a.log_text() + shared.b.log_text()
    for folder in (tmp_path / "a", tmp_path / "b"):  # no key file, no users, no secret
        assert not folder.exists() or list(folder.iterdir()) == []


def test_a_key_made_through_a_works_on_b_and_once_revoked_through_b_a_refuses_it(shared):
    with shared.a.client() as a, shared.b.client() as b:
        made = a.post(KEYS, headers=shared.admin, json={"tier": "pro", "name": "made on a"})
        assert made.status_code == 201, made.text
        key = {"Authorization": f"Bearer {made.json()['key']}"}
        created = b.post(
            SUBSTRATES,
            headers=key,
            json={"expression_type": "lambda", "expression_code": "lambda: 'made on b'"},
        )
        assert created.status_code == 201, created.text
        assert (
            a.get(f"{SUBSTRATES}/{created.json()['substrate_id']}", headers=key).status_code == 200
        )

        revoked = b.delete(f"{KEYS}/{made.json()['id']}", headers=shared.admin)
        assert revoked.status_code == 204, revoked.text
        refused_by_a = a.get(SUBSTRATES, headers=key)
        refused_by_b = b.get(SUBSTRATES, headers=key)
        still_admin = a.get(KEYS, headers=shared.admin)

    for refused in (refused_by_a, refused_by_b):
        assert refused.status_code == 401
        assert refused.headers["Content-Type"] == "application/problem+json"
        assert "revoked" in refused.json()["detail"]
    assert still_admin.status_code == 200


def test_a_user_added_with_the_users_command_logs_in_on_a_and_the_token_works_on_b(
    butterflyfx, shared
):
    added = users(butterflyfx, shared.config, "add", "carol", "--tenant", "acme", "--tier",
                  "pro", "--password-stdin", password=PASSWORD)  # fmt: skip
    assert added.startswith("added user carol")
    with shared.a.client() as a, shared.b.client() as b:
        answer = a.post(LOGIN, json={"username": "carol", "password": PASSWORD})
        assert answer.status_code == 200, answer.text
        token = {"Authorization": f"Bearer {answer.json()['access_token']}"}
        on_b = b.get(SUBSTRATES, headers=token)

        users(butterflyfx, shared.config, "disable", "carol")
        disabled_on_b = b.get(SUBSTRATES, headers=token)
        login_on_a = a.post(LOGIN, json={"username": "carol", "password": PASSWORD})

    assert on_b.status_code == 200, on_b.text  # B verified A's signature: one secret
    assert disabled_on_b.status_code == 401 and "disabled" in disabled_on_b.json()["detail"]
    assert login_on_a.status_code == 401
    listed = users(butterflyfx, shared.config, "list", "--json")
    assert '"name": "carol"' in listed and '"disabled": true' in listed
