"""Every config file in examples/ is one a user can copy: it checks, loads and serves.

The files are found anew on each run, so a new example is covered without touching this test.
An example that names PostgreSQL or Redis serves here on the test services, in a schema and
under a key prefix of the test's own (:func:`on_test_services`).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

from butterflyfx.core.config import DEFAULT_PLUGINS, effective_settings, read_config
from butterflyfx.core.context import ServerContext
from butterflyfx.core.problems import ProblemError
from butterflyfx.testing import services

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.toml"))
INSTALLED_SCRIPT = Path(sys.executable).parent / "butterflyfx"
COMMAND_TIMEOUT = 90.0  # a cold interpreter importing every plugin on a busy machine
MULTIPLY = "lambda **kw: kw.get('x', 0) * kw.get('y', 0)"


def example(name: str) -> Path:
    return ROOT / "examples" / name


def without_butterflyfx_variables() -> dict[str, str]:
    """This process's environment minus any BUTTERFLYFX_ setting a developer may have set."""
    return {key: value for key, value in os.environ.items() if not key.startswith("BUTTERFLYFX_")}


def build(path: Path | None, env: dict[str, str] | None = None, **flags: Any) -> ServerContext:
    """The context ``butterflyfx serve --config PATH`` builds: every section validated."""
    return ServerContext.build(read_config(path, env or {}, flags))


def settings_shown(ctx: ServerContext) -> dict[str, Any]:
    shown = effective_settings(ctx.config)
    del shown["source"]
    return shown


def keys_in_file(path: Path, sections: set[str]) -> list[tuple[str, str, Any]]:
    """Every ``(section, key, value)`` the file sets, dotted sections resolved.

    A key outside any known section fails the test: it would mean the file sets something
    no section validated.
    """
    found: list[tuple[str, str, Any]] = []

    def walk(table: dict[str, Any], prefix: str) -> None:
        for key, value in table.items():
            dotted = prefix + key
            if dotted in sections:
                found.extend((dotted, name, item) for name, item in value.items())
            elif isinstance(value, dict):
                walk(value, dotted + ".")
            else:
                raise AssertionError(f"{path.name}: {dotted!r} belongs to no validated section")

    table = tomllib.loads(path.read_text(encoding="utf-8"))
    table.pop("plugins", None)
    walk(table, "")
    return found


@contextmanager
def on_test_services(path: Path) -> Iterator[dict[str, str]]:
    """The environment that points the example's PostgreSQL and Redis settings at the
    test services: each database URL at the test database, each schema it names at a new
    schema of the test's own, each Redis URL at the test Redis, and its key prefixes and
    channels under a prefix of the test's own. All are removed afterwards."""
    env: dict[str, str] = {}
    with ExitStack() as owned:
        schemas: dict[str, str] = {}
        prefix: list[str] = []
        for section, key, value in keys_in_file(path, {"server", *build(path).config.sections}):
            if not isinstance(value, str):
                continue
            name = f"BUTTERFLYFX_{section.upper().replace('.', '_')}__{key.upper()}"
            if value.startswith(("postgresql://", "postgres://")):
                env[name] = services.POSTGRES_DSN
            elif key == "schema":
                if value not in schemas:
                    schemas[value] = owned.enter_context(services.postgres_schema())
                env[name] = schemas[value]
            elif value.startswith(("redis://", "rediss://")):
                env[name] = services.REDIS_URL
            elif key in ("key_prefix", "channel"):
                prefix = prefix or [owned.enter_context(services.redis_prefix())]
                env[name] = f"{prefix[0]}:{key}"
        yield env


def test_the_examples_the_docs_point_to_exist():
    names = {path.name for path in EXAMPLES}
    assert {"minimal.toml", "memory.toml", "production-sqlite.toml",
            "production-postgres.toml"} <= names  # fmt: skip


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_config_check_accepts_the_example_and_prints_what_the_server_would_use(path, tmp_path):
    result = subprocess.run(
        [str(INSTALLED_SCRIPT), "config", "check", str(path)],
        cwd=tmp_path, env=without_butterflyfx_variables(), capture_output=True, text=True,
        timeout=COMMAND_TIMEOUT, stdin=subprocess.DEVNULL,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    shown = json.loads(result.stdout)
    assert shown.pop("source") == str(path)
    assert shown == settings_shown(build(path))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_every_key_the_example_sets_is_validated_and_in_force(path):
    ctx = build(path)
    in_force = settings_shown(ctx)
    sections = {"server", *ctx.config.sections}

    keys = keys_in_file(path, sections)

    assert keys, f"{path.name} sets nothing"
    for section, key, value in keys:
        assert in_force[section][key] == value, f"{path.name}: {section}.{key}"


def test_minimal_spells_out_exactly_the_embedded_defaults():
    assert settings_shown(build(example("minimal.toml"))) == settings_shown(build(None))
    assert build(example("minimal.toml")).config.plugins == DEFAULT_PLUGINS


def test_a_server_on_memory_toml_serves_substrates_then_forgets_them(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative paths would land here: nothing must

    async def story() -> tuple[Any, ...]:
        ctx = build(example("memory.toml"))
        await ctx.start()
        try:
            substrate, created = await ctx.substrates.create("default", "lambda", MULTIPLY)
            invocation = await ctx.substrates.invoke(
                "default", substrate.substrate_id, {"x": 5, "y": 7}
            )
            await ctx.substrates.flush_invocations()
            stats = await ctx.store.invocation_stats("default", substrate.identity)
            storage = ctx.storage_plugin
        finally:
            await ctx.stop()

        restarted = build(example("memory.toml"))
        await restarted.start()
        try:
            with pytest.raises(ProblemError) as missing:
                await restarted.substrates.get("default", substrate.substrate_id)
        finally:
            await restarted.stop()
        return storage, created, invocation.result, stats.count, missing.value.problem.status

    storage, created, result, calls, status_after_restart = asyncio.run(story())

    assert storage == "storage.memory"
    assert created and result == 35 and calls == 1
    assert status_after_restart == 404
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_every_example_starts_and_serves_with_its_files_moved_aside(path, tmp_path):
    # As an operator would on a machine without /var/lib/butterflyfx: --data-dir, and the
    # database file through the environment (ignored when storage.sqlite is not loaded);
    # PostgreSQL and Redis are the test's own.
    env = {"BUTTERFLYFX_STORAGE_SQLITE__PATH": str(tmp_path / "moved.sqlite3")}
    with on_test_services(path) as moved:
        env.update(moved)
        result = asyncio.run(serve_once(path, env, tmp_path))
    assert result == 42


async def serve_once(path: Path, env: dict[str, str], tmp_path: Path) -> Any:
    """Start a server on the example, make and invoke a substrate, stop; the result."""
    ctx = build(path, env, data_dir=str(tmp_path / "data"))
    await ctx.start()
    try:
        substrate, _ = await ctx.substrates.create("default", "lambda", MULTIPLY)
        invocation = await ctx.substrates.invoke(
            "default", substrate.substrate_id, {"x": 6, "y": 7}
        )
    finally:
        await ctx.stop()
    return invocation.result
