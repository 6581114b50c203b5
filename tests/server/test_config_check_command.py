"""`butterflyfx config check FILE`: says exactly what is wrong, or every setting in force."""

from __future__ import annotations

import json
from importlib.metadata import entry_points

import pytest


def write(tmp_path, text: str):
    path = tmp_path / "butterflyfx.toml"
    path.write_text(text)
    return path


def test_a_good_file_prints_every_setting_in_force(butterflyfx, tmp_path):
    path = write(
        tmp_path,
        'plugins = ["storage.sqlite", "http"]\n'
        "[server]\nport = 9000\nworkers = 2\n"
        "[storage.sqlite]\nbusy_timeout_ms = 250\n"
        "[http]\ndocs = false\n",
    )

    result = butterflyfx.run("config", "check", str(path))

    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["source"] == str(path)
    assert shown["plugins"] == ["storage.sqlite", "http"]
    assert (shown["server"]["port"], shown["server"]["workers"]) == (9000, 2)
    assert shown["server"]["timeout"] == 5.0  # a default, shown because it is in force
    assert shown["storage.sqlite"]["busy_timeout_ms"] == 250
    assert shown["storage.sqlite"]["synchronous"] == "full"
    assert shown["http"] == {"docs": False, "public_status": False}


@pytest.mark.parametrize(
    ("text", "section", "key"),
    [
        ('[storage.sqlite]\npaht = "/tmp/x.db"\n', "storage.sqlite", "paht"),
        ("[server]\nmax_conections = 10\n", "server", "max_conections"),
    ],
)
def test_an_unknown_key_names_the_file_the_section_and_the_key(
    butterflyfx, tmp_path, text, section, key
):
    path = write(tmp_path, text)

    result = butterflyfx.run("config", "check", str(path))

    assert result.returncode == 2
    assert result.stderr == f"butterflyfx: {path}, section [{section}], key '{key}': unknown key\n"
    assert result.stdout == ""


def test_a_section_for_a_plugin_not_loaded_is_named(butterflyfx, tmp_path):
    path = write(tmp_path, '[storage.postgres]\ndsn = "postgresql://db/butterflyfx"\n')

    result = butterflyfx.run("config", "check", str(path))

    assert result.returncode == 2
    assert f"{path}, section [storage.postgres]" in result.stderr
    assert "plugins list" in result.stderr


def test_environment_variables_show_in_the_effective_settings(butterflyfx, tmp_path):
    path = write(tmp_path, "[server]\nport = 9000\n[storage.sqlite]\nbusy_timeout_ms = 250\n")

    env = {"BUTTERFLYFX_SERVER__PORT": "9100", "BUTTERFLYFX_STORAGE_SQLITE__BUSY_TIMEOUT_MS": "10"}

    result = butterflyfx.run("config", "check", str(path), env=env)

    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["server"]["port"] == 9100
    assert shown["storage.sqlite"]["busy_timeout_ms"] == 10


def test_secrets_are_masked_whether_from_the_file_or_the_environment(
    butterflyfx, tmp_path, vault_plugin
):
    path = write(
        tmp_path,
        'plugins = ["storage.sqlite", "http", "vault"]\n[vault]\ntoken = "s3cr3t-in-file"\n',
    )

    from_file = butterflyfx.run("config", "check", str(path), env=vault_plugin)
    from_env = butterflyfx.run(
        "config",
        "check",
        str(path),
        env={**vault_plugin, "BUTTERFLYFX_VAULT__TOKEN": "s3cr3t-in-env"},
    )

    for result in (from_file, from_env):
        assert result.returncode == 0, result.stderr
        shown = json.loads(result.stdout)
        assert shown["vault"] == {"address": "https://vault.internal", "token": "********"}
        assert "s3cr3t" not in result.stdout + result.stderr


def test_an_unknown_plugin_lists_the_available_ones(butterflyfx, tmp_path, vault_plugin):
    path = write(tmp_path, 'plugins = ["storage.sqlite", "auth.ldap", "http"]\n')

    result = butterflyfx.run("config", "check", str(path), env=vault_plugin)

    assert result.returncode == 2
    installed = sorted({ep.name for ep in entry_points(group="butterflyfx")} | {"vault"})
    assert result.stderr == (
        f"butterflyfx: unknown plugin 'auth.ldap'; available plugins: {', '.join(installed)}\n"
    )
    assert {"auth.apikey", "http", "storage.sqlite", "vault"} <= set(installed)


@pytest.mark.parametrize(
    ("text", "problem"),
    [("plugins = [\n", "not valid TOML"), ('[server]\nport = "eighty"\n', "key 'port'")],
)
def test_a_broken_file_is_an_error_not_a_traceback(butterflyfx, tmp_path, text, problem):
    result = butterflyfx.run("config", "check", str(write(tmp_path, text)))

    assert result.returncode == 2
    assert result.stderr.startswith("butterflyfx: ") and problem in result.stderr
    assert "Traceback" not in result.stderr


def test_a_missing_file_is_named(butterflyfx, tmp_path):
    result = butterflyfx.run("config", "check", str(tmp_path / "absent.toml"))

    assert result.returncode == 2
    assert result.stderr == f"butterflyfx: {tmp_path / 'absent.toml'}: no such file\n"


@pytest.mark.parametrize(
    ("plugins", "missing"),
    [('["storage.sqlite"]', "serves HTTP"), ('["http"]', "provides storage")],
)
def test_a_plugin_set_that_could_never_serve_is_refused(butterflyfx, tmp_path, plugins, missing):
    result = butterflyfx.run("config", "check", str(write(tmp_path, f"plugins = {plugins}\n")))

    assert result.returncode == 2
    assert result.stderr.startswith(f"butterflyfx: no loaded plugin {missing} (none of ")
