"""The access log of a real server: one JSON line per request, saying who asked for what
and how it went, and never the key that asked."""

from __future__ import annotations

import re

import pytest

PLUGINS = "storage.sqlite,http,auth.apikey"
KEY = re.compile(r"sk-butterflyfx-[A-Za-z0-9_-]{43}")
FIELDS = {"method", "path", "route", "status", "duration_ms", "request_id", "tenant", "subject",
          "client", "pool", "worker"}  # fmt: skip


@pytest.fixture
def cli(butterflyfx):
    butterflyfx.env["BUTTERFLYFX_PLUGINS"] = PLUGINS
    return butterflyfx


def make_key(cli, data: str) -> tuple[str, str]:
    """A read key of tenant ``acme`` made on the command line: (key id, key)."""
    made = cli.run(
        "keys",
        "create",
        "--data-dir",
        data,
        "--tenant",
        "acme",
        "--tier",
        "pro",
        "--scopes",
        "read",
    )
    assert made.returncode == 0, made.stderr
    *before, key = made.stdout.splitlines()
    assert KEY.fullmatch(key)
    return re.search(r"key_[0-9a-f]{12}", before[-1]).group(), key


def test_each_request_is_one_access_line_and_no_key_or_token_reaches_the_log(cli, tmp_path):
    data = str(tmp_path / "data")
    key_id, key = make_key(cli, data)
    wrong = "sk-butterflyfx-" + "W" * 43  # a key nobody issued, refused
    server = cli.start("--data-dir", data).wait_ready()

    with server.client(key) as client:
        listed = client.get(
            "/api/v1/substrates", params={"limit": 5, "access_token": key},
            headers={"X-Request-ID": "story-listed"},
        )  # fmt: skip
        bad = client.get("/api/v1/substrates/0xnothere", headers={"X-Request-ID": "story-bad-id"})
        refused = client.get(
            "/api/v1/substrates",
            headers={"X-Request-ID": "story-refused", "Authorization": f"Bearer {wrong}"},
        )
    assert server.stop() == 0  # a request's access line is written after its response

    lines = {event["request_id"]: event for event in server.events("request")}
    assert len(server.events("request")) == len(lines)  # one line per request, no echo
    line = lines["story-listed"]
    assert FIELDS <= set(line)
    assert (line["method"], line["path"], line["route"]) == (
        "GET", "/api/v1/substrates", "/api/v1/substrates",
    )  # fmt: skip
    assert line["status"] == listed.status_code
    assert (line["tenant"], line["subject"]) == ("acme", key_id)
    assert line["client"] == "127.0.0.1" and line["worker"].isdigit()
    assert line["pool"] == "api"
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["logger"] == "butterflyfx.access" and line["level"] == "info"

    bad_id = lines["story-bad-id"]
    assert (bad_id["status"], bad_id["route"]) == (
        bad.status_code,
        "/api/v1/substrates/<substrate_id>",
    )
    assert bad_id["path"] == "/api/v1/substrates/0xnothere"
    denied = lines["story-refused"]
    assert (denied["status"], denied["tenant"], denied["subject"]) == (
        refused.status_code,
        None,
        None,
    )
    assert refused.status_code == 401

    everything = server.output() + server.log_text()
    assert key not in everything and wrong not in everything
    assert "access_token" not in everything  # the query string is never logged


def test_the_access_log_can_be_switched_off(cli, tmp_path):
    server = cli.start("--data-dir", str(tmp_path / "data"), "--no-access-log").wait_ready()
    server.client().get("/api/v1/health")

    assert server.stop() == 0
    assert server.events("request") == []
    assert server.events("worker_ready")  # the rest of the log is still there
