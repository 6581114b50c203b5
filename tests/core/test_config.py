"""One TOML file configures the server; mistakes name the file, the section and the key."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from butterflyfx.core.config import (
    DEFAULT_PLUGINS,
    ConfigError,
    StrictModel,
    effective_settings,
    read_config,
    validate_sections,
)


class SqliteSection(StrictModel):
    path: str | None = None
    busy_timeout_ms: int = 5000


class JwtSection(StrictModel):
    secret: str | None = None
    issuer: str = "butterflyfx"


MODELS: dict[str, type[BaseModel]] = {"storage.sqlite": SqliteSection, "auth.jwt": JwtSection}


def write(tmp_path, text: str):
    path = tmp_path / "butterflyfx.toml"
    path.write_text(text)
    return path


def test_with_no_file_the_embedded_defaults_serve_sqlite_with_keys_logins_and_limits():
    config = read_config(None)
    assert config.source == "<embedded defaults>"
    assert config.plugins == DEFAULT_PLUGINS == [
        "storage.sqlite", "graph.sql", "http", "auth.apikey", "auth.jwt", "ratelimit",
    ]  # fmt: skip
    assert str(config.server.data_dir) == "butterflyfx-data"
    assert config.server.port == 8000


def test_a_file_names_plugins_and_their_sections(tmp_path):
    path = write(
        tmp_path,
        'plugins = ["storage.sqlite", "auth.jwt"]\n'
        "[server]\nport = 9001\nworkers = 2\n"
        '[storage.sqlite]\npath = "/tmp/x.db"\n'
        '[auth.jwt]\nsecret = "s3cret"\n',
    )
    config = read_config(path)
    validate_sections(config, MODELS)
    assert config.plugins == ["storage.sqlite", "auth.jwt"]
    assert (config.server.port, config.server.workers) == (9001, 2)
    assert config.section("storage.sqlite") == SqliteSection(path="/tmp/x.db")
    assert config.section("auth.jwt").secret == "s3cret"


def test_an_unknown_key_names_file_section_and_key(tmp_path):
    path = write(tmp_path, '[storage.sqlite]\npaht = "/tmp/x.db"\n')
    config = read_config(path)
    with pytest.raises(ConfigError) as caught:
        validate_sections(config, MODELS)
    error = caught.value
    assert (error.source, error.section, error.key) == (str(path), "storage.sqlite", "paht")
    assert str(path) in str(error) and "[storage.sqlite]" in str(error) and "'paht'" in str(error)


def test_a_wrong_type_in_server_names_the_key(tmp_path):
    path = write(tmp_path, '[server]\nport = "eighty"\n')
    with pytest.raises(ConfigError) as caught:
        read_config(path)
    assert (caught.value.section, caught.value.key) == ("server", "port")


def test_a_section_no_loaded_plugin_owns_is_an_error(tmp_path):
    path = write(tmp_path, '[storage.postgres]\ndsn = "postgresql://x"\n')
    config = read_config(path)
    with pytest.raises(ConfigError, match=r"\[storage.postgres\]"):
        validate_sections(config, MODELS)


@pytest.mark.parametrize(
    ("text", "problem"),
    [("plugins = [\n", "not valid TOML"), ('plugins = "http"\n', "list of plugin names")],
)
def test_broken_files_say_what_is_wrong(tmp_path, text, problem):
    with pytest.raises(ConfigError, match=problem):
        read_config(write(tmp_path, text))


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        read_config(tmp_path / "absent.toml")


def test_environment_variables_override_the_file(tmp_path):
    path = write(
        tmp_path,
        'plugins = ["storage.sqlite", "auth.jwt"]\n[server]\nport = 9001\n'
        "[storage.sqlite]\nbusy_timeout_ms = 10\n",
    )
    env = {
        "BUTTERFLYFX_SERVER__PORT": "9100",
        "BUTTERFLYFX_STORAGE_SQLITE__BUSY_TIMEOUT_MS": "250",
        "BUTTERFLYFX_AUTH_JWT__SECRET": "from-env",
        "BUTTERFLYFX_NOT_LOADED__X": "ignored",
    }
    config = read_config(path, env)
    validate_sections(config, MODELS)
    assert config.server.port == 9100
    assert config.section("storage.sqlite").busy_timeout_ms == 250
    assert config.section("auth.jwt").secret == "from-env"


def test_command_line_overrides_beat_file_and_environment(tmp_path):
    path = write(tmp_path, "[server]\nport = 9001\n")
    config = read_config(path, {"BUTTERFLYFX_SERVER__PORT": "9100"}, {"port": 9200, "host": None})
    assert config.server.port == 9200
    assert config.server.host == "127.0.0.1"


def test_the_plugin_list_can_come_from_the_environment():
    config = read_config(None, {"BUTTERFLYFX_PLUGINS": "storage.memory, http"})
    assert config.plugins == ["storage.memory", "http"]


def test_effective_settings_mask_secrets(tmp_path):
    path = write(tmp_path, 'plugins = ["auth.jwt"]\n[auth.jwt]\nsecret = "hunter2"\n')
    config = read_config(path)
    validate_sections(config, MODELS)
    shown = effective_settings(config)
    assert shown["auth.jwt"] == {"secret": "********", "issuer": "butterflyfx"}
    assert "hunter2" not in repr(shown)
    assert shown["server"]["port"] == 8000


def test_a_bad_value_from_the_environment_names_the_variable(tmp_path):
    path = write(tmp_path, "[server]\nport = 9001\n")
    with pytest.raises(ConfigError) as caught:
        read_config(path, {"BUTTERFLYFX_SERVER__PORT": "eighty"})
    message = str(caught.value)
    assert "section [server], key 'port'" in message
    assert "set by environment variable BUTTERFLYFX_SERVER__PORT" in message


def test_the_log_level_is_case_insensitive():
    assert read_config(None, {"BUTTERFLYFX_SERVER__LOG_LEVEL": "DEBUG"}).server.log_level == "debug"
    with pytest.raises(ConfigError, match="log_level"):
        read_config(None, {"BUTTERFLYFX_SERVER__LOG_LEVEL": "chatty"})


def test_masking_covers_lists_and_passwords_inside_urls_but_not_counts_or_plain_urls(tmp_path):
    class Remote(StrictModel):
        dsn: str = "postgresql://app:hunter2@db.internal:5432/butterflyfx"
        base_url: str = "https://api.example.com"
        api_keys: list[str] = ["key-one", "key-two"]
        max_keys: int = 3
        key_prefix: str = "butterflyfx"  # a prefix and a path, named by their last word
        secret_file: str = "/var/lib/butterflyfx/jwt-secret"

    config = read_config(write(tmp_path, 'plugins = ["remote"]\n'))
    validate_sections(config, {"remote": Remote})
    shown = effective_settings(config)["remote"]
    assert shown == {
        "dsn": "postgresql://app:********@db.internal:5432/butterflyfx",
        "base_url": "https://api.example.com",
        "api_keys": ["********", "********"],
        "max_keys": 3,
        "key_prefix": "butterflyfx",
        "secret_file": "/var/lib/butterflyfx/jwt-secret",
    }


@pytest.mark.parametrize(
    ("text", "section", "problem"),
    [
        ("server = 5\n", "server", "must be a table"),
        ('plugins = ["storage.sqlite"]\nstorage = "sqlite"\n', "storage", "must be a table"),
        ('plugins = ["storage.sqlite", "storage.memory"]\n[storage.memory]\nx = 1\n',
         "storage.memory", "plugin 'storage.memory' takes no settings"),
        ('plugins = ["storage.sqlite"]\n[auth.jwt]\nsecret = "s"\n', "auth.jwt",
         "no loaded plugin has this section"),
        ('plugins = ["storage.sqlite"]\nport = 8000\n', "port", "is not a setting"),
    ],
)  # fmt: skip
def test_misplaced_sections_name_the_exact_section(tmp_path, text, problem, section):
    config_text = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        config = read_config(config_text)
        validate_sections(config, {"storage.sqlite": SqliteSection})
    assert caught.value.section == section
    assert problem in caught.value.message


def test_a_plugin_may_own_a_section_two_dots_deep(tmp_path):
    class Deep(StrictModel):
        level: int = 0

    config = read_config(write(tmp_path, 'plugins = ["graph.x.y"]\n[graph.x.y]\nlevel = 3\n'))
    validate_sections(config, {"graph.x.y": Deep})
    assert config.section("graph.x.y").level == 3


def test_the_plugin_list_from_the_environment_may_also_be_json():
    config = read_config(None, {"BUTTERFLYFX_PLUGINS": '["storage.memory", "http"]'})
    assert config.plugins == ["storage.memory", "http"]
