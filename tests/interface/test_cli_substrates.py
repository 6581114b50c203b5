"""``butterflyfx substrate ...`` run as the real command against a real ``butterflyfx serve``
(the ``server`` fixture of conftest.py): tables by default, the API's JSON with ``--json``,
configured by flags, environment variables or a profile file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from butterflyfx.interface.machine.models import DivisionBody, InvocationBody, SubstrateBody

COMMAND = str(Path(sys.executable).with_name("butterflyfx"))
TIMEOUT = 90.0
AREA = "lambda **kw: kw.get('w', 0) * kw.get('h', 0)"
DEPTH = "lambda **kw: kw.get('d', 0) + 1"


def butterflyfx(*argv: str, env: dict[str, str] | None = None, stdin: str | None = None):
    """Run the ``butterflyfx`` command; its finished process (a narrow COLUMNS, which a
    pipe's tables ignore, and no colour)."""
    environment = {**os.environ, "COLUMNS": "40", "NO_COLOR": "1", **(env or {})}
    return subprocess.run(
        [COMMAND, *argv], input=stdin, env=environment,
        capture_output=True, text=True, timeout=TIMEOUT,
    )  # fmt: skip


@pytest.fixture
def cli(server):
    """``butterflyfx`` with ``--url`` and ``--key`` of the module's server."""

    def run(*argv: str, stdin: str | None = None):
        return butterflyfx(*argv, "--url", server.url, "--key", server.admin_key, stdin=stdin)

    return run


def answer(done) -> object:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_substrate_is_created_shown_listed_invoked_and_deleted(cli, client):
    made = SubstrateBody.model_validate(
        answer(cli("substrate", "create", "lambda", AREA, "--meta", "name=area", "--json"))
    )
    assert made == client.get_substrate(made.substrate_id)  # the API's JSON, exactly

    shown = cli("substrate", "get", made.substrate_id)
    assert shown.returncode == 0, shown.stderr
    assert made.substrate_id in shown.stdout and AREA in shown.stdout
    assert '{"name":"area"}' in shown.stdout

    listed = cli("substrate", "list")
    row = next(line for line in listed.stdout.splitlines() if made.substrate_id in line)
    assert "lambda" in row and "area" in row
    ids = [s["substrate_id"] for s in answer(cli("substrate", "list", "--json"))]
    assert ids == [s.substrate_id for s in client.list_substrates()]
    assert len(answer(cli("substrate", "list", "--json", "--limit", "1"))) == 1

    invoked = InvocationBody.model_validate(
        answer(cli("substrate", "invoke", made.substrate_id, "w=6", "h=7", "--json"))
    )
    assert invoked.result == 42
    table = cli("substrate", "invoke", made.substrate_id, "--params", '{"w": 2, "h": 3}')
    assert table.returncode == 0 and " 6 " in table.stdout

    deleted = cli("substrate", "delete", made.substrate_id)
    assert (deleted.returncode, deleted.stdout) == (0, f"deleted {made.substrate_id}\n")
    assert cli("substrate", "get", made.substrate_id).returncode == 1


def test_divide_and_multiply_rebuild_and_combine_substrates(cli, client):
    area = client.create_substrate("lambda", AREA)
    depth = client.create_substrate("lambda", DEPTH)

    divided = cli("substrate", "divide", area.substrate_id, "--json")
    division = DivisionBody.model_validate(answer(divided))
    assert [d.name for d in division.dimensions][:3] == ["Void", "Identity", "Domain"]
    table = cli("substrate", "divide", area.substrate_id)
    assert all(d.name in table.stdout for d in division.dimensions)
    whole = [line for line in table.stdout.splitlines() if "Complete" in line]
    assert len(whole) == 1 and AREA in whole[0]  # into a pipe, no cell is folded

    rebuilt = answer(
        cli("substrate", "multiply", "--division", "-", "--json", stdin=divided.stdout)
    )
    assert rebuilt["substrate_id"] == area.substrate_id
    product = answer(cli("substrate", "multiply", area.substrate_id, depth.substrate_id, "--json"))
    expected = client.multiply(substrate_ids=[area.substrate_id, depth.substrate_id])
    assert product["substrate_id"] == expected.substrate_id


def test_code_from_stdin_and_metadata_as_json(cli):
    made = answer(
        cli("substrate", "create", "lambda", "-", "--metadata", '{"tags": ["a"], "n": 1}',
            "--meta", "n=2", "--json", stdin="lambda **kw: 3"),
    )  # fmt: skip
    assert made["expression_code"] == "lambda **kw: 3"
    assert made["metadata"] == {"tags": ["a"], "n": 2}  # --meta entries win


def test_the_server_and_key_come_from_the_environment_or_a_profile(server, tmp_path):
    by_env = butterflyfx(
        "query", "stats", "--json",
        env={"BUTTERFLYFX_URL": server.url, "BUTTERFLYFX_API_KEY": server.admin_key},
    )  # fmt: skip
    assert "substrates" in answer(by_env)

    profiles = tmp_path / "profile.toml"
    profiles.write_text(
        f'[default]\nurl = "http://127.0.0.1:1"\n\n'
        f'[local]\nurl = "{server.url}"\nkey = "{server.admin_key}"\n',
        encoding="utf-8",
    )
    env = {"BUTTERFLYFX_PROFILE_FILE": str(profiles)}
    assert "substrates" in answer(butterflyfx("query", "stats", "--json", "--profile", "local",
                                              env=env))  # fmt: skip
    assert "substrates" in answer(
        butterflyfx("query", "stats", "--json", env={**env, "BUTTERFLYFX_PROFILE": "local"})
    )
    flag_wins = butterflyfx("query", "stats", "--json", "--url", server.url,
                            "--key", server.admin_key, env=env)  # fmt: skip
    assert "substrates" in answer(flag_wins)  # over the default profile's dead URL


def test_metadata_is_set_and_removed_by_update_and_the_code_stays(cli, client):
    made = client.create_substrate("lambda", "lambda **kw: kw.get('t', 0) * 9 / 5 + 32",
                                   {"name": "fahrenheit", "draft": True})  # fmt: skip
    changed = SubstrateBody.model_validate(
        answer(cli("substrate", "update", made.substrate_id, "--meta", "unit=F",
                   "--metadata", '{"precision": 2}', "--remove", "draft", "--json"))
    )  # fmt: skip
    assert changed.metadata == {"name": "fahrenheit", "unit": "F", "precision": 2}
    assert changed.expression_code == made.expression_code
    assert client.get_substrate(made.substrate_id).metadata == changed.metadata

    nothing = cli("substrate", "update", made.substrate_id)
    assert nothing.returncode == 2 and "nothing to change" in nothing.stderr
