"""The example storage plugin, ``examples/plugins/butterflyfx-storage-example``, works as its
README and docs/plugins.md say, installed the way CI installs it.

``make test`` installs the folder into this environment (the Makefile's install step, in
editable mode), as a user installs a plugin next to the server. Then: the plugin's own tests
pass (the storage and graph conformance suites, through butterflyfx's pytest plugin), and a
real ``butterflyfx serve`` on the example's config file keeps substrates and relationships
across a restart, naming the plugin and its distribution in ``/api/v1/ready`` and
``/-/plugins``. When the plugin is not installed (pytest run without make), it is built
into a wheel and installed into a folder of its own; under ``BUTTERFLYFX_REQUIRE_SERVICES=1``
(CI) that is a failure instead, since CI must test what make installs.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import asyncpg
import httpx
import pytest

from butterflyfx.testing.services import redis_client

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "plugins" / "butterflyfx-storage-example"
CONFIG = EXAMPLE / "butterflyfx.toml"
README = EXAMPLE / "README.md"
PLUGINS_PAGE = ROOT / "docs" / "plugins.md"
DISTRIBUTION = "butterflyfx-storage-example"
TIMEOUT = 300.0  # only keeps a broken run from hanging; nothing here is timed
SHELL_BLOCK = re.compile(r"^```shell\n(.*?)^```$", re.DOTALL | re.MULTILINE)
EXCERPT = re.compile(r"^<!-- excerpt: (\S+) -->\n```[\w-]*\n(.*?)^```$", re.DOTALL | re.MULTILINE)
DOUBLE = "lambda **kw: kw.get('x', 0) * 2"
INCREMENT = "lambda **kw: kw.get('x', 0) + 1"


def readme_lines() -> list[str]:
    """Every line of the README's ```shell blocks, in order."""
    text = README.read_text(encoding="utf-8")
    return [line for block in SHELL_BLOCK.findall(text) for line in block.splitlines() if line]


def installed_here() -> bool:
    """Whether this environment has the example installed from this folder (not a copy
    from elsewhere, whose code would be tested instead)."""
    try:
        importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return False
    found = subprocess.run(
        [sys.executable, "-c", "import butterflyfx_storage_example as m; print(m.__file__)"],
        capture_output=True, text=True, timeout=TIMEOUT, cwd=ROOT,
    )  # fmt: skip
    if found.returncode != 0:
        return False
    return Path(found.stdout.strip()).resolve().is_relative_to(EXAMPLE)


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """What a process's environment needs for the plugin: nothing when make installed it,
    else ``PYTHONPATH`` naming a folder the wheel was installed into."""
    if installed_here():
        return {}
    if os.environ.get("BUTTERFLYFX_REQUIRE_SERVICES") == "1":
        pytest.fail(
            f"{DISTRIBUTION} is not installed from {EXAMPLE}: `make test` installs it (the "
            "Makefile's install step), and BUTTERFLYFX_REQUIRE_SERVICES=1 requires that"
        )
    work = tmp_path_factory.mktemp("storage-example")
    source = work / "source"  # a copy: building writes build/ and *.egg-info beside the code
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__py*"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    steps = [
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", str(work), str(source)],
        [*pip, "install", "--no-deps", "--no-index", "--target", str(work / "site"),
         "--find-links", str(work), DISTRIBUTION],
    ]  # fmt: skip
    for step in steps:
        result = subprocess.run(step, capture_output=True, text=True, timeout=TIMEOUT, cwd=work)
        if result.returncode != 0:
            pytest.skip(
                f"{DISTRIBUTION} is not installed (run `make test`) and building it failed: "
                f"{result.stderr.strip()[-500:]}"
            )
    paths = [str(work / "site"), os.environ.get("PYTHONPATH")]
    return {"PYTHONPATH": os.pathsep.join(filter(None, paths))}


# -- what the README and docs/plugins.md show is what the folder holds ------------------


def test_every_shell_line_of_the_readme_is_one_this_file_runs():
    known = (
        r"pip install \./examples/plugins/butterflyfx-storage-example",
        r"cd examples/plugins/butterflyfx-storage-example",
        r"butterflyfx (plugins|serve) --config butterflyfx\.toml",
        r"python -m pytest examples/plugins/butterflyfx-storage-example/tests",
    )
    strange = [line for line in readme_lines() if not any(re.fullmatch(p, line) for p in known)]
    assert readme_lines() and strange == [], f"teach this test to run these README lines: {strange}"


def test_the_readme_shows_the_example_config_file_as_it_is():
    text = README.read_text(encoding="utf-8")
    (shown,) = re.findall(r"^```toml\n(.*?)^```$", text, re.DOTALL | re.MULTILINE)

    assert shown == CONFIG.read_text(encoding="utf-8")


def test_every_excerpt_docs_plugins_shows_of_the_example_is_in_its_file():
    excerpts = EXCERPT.findall(PLUGINS_PAGE.read_text(encoding="utf-8"))
    shown = {path for path, _ in excerpts}

    assert {"examples/plugins/butterflyfx-storage-example/pyproject.toml"} <= shown
    for path, text in excerpts:
        assert (ROOT / path).is_file(), f"docs/plugins.md shows an excerpt of {path}, not a file"
        assert text in (ROOT / path).read_text(encoding="utf-8"), (
            f"docs/plugins.md shows an excerpt of {path} that the file does not contain: "
            "paste it again"
        )


# -- the plugin's own tests ----------------------------------------------------------


def test_the_plugins_own_tests_pass_with_the_pytest_plugin_of_butterflyfx(plugin_env):
    (line,) = [line for line in readme_lines() if line.startswith("python -m pytest ")]
    _python, *args = shlex.split(line)
    env = {key: value for key, value in os.environ.items() if not key.startswith("BUTTERFLYFX_")}

    result = subprocess.run(
        [sys.executable, *args, "-q", "-p", "no:cacheprovider"],
        cwd=ROOT, env={**env, **plugin_env, "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL,
    )  # fmt: skip

    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    counts = {
        word: int(n) for n, word in re.findall(r"(\d+) (passed|skipped|failed)", result.stdout)
    }
    # The store keeps its data, so every durability story of the suite runs: nothing skips.
    assert counts.get("passed", 0) > 100 and "skipped" not in counts, result.stdout[-2000:]


def test_the_plugins_command_lists_it_loaded_from_its_distribution(plugin_env, tmp_path):
    (listing,) = [line for line in readme_lines() if line.startswith("butterflyfx plugins ")]
    env = {key: value for key, value in os.environ.items() if not key.startswith("BUTTERFLYFX_")}

    result = subprocess.run(
        [sys.executable, "-m", "butterflyfx.server.cli", *shlex.split(listing)[1:]],
        cwd=EXAMPLE, env={**env, **plugin_env}, capture_output=True, text=True,
        timeout=TIMEOUT, stdin=subprocess.DEVNULL,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()[1:]}
    assert rows["storage.example"] == [
        "storage.example", "loaded", "1.0.0", DISTRIBUTION, "config_model,", "storage"
    ]  # fmt: skip


# -- a real server on the example's config file --------------------------------------


def test_a_server_on_the_example_config_keeps_substrates_across_a_restart(
    plugin_env, butterflyfx_server
):
    server = butterflyfx_server.start(config=CONFIG, env=plugin_env)
    assert server.admin_key, "auth.apikey prints an admin key on a first start"
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=60.0) as client:
        double = client.post(
            "/api/v1/substrates",
            json={"expression_type": "lambda", "expression_code": DOUBLE,
                  "metadata": {"name": "double", "蝴蝶": [1, 2.5, None]}},
        )  # fmt: skip
        increment = client.post(
            "/api/v1/substrates", json={"expression_type": "lambda", "expression_code": INCREMENT}
        )
        doomed = client.post(
            "/api/v1/substrates", json={"expression_type": "lambda", "expression_code": "lambda: 0"}
        )
        ids = [answer.json()["substrate_id"] for answer in (double, increment, doomed)]
        read = client.get(f"/api/v1/substrates/{ids[0]}")
        invoked = client.post(f"/api/v1/substrates/{ids[0]}/invoke", json={"parameters": {"x": 21}})
        related = [
            client.post(
                "/api/v1/relationships",
                json={"source_id": ids[0], "target_id": target, "relationship_type": "dependency"},
            )
            for target in ids[1:]
        ]
        deleted = client.delete(f"/api/v1/substrates/{ids[2]}")
        gone = client.get(f"/api/v1/substrates/{ids[2]}")
        outgoing = client.get(f"/api/v1/relationships/outgoing/{ids[0]}").json()["items"]
        ready = client.get("/api/v1/ready")
        plugins = client.get("/-/plugins")

    assert [answer.status_code for answer in (double, increment, doomed)] == [201] * 3
    assert read.status_code == 200 and read.json() == double.json()
    assert invoked.status_code == 200 and invoked.json()["result"] == 42
    assert [answer.status_code for answer in related] == [201, 201]
    assert deleted.status_code == 204 and gone.status_code == 404
    assert [item["target_id"] for item in outgoing] == [ids[1]]  # the other went with ids[2]
    assert ready.status_code == 200, ready.text
    store_state = ready.json()["plugins"]["storage.example"]
    assert store_state["status"] == "ok"
    assert store_state["path"] == str(server.data_dir / "substrates.jsonl")
    assert plugins.status_code == 200, plugins.text
    (row,) = [row for row in plugins.json()["plugins"] if row["name"] == "storage.example"]
    assert (row["enabled"], row["distribution"], row["version"]) == (True, DISTRIBUTION, "1.0.0")
    assert row["module"] == "butterflyfx_storage_example"

    again = server.restart()
    with httpx.Client(base_url=again.url, headers=again.headers, timeout=60.0) as client:
        read_again = [client.get(f"/api/v1/substrates/{i}") for i in ids]
        outgoing_again = client.get(f"/api/v1/relationships/outgoing/{ids[0]}").json()["items"]
        stats = client.get("/api/v1/query/stats").json()
        ready_again = client.get("/api/v1/ready")

    assert [answer.status_code for answer in read_again] == [200, 200, 404]
    assert read_again[0].json() == double.json() and read_again[1].json() == increment.json()
    assert outgoing_again == outgoing
    assert stats["storage"] == "storage.example"
    assert stats["substrates"] == 2 and stats["relationships"]["total"] == 1
    assert stats["invocations"]["count"] == 1
    assert ready_again.status_code == 200
    assert ready_again.json()["plugins"]["storage.example"]["substrates"] == 2
    assert again.stop() == 0, again.log()


# -- the pytest plugin, as any project's tests meet it ----------------------------------

THIRD_PARTY_TESTS = textwrap.dedent(
    """
    import asyncio, json, os
    from pathlib import Path

    import asyncpg, redis

    from butterflyfx.testing.process import http_status

    RECORD = Path(os.environ["RECORD"])


    def test_a_schema_of_its_own(butterflyfx_postgres_schema):
        place = butterflyfx_postgres_schema

        async def make_a_table():
            db = await asyncpg.connect(place.dsn, timeout=10)
            try:
                await db.execute(f'CREATE SCHEMA "{place.schema}"')
                await db.execute(f'CREATE TABLE "{place.schema}".kept (x int)')
            finally:
                await db.close()

        asyncio.run(make_a_table())
        (RECORD / "postgres.json").write_text(json.dumps([place.dsn, place.schema]))


    def test_a_key_prefix_of_its_own(butterflyfx_redis_prefix):
        place = butterflyfx_redis_prefix
        client = redis.Redis.from_url(place.url)
        client.set(f"{place.prefix}:kept", "1")
        client.close()
        (RECORD / "redis.json").write_text(json.dumps([place.url, place.prefix]))


    def test_a_real_server(butterflyfx_server):
        server = butterflyfx_server.start(["storage.memory", "http"])
        assert http_status(server.url + "/api/v1/health") == 200
        assert server.stop() == 0
    """
)


async def _schema_exists(dsn: str, schema: str) -> bool:
    db = await asyncpg.connect(dsn, timeout=10)
    try:
        query = "SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1"
        return bool(await db.fetchval(query, schema))
    finally:
        await db.close()


def test_a_projects_tests_get_the_fixtures_with_no_conftest_and_leave_nothing(tmp_path):
    project, record = tmp_path / "project", tmp_path / "record"
    project.mkdir()
    record.mkdir()
    (project / "test_with_fixtures.py").write_text(THIRD_PARTY_TESTS, encoding="utf-8")

    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider"],
        cwd=project, env={**os.environ, "RECORD": str(record), "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL,
    )  # fmt: skip

    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    if "skipped" in result.stdout:  # a service is missing, and nothing requires it here
        pytest.skip(f"the project's tests skipped: {result.stdout[-500:]}")
    assert "3 passed" in result.stdout, result.stdout[-2000:]
    dsn, schema = json.loads((record / "postgres.json").read_text())
    url, prefix = json.loads((record / "redis.json").read_text())
    assert not asyncio.run(_schema_exists(dsn, schema)), "the schema was not dropped"
    client = redis_client(url)
    try:
        assert list(client.scan_iter(match=f"{prefix}:*")) == [], "the keys were not deleted"
    finally:
        client.close()
