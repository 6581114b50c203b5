"""The example third-party plugin works the way its author and its users meet it.

``examples/third_party_plugin`` is built into a wheel with pip, exactly as its author would
publish it, and the wheel is unpacked into a temporary folder put on ``sys.path``: an
installation that never touches this environment's site-packages. From there the
plugin is found by its entry point, enabled by name in the example config file, and
exercised through the same code paths ``butterflyfx serve`` uses, then by a real
``butterflyfx`` process.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from butterflyfx.core.config import ConfigError, LoadedConfig, read_config
from butterflyfx.core.context import ServerContext
from butterflyfx.core.plugins import PluginError, available_plugins
from butterflyfx.server.asgi import application_for
from butterflyfx.testing.process import free_port, wait_until_ready
from butterflyfx.testing.storage import StoreConformance

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "third_party_plugin"
CONFIG = EXAMPLE / "butterflyfx.toml"
PROJECT = tomllib.loads((EXAMPLE / "pyproject.toml").read_text(encoding="utf-8"))["project"]
HELLO_HOOKS = [
    "butterflyfx_config_model",
    "butterflyfx_health",
    "butterflyfx_on_event",
    "butterflyfx_routes",
    "butterflyfx_shutdown",
    "butterflyfx_startup",
]
DOUBLE = "lambda **kw: kw.get('x', 0) * 2"
COMMAND_TIMEOUT = 120.0


@pytest.fixture(scope="module")
def hello_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example package's wheel, built by pip and unpacked into a folder of its own."""
    work = tmp_path_factory.mktemp("hello")
    source = work / "source"  # a copy: building writes build/ and *.egg-info beside the code
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__py*"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps",
         "--quiet", "--wheel-dir", str(work / "wheels"), str(source)],
        check=True, timeout=300, cwd=work,
    )  # fmt: skip
    (wheel,) = (work / "wheels").glob("butterflyfx_hello-*.whl")
    site = work / "site"
    with zipfile.ZipFile(wheel) as unpacked:
        unpacked.extractall(site)
    return site


def forget_imported(prefix: str) -> None:
    for name in [m for m in sys.modules if m == prefix or m.startswith(prefix + ".")]:
        del sys.modules[name]


@pytest.fixture
def installed(hello_site: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """``butterflyfx-hello`` installed for this test only."""
    monkeypatch.syspath_prepend(str(hello_site))
    yield hello_site
    forget_imported("butterflyfx_hello")


def example_config(tmp_path: Path, env: dict[str, str] | None = None) -> LoadedConfig:
    """The example config file as ``butterflyfx serve --data-dir`` would read it."""
    return read_config(CONFIG, env or {}, {"data_dir": tmp_path / "data"})


def run(ctx: ServerContext, story: Any) -> Any:
    async def main() -> Any:
        await ctx.start()
        try:
            return await story(ctx)
        finally:
            await ctx.stop()

    return asyncio.run(main())


# -- installing and enabling --------------------------------------------------------


def test_installing_the_wheel_is_what_makes_hello_available(hello_site, monkeypatch):
    assert "hello" not in available_plugins()

    monkeypatch.syspath_prepend(str(hello_site))
    entry = available_plugins()["hello"]

    assert entry.value == "butterflyfx_hello"
    assert entry.dist is not None
    assert (entry.dist.name, entry.dist.version) == (PROJECT["name"], PROJECT["version"])
    assert {"storage.sqlite", "http"} <= set(available_plugins())  # the built-ins still there


def test_the_example_config_loads_hello_by_name_with_its_section(installed, tmp_path):
    ctx = ServerContext.build(example_config(tmp_path))

    assert ctx.plugins.names == ["storage.sqlite", "http", "hello"]
    info = ctx.plugins.info["hello"]
    assert (info.distribution, info.version, info.module) == (
        "butterflyfx-hello", "1.0.0", "butterflyfx_hello"
    )  # fmt: skip
    assert info.hooks == HELLO_HOOKS
    settings = ctx.section("hello")
    assert (settings.greeting, settings.summary_file) == ("Grüß Gott", None)


def test_an_environment_variable_overrides_the_greeting_in_the_file(installed, tmp_path):
    ctx = ServerContext.build(example_config(tmp_path, {"BUTTERFLYFX_HELLO__GREETING": "Moin"}))

    assert ctx.section("hello").greeting == "Moin"


# -- mistakes stop start-up, naming what is wrong -----------------------------------


def test_a_typo_in_the_hello_section_names_the_file_the_section_and_the_key(installed, tmp_path):
    path = tmp_path / "butterflyfx.toml"
    path.write_text(CONFIG.read_text(encoding="utf-8").replace("greeting =", "greting ="))

    with pytest.raises(ConfigError) as caught:
        ServerContext.build(read_config(path))
    assert str(caught.value) == f"{path}, section [hello], key 'greting': unknown key"

    empty = read_config(CONFIG, {"BUTTERFLYFX_HELLO__GREETING": ""})
    with pytest.raises(ConfigError, match=r"section \[hello\], key 'greeting': .*at least 1"):
        ServerContext.build(empty)


def test_a_hello_section_while_hello_is_not_enabled_is_refused(installed, tmp_path):
    config = example_config(tmp_path, {"BUTTERFLYFX_PLUGINS": "storage.sqlite,http"})

    with pytest.raises(ConfigError, match=r"section \[hello\]: no loaded plugin has this section"):
        ServerContext.build(config)


def test_a_misspelled_plugin_name_lists_every_installed_plugin_hello_included(installed, tmp_path):
    config = example_config(tmp_path, {"BUTTERFLYFX_PLUGINS": "storage.sqlite,http,helo"})

    with pytest.raises(PluginError) as caught:
        ServerContext.build(config)
    message = str(caught.value)
    assert message.startswith("unknown plugin 'helo'; available plugins: ")
    listed = message.split("available plugins: ", 1)[1].split(", ")
    assert {"hello", "http", "storage.memory", "storage.sqlite"} <= set(listed)
    assert listed == sorted(listed)


def install_one_module_plugin(site: Path, name: str, module: str, source: str) -> None:
    """A distribution as pip leaves it: a ``.dist-info`` with the entry point, and the module."""
    dist_info = site / f"{module}-0.1.0.dist-info"
    dist_info.mkdir(parents=True)
    distribution = module.replace("_", "-")
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 0.1.0\n"
    )
    (dist_info / "entry_points.txt").write_text(f"[butterflyfx]\n{name} = {module}\n")
    (site / f"{module}.py").write_text(source)


def test_a_misspelled_hook_in_an_installed_plugin_stops_start_up(tmp_path, monkeypatch):
    install_one_module_plugin(
        tmp_path / "site", "warmup", "butterflyfx_warmup",
        "from butterflyfx.core.hookspecs import hookimpl\n\n\n"
        "@hookimpl\n"
        "def butterflyfx_startupp(ctx):\n"
        "    raise AssertionError('a hook nobody calls must never run')\n",
    )  # fmt: skip
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    config = read_config(None, {"BUTTERFLYFX_PLUGINS": "storage.memory,warmup"})

    try:
        assert available_plugins()["warmup"].value == "butterflyfx_warmup"
        with pytest.raises(PluginError) as caught:
            ServerContext.build(config)
    finally:
        forget_imported("butterflyfx_warmup")
    message = str(caught.value)
    assert "unknown hook 'butterflyfx_startupp'" in message
    assert "butterflyfx_warmup" in message


# -- the plugin at work -------------------------------------------------------------


def test_a_server_with_hello_greets_counts_events_and_reports_them_in_health(installed, tmp_path):
    ctx = ServerContext.build(example_config(tmp_path))
    app = application_for(ctx)  # what `butterflyfx serve` serves: the http plugin's app

    async def story() -> dict[str, Any]:
        seen: dict[str, Any] = {}
        async with app.test_app() as running:  # its lifespan starts and stops the context
            client = running.test_client()
            seen["before"] = await (await client.get("/api/v1/hello")).get_json()
            created = await client.post(
                "/api/v1/substrates", json={"expression_type": "lambda", "expression_code": DOUBLE}
            )
            substrate_id = (await created.get_json())["substrate_id"]
            invoked = await client.post(
                f"/api/v1/substrates/{substrate_id}/invoke", json={"parameters": {"x": 21}}
            )
            seen["result"] = (await invoked.get_json())["result"]
            await client.patch(f"/api/v1/substrates/{substrate_id}", json={"metadata": {"n": 1}})
            named = await client.get("/api/v1/hello/Ada", headers={"X-Request-ID": "ada-1"})
            seen["named"] = (named.headers["X-Request-ID"], await named.get_json())
            seen["after"] = await (await client.get("/api/v1/hello")).get_json()
            health = await client.get("/api/v1/health")
            seen["health"] = (health.status_code, await health.get_json())
        return seen

    seen = asyncio.run(story())

    assert seen["before"] == {"greeting": "Grüß Gott", "events": {}}
    assert seen["result"] == 42
    assert seen["named"] == ("ada-1", {"greeting": "Grüß Gott, Ada!"})
    assert seen["after"] == {
        "greeting": "Grüß Gott",
        "events": {"substrate.created": 1, "substrate.invoked": 1, "substrate.updated": 1},
    }
    status, health = seen["health"]
    assert (status, health["status"]) == (200, "ok")
    assert health["plugins"]["hello"] == {"status": "ok", "events_heard": 3}


def test_hello_appends_its_counts_to_the_summary_file_each_time_its_server_stops(
    installed, tmp_path
):
    summary = tmp_path / "hello-summary.jsonl"
    env = {"BUTTERFLYFX_HELLO__SUMMARY_FILE": str(summary)}

    async def create_two(ctx: ServerContext) -> str:
        first, _ = await ctx.substrates.create("default", "lambda", DOUBLE)
        await ctx.substrates.create("default", "constant", "42")
        return first.substrate_id

    substrate_id = run(ServerContext.build(example_config(tmp_path, env)), create_two)

    async def invoke_twice(ctx: ServerContext) -> None:  # a second life of the server
        for x in (1, 2):
            await ctx.substrates.invoke("default", substrate_id, {"x": x})

    run(ServerContext.build(example_config(tmp_path, env)), invoke_twice)

    lines = [json.loads(line) for line in summary.read_text(encoding="utf-8").splitlines()]
    assert [line["events"] for line in lines] == [
        {"substrate.created": 2},
        {"substrate.invoked": 2},
    ]
    assert {line["worker"] for line in lines} == {str(os.getpid())}


def test_a_summary_file_in_a_missing_folder_stops_start_up_naming_hello(installed, tmp_path):
    missing = tmp_path / "no-such-folder" / "summary.jsonl"
    ctx = ServerContext.build(
        example_config(tmp_path, {"BUTTERFLYFX_HELLO__SUMMARY_FILE": str(missing)})
    )

    with pytest.raises(PluginError, match="plugin 'hello' failed to start: FileNotFoundError"):
        asyncio.run(ctx.start())
    assert ctx.states["hello"] == "failed"


# -- the butterflyfx command, in processes of its own ---------------------------------


def cli_environment(site: Path, **extra: str) -> dict[str, str]:
    """This environment without BUTTERFLYFX_ settings, with the unpacked wheel importable."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("BUTTERFLYFX_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    return {**env, **extra}


def butterflyfx(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "butterflyfx.server.cli", *args],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=COMMAND_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


def test_the_plugins_command_lists_hello_from_its_distribution(hello_site, tmp_path):
    result = butterflyfx(
        "plugins", "--config", str(CONFIG), "--json", env=cli_environment(hello_site), cwd=tmp_path
    )

    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["hello"] == {
        "name": "hello",
        "enabled": True,
        "state": "loaded",
        "version": "1.0.0",
        "distribution": "butterflyfx-hello",
        "module": "butterflyfx_hello",
        "hooks": HELLO_HOOKS,
    }


def test_config_check_shows_the_hello_section_in_force(hello_site, tmp_path):
    env = cli_environment(hello_site, BUTTERFLYFX_HELLO__SUMMARY_FILE="summary.jsonl")
    result = butterflyfx("config", "check", str(CONFIG), env=env, cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["hello"] == {
        "greeting": "Grüß Gott",
        "summary_file": "summary.jsonl",
    }


def test_butterflyfx_serve_with_the_example_config_serves_hello(hello_site, tmp_path):
    port = free_port()
    summary = tmp_path / "summary.jsonl"
    env = cli_environment(hello_site, BUTTERFLYFX_HELLO__SUMMARY_FILE=str(summary))
    log = tmp_path / "server.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "butterflyfx.server.cli", "serve", "--config", str(CONFIG),
             "--port", str(port), "--data-dir", str(tmp_path / "data"), "--log-format", "json"],
            env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=stderr,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(
            process, f"{url}/api/v1/health", deadline=COMMAND_TIMEOUT,
            log=lambda: log.read_text(errors="replace"),
        )  # fmt: skip
        with httpx.Client(base_url=url, timeout=30.0, trust_env=False) as client:
            created = client.post(
                "/api/v1/substrates", json={"expression_type": "lambda", "expression_code": DOUBLE}
            )
            hello = client.get("/api/v1/hello")
            health = client.get("/api/v1/health").json()
        process.send_signal(signal.SIGTERM)
        code = process.wait(COMMAND_TIMEOUT)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(COMMAND_TIMEOUT)

    assert created.status_code == 201
    assert hello.json() == {"greeting": "Grüß Gott", "events": {"substrate.created": 1}}
    assert health["plugins"]["hello"] == {"status": "ok", "events_heard": 1}
    assert code == 0, log.read_text(errors="replace")
    line = json.loads(summary.read_text(encoding="utf-8"))
    assert line == {"worker": str(process.pid), "events": {"substrate.created": 1}}


# -- a storage plugin's own test file, as docs/plugins.md shows it -------------------


def conformance_file_in_the_docs() -> str:
    page = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```$", page, re.DOTALL | re.MULTILINE)
    (shown,) = [block for block in blocks if "(StoreConformance)" in block]
    return shown


def test_the_conformance_test_file_shown_in_the_docs_runs_every_story(tmp_path):
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test_conformance.py").write_text(conformance_file_in_the_docs(), encoding="utf-8")
    stories = [name for name in dir(StoreConformance) if name.startswith("test_")]

    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rN", "tests"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env=cli_environment(tmp_path),
    )  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr
    counts = dict(
        (word, int(number))
        for number, word in re.findall(r"(\d+) (passed|skipped|failed|error)", result.stdout)
    )
    assert counts.get("passed", 0) + counts.get("skipped", 0) == len(stories), result.stdout
    assert counts.get("passed", 0) > 0
