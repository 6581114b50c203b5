"""``BUTTERFLYFX_TRACE_PLUGINS=1``: an operator debugging a plugin set sees every hook call
in the log, which plugin answered which hook, and how long it took (awaiting included)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest

from butterflyfx.core.plugins import tracing_requested
from butterflyfx.testing.process import free_port, wait_until_ready

PLUGINS = "storage.sqlite,http,auth.apikey,lagging"
KEY = re.compile(r"sk-butterflyfx-[A-Za-z0-9_-]{43}")
DEADLINE = 90.0  # keeps a broken start from hanging; nothing here is timed
LAG_SECONDS = 0.05

# A third-party plugin whose request listener takes a while to finish: its traced duration
# covers the await, not just the call that made the coroutine.
LAGGING = f"""
import asyncio

from butterflyfx.core.hookspecs import hookimpl


@hookimpl
async def butterflyfx_on_request(record):
    await asyncio.sleep({LAG_SECONDS})
"""


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A folder with the ``lagging`` plugin installed, as a distribution would be."""
    folder = tmp_path / "site"
    dist_info = folder / "butterflyfx_lagging-1.0.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: butterflyfx-lagging\nVersion: 1.0.0\n"
    )
    (dist_info / "entry_points.txt").write_text("[butterflyfx]\nlagging = butterflyfx_lagging\n")
    (folder / "butterflyfx_lagging.py").write_text(textwrap.dedent(LAGGING))
    return folder


def serve(tmp_path: Path, site: Path, trace: str | None) -> tuple[list[dict[str, Any]], str]:
    """Serve, send one request with the admin key and one with a wrong key, stop: the JSON
    log events and stdout."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("BUTTERFLYFX_")}
    env |= {"BUTTERFLYFX_PLUGINS": PLUGINS, "PYTHONPATH": os.pathsep.join([str(site), *sys.path])}
    if trace is not None:
        env["BUTTERFLYFX_TRACE_PLUGINS"] = trace
    port = free_port()
    log, out = tmp_path / f"trace-{trace}.log", tmp_path / f"trace-{trace}.out"
    command = [sys.executable, "-m", "butterflyfx.server.cli", "serve", "--port", str(port),
               "--data-dir", str(tmp_path / "data"), "--log-format", "json"]  # fmt: skip
    with log.open("wb") as err, out.open("wb") as stdout:
        process = subprocess.Popen(
            command, env=env, cwd=tmp_path, stdout=stdout, stderr=err, start_new_session=True
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_ready(process, f"{url}/api/v1/health", deadline=DEADLINE,
                         log=lambda: log.read_text(errors="replace"))  # fmt: skip
        keys = KEY.findall(out.read_text())
        admin = keys[-1] if keys else "sk-butterflyfx-" + "A" * 43  # bootstrapped on a first start
        with httpx.Client(base_url=url, timeout=30.0, trust_env=False) as client:
            ok = client.get("/api/v1/substrates", headers={"Authorization": f"Bearer {admin}"})
            assert ok.status_code == 200, ok.text
            wrong = {"Authorization": "Bearer sk-butterflyfx-" + "W" * 43}
            assert client.get("/api/v1/substrates", headers=wrong).status_code == 401
        process.send_signal(signal.SIGTERM)
        assert process.wait(DEADLINE) == 0
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(DEADLINE)
    events = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    return events, out.read_text()


def calls(events: list[dict[str, Any]], plugin: str, hook: str) -> list[dict[str, Any]]:
    return [
        e for e in events
        if e["event"] == "hook_call" and e["plugin"] == plugin and e["hook"] == hook
    ]  # fmt: skip


def test_with_tracing_on_every_hook_call_is_logged_with_plugin_hook_and_duration(tmp_path, site):
    events, _ = serve(tmp_path, site, "1")

    traced = [event for event in events if event["event"] == "hook_call"]
    assert traced and all(
        isinstance(e["duration_ms"], float) and e["duration_ms"] >= 0 for e in traced
    )
    assert {e["logger"] for e in traced} == {"butterflyfx.plugins"}
    assert calls(events, "storage.sqlite", "butterflyfx_storage")  # start-up hooks
    assert calls(events, "auth.apikey", "butterflyfx_startup")
    assert calls(events, "http", "butterflyfx_config_model")
    authenticated = calls(events, "auth.apikey", "butterflyfx_authenticate")
    # the health polls carry no key; the admin's request is let in, the wrong key refused
    assert [e.get("raised") for e in authenticated][-2:] == [None, "ProblemError"]
    lagging = calls(events, "lagging", "butterflyfx_on_request")
    assert len(lagging) >= 2  # one per request, after its response
    assert all(e["duration_ms"] >= LAG_SECONDS * 1000 * 0.9 for e in lagging)


def test_without_tracing_no_hook_call_is_logged(tmp_path, site):
    events, _ = serve(tmp_path, site, None)

    assert any(event["event"] == "worker_ready" for event in events)
    assert [event for event in events if event["event"] == "hook_call"] == []


@pytest.mark.parametrize(
    ("value", "traced"),
    [("1", True), ("yes", True), ("", False), ("0", False), ("false", False), (None, False)],
)
def test_the_switch_is_any_value_but_empty_0_false_or_no(value, traced):
    env = {} if value is None else {"BUTTERFLYFX_TRACE_PLUGINS": value}
    assert tracing_requested(env) is traced
