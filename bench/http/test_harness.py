"""The benchmark's baseline is honest: the bare app answers what our server answers.

A ratio against a baseline that skips work, or answers something else, would flatter us.
Both servers run as real processes (one worker each) over one SQLite file; nothing here
is timed.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "butterflyfx_bench_http_run", Path(__file__).with_name("run.py")
)
assert _spec is not None and _spec.loader is not None
harness = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = harness  # dataclasses look their module up by name
_spec.loader.exec_module(harness)


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    with harness.both_servers(1, tmp_path_factory.mktemp("bench-http")) as running:
        yield running


def test_a_substrate_read_through_the_bare_app_matches_our_server(servers):
    ours, bare, substrate_id = servers
    path = f"/api/v1/substrates/{substrate_id}"

    ours_status, ours_body = harness.request("GET", ours.url + path, headers=ours.headers)
    bare_status, bare_body = harness.request("GET", bare.url + path)

    assert (ours_status, bare_status) == (200, 200)
    assert bare_body == ours_body
    assert ours_body["substrate_id"] == substrate_id


def test_the_seed_invoked_through_the_bare_app_gives_our_result(servers):
    ours, bare, substrate_id = servers
    path = f"/api/v1/substrates/{substrate_id}/invoke"

    ours_status, ours_body = harness.request(
        "POST", ours.url + path, harness.INVOKE_BODY, headers=ours.headers
    )
    bare_status, bare_body = harness.request("POST", bare.url + path, harness.INVOKE_BODY)

    assert (ours_status, bare_status) == (200, 200)
    assert set(bare_body) == set(ours_body) == {"substrate_id", "result", "invocation_time_ms"}
    assert bare_body["substrate_id"] == ours_body["substrate_id"] == substrate_id
    assert bare_body["result"] == ours_body["result"] == 35
    assert isinstance(bare_body["invocation_time_ms"], float)
    assert isinstance(ours_body["invocation_time_ms"], float)


def test_an_unknown_substrate_is_404_on_both(servers):
    ours, bare, _ = servers
    path = "/api/v1/substrates/0x0000000000000001"

    assert harness.request("GET", ours.url + path, headers=ours.headers)[0] == 404
    assert harness.request("GET", bare.url + path)[0] == 404


def test_wrk_output_is_read_in_milliseconds():
    output = """Running 1s test @ http://127.0.0.1:1/
  2 threads and 32 connections
  Latency Distribution
     50%  635.91us
     75%  712.00us
     90%    0.86ms
     99%    1.58s
  21645 requests in 10.10s, 3.52MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 7
Requests/sec:   2143.22
Transfer/sec:    356.61KB
"""
    measured = harness.parse_wrk(output)

    assert measured.requests_per_second == 2143.22
    assert measured.p50_ms == pytest.approx(0.63591)
    assert measured.p99_ms == pytest.approx(1580.0)
    assert (measured.requests, measured.non_2xx, measured.socket_errors) == (21645, 7, 3)


def test_without_wrk_the_driver_says_how_to_install_it(monkeypatch, capsys):
    monkeypatch.setattr(shutil, "which", lambda name: None)

    assert harness.main() != 0
    assert "apt-get install -y wrk" in capsys.readouterr().err


def test_a_run_served_by_one_of_two_workers_is_not_counted_as_two():
    assert harness.balanced([5.1, 4.2], workers=2)
    assert not harness.balanced([9.6], workers=2)  # the other worker stayed idle
    assert not harness.balanced([8.0, 1.0], workers=2)
    assert harness.balanced([9.6], workers=1)
    assert harness.balanced([], workers=2)  # no /proc: nothing known, the run counts
