"""How the human commands fail: one line on stderr, nothing on stdout, and an exit code a
script can branch on: 1 the server answered with an error, 2 a usage or profile error,
3 no answer at all. Run as the real ``butterflyfx`` command against a real server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

COMMAND = str(Path(sys.executable).with_name("butterflyfx"))
TIMEOUT = 90.0
MISSING = "0x00000000DEADBEEF"


def butterflyfx(*argv: str, tmp_path: Path, **env: str):
    """Run ``butterflyfx``, no profile file and no server variables but those in ``env``."""
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith("BUTTERFLYFX_")
    }
    environment["BUTTERFLYFX_PROFILE_FILE"] = str(tmp_path / "no-profile.toml")
    return subprocess.run(
        [COMMAND, *argv], env={**environment, **env},
        capture_output=True, text=True, timeout=TIMEOUT,
    )  # fmt: skip


def failed(done, code: int) -> str:
    """The one line the failed command printed, after checking its exit code."""
    assert done.returncode == code, (done.stdout, done.stderr)
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("butterflyfx: "), done.stderr
    return lines[0]


@pytest.fixture
def cli(server, tmp_path):
    def run(*argv: str):
        return butterflyfx(*argv, tmp_path=tmp_path, BUTTERFLYFX_URL=server.url,
                           BUTTERFLYFX_API_KEY=server.admin_key)  # fmt: skip

    return run


def test_error_answers_exit_1_with_the_status_type_and_field(cli, client):
    line = failed(cli("substrate", "get", MISSING), 1)
    assert line == f"butterflyfx: 404 not-found: substrate_id: no substrate {MISSING}"
    assert failed(cli("substrate", "get", MISSING, "--json"), 1) == line

    made = client.create_substrate("lambda", "lambda **kw: 'errors'")
    unknown = failed(cli("rel", "create", made.substrate_id, made.substrate_id, "likes"), 1)
    assert unknown.startswith("butterflyfx: 422 unknown-relationship-type: ")
    assert "relationship_type" in unknown

    malformed = failed(cli("rel", "create", "not-an-id", made.substrate_id, "dependency"), 1)
    assert malformed.startswith("butterflyfx: 400 invalid-id: source_id: 'not-an-id' is not")
    too_deep = failed(cli("query", "traverse", made.substrate_id, "--limit", "0"), 1)
    assert too_deep.startswith("butterflyfx: 422 ") and "limit" in too_deep, too_deep

    assert failed(cli("substrate", "invoke", MISSING, "x=1"), 1).startswith("butterflyfx: 404")


def test_a_missing_key_is_a_401(server, tmp_path):
    done = butterflyfx("query", "stats", "--url", server.url, tmp_path=tmp_path)
    assert failed(done, 1).startswith("butterflyfx: 401 ")


def test_no_answer_exits_3(tmp_path):
    done = butterflyfx("query", "stats", "--url", "http://127.0.0.1:1", tmp_path=tmp_path)
    assert "no answer from the server" in failed(done, 3)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["substrate", "invoke", MISSING, "novalue"], "a parameter must be KEY=VALUE"),
        (["substrate", "create", "lambda", "x", "--metadata", "[1]"], "must be a JSON object"),
        (["substrate", "multiply", MISSING], "two or more substrate ids"),
        (["query", "stats", "--url", "ftp://example"], "--url must be an http"),
        (["query", "stats", "--profile", "staging"], "no profile 'staging'"),
    ],
)
def test_usage_errors_exit_2_before_any_request(argv, message, tmp_path):
    done = butterflyfx(*argv, tmp_path=tmp_path)
    assert message in failed(done, 2)


def test_argparse_usage_errors_exit_2(tmp_path):
    done = butterflyfx("substrate", "get", tmp_path=tmp_path)
    assert done.returncode == 2 and "the following arguments are required: ID" in done.stderr
    done = butterflyfx("graph", MISSING, "--format", "png", tmp_path=tmp_path)
    assert done.returncode == 2 and "invalid choice" in done.stderr
