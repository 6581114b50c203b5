"""`butterflyfx plugins`: which plugins run, from which distribution, hooking what."""

from __future__ import annotations

import json
from importlib.metadata import version


def by_name(rows):
    return {row["name"]: row for row in rows}


def test_the_default_plugins_are_listed_with_version_distribution_hooks_and_state(butterflyfx):
    result = butterflyfx.run("plugins", "--json")

    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [row["name"] for row in rows if row["enabled"]] == [
        "storage.sqlite", "graph.sql", "http", "auth.apikey", "auth.jwt", "ratelimit",
    ]  # fmt: skip
    plugins = by_name(rows)
    http = plugins["http"]
    assert http["state"] == "loaded"
    assert (http["version"], http["distribution"]) == (version("butterflyfx"), "butterflyfx")
    assert http["module"] == "butterflyfx.plugins.http"
    assert "butterflyfx_asgi_app" in http["hooks"]
    assert "butterflyfx_storage" in plugins["storage.sqlite"]["hooks"]
    assert plugins["graph.sql"]["hooks"] == ["butterflyfx_graph_engine"]
    assert "butterflyfx_authenticate" in plugins["auth.apikey"]["hooks"]
    assert "butterflyfx_commands" in plugins["auth.jwt"]["hooks"]
    assert "butterflyfx_rate_limit" in plugins["ratelimit"]["hooks"]
    memory = plugins["storage.memory"]
    assert (memory["enabled"], memory["state"]) == (False, "not enabled")
    assert memory["hooks"] == ["butterflyfx_storage"]


def test_a_third_party_plugin_is_listed_installed_then_loaded_once_enabled(
    butterflyfx, tmp_path, vault_plugin
):
    installed = by_name(json.loads(butterflyfx.run("plugins", "--json", env=vault_plugin).stdout))
    config = tmp_path / "butterflyfx.toml"
    config.write_text('plugins = ["storage.memory", "http", "vault"]\n')
    enabled = by_name(
        json.loads(
            butterflyfx.run("plugins", "--config", str(config), "--json", env=vault_plugin).stdout
        )
    )

    assert installed["vault"]["state"] == "not enabled"
    assert (installed["vault"]["distribution"], installed["vault"]["version"]) == (
        "butterflyfx-vault",
        "2.3.0",
    )
    assert installed["vault"]["hooks"] == ["butterflyfx_config_model"]
    assert enabled["vault"]["enabled"] and enabled["vault"]["state"] == "loaded"
    assert not enabled["storage.sqlite"]["enabled"]


def test_the_table_a_person_reads(butterflyfx):
    result = butterflyfx.run("plugins")

    assert result.returncode == 0, result.stderr
    header, *lines = result.stdout.splitlines()
    assert header.split() == ["NAME", "STATE", "VERSION", "DISTRIBUTION", "HOOKS"]
    http = next(line for line in lines if line.startswith("http "))
    assert "loaded" in http and "butterflyfx" in http and "asgi_app" in http
    memory = next(line for line in lines if line.startswith("storage.memory "))
    assert "not enabled" in memory


def test_a_config_error_stops_the_listing(butterflyfx, tmp_path):
    config = tmp_path / "butterflyfx.toml"
    config.write_text('plugins = ["http", "nope"]\n')

    result = butterflyfx.run("plugins", "--config", str(config))

    assert result.returncode == 2
    assert result.stderr.startswith("butterflyfx: unknown plugin 'nope'; available plugins: ")
