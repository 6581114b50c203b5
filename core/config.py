"""One TOML file: ``plugins = [...]``, ``[server]``, then one section per plugin.

Each plugin validates its own section with its pydantic model; unknown keys are errors.
``BUTTERFLYFX_<SECTION>__<KEY>`` environment variables override file values, with the
section's dots written as underscores (``BUTTERFLYFX_STORAGE_SQLITE__PATH``).
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

ENV_PREFIX = "BUTTERFLYFX_"
CONFIG_FILE_VARIABLE = "BUTTERFLYFX_CONFIG_FILE"  # the config file `serve` and its workers read
DEFAULT_PLUGINS = ["storage.sqlite", "graph.sql", "http", "auth.apikey", "auth.jwt", "ratelimit"]
SECRET_WORDS = frozenset({"secret", "password", "passwd", "token", "key", "credential"})
MASK = "********"
RELATIONSHIP_TYPE_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^/@:\s]*:)[^/@\s]*@", re.IGNORECASE)


class ConfigError(Exception):
    """A config problem, naming the file, the section and the key."""

    def __init__(self, source: str, section: str | None, key: str | None, message: str) -> None:
        self.source, self.section, self.key, self.message = source, section, key, message
        where = source
        if section:
            where += f", section [{section}]"
        if key:
            where += f", key {key!r}"
        super().__init__(f"{where}: {message}")


class StrictModel(BaseModel):
    """Base for every config section: unknown keys are errors, values are checked."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(StrictModel):
    """The ``[server]`` section."""

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(1, ge=1, le=64)
    data_dir: Path = Path("butterflyfx-data")
    max_connections: int = Field(
        1000, ge=1,
        description="open connections each worker serves; a new one beyond them gets 503",
    )  # fmt: skip
    backlog: int | None = Field(
        None, ge=1, description="the listen backlog; unset means max_connections"
    )
    timeout: float = Field(5.0, gt=0, description="seconds an idle keep-alive connection lives")
    archived_connections: int = Field(
        1000, ge=0, description="closed connections each worker remembers for /api/connections"
    )
    graceful_timeout: float = Field(10.0, ge=0)
    log_level: str = Field("info", pattern="^(debug|info|warning|error|critical)$")
    access_log: bool = Field(
        True, description="one log line per request: request id, tenant, route, status, duration"
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_case_level(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    compiled_cache_size: int = Field(4096, ge=1)
    invocation_flush_seconds: float = Field(1.0, gt=0)
    relationship_types: list[str] = Field(
        default_factory=list, description="types beside the kernel's 15 (lower-cased)"
    )

    @field_validator("relationship_types")
    @classmethod
    def _relationship_type_names(cls, value: list[str]) -> list[str]:
        # Names travel in comma-separated query parameters (?types=a,b): keep them plain.
        names: list[str] = []
        for name in value:
            lowered = name.strip().lower()
            if not RELATIONSHIP_TYPE_NAME.fullmatch(lowered):
                raise ValueError(
                    f"{name!r} is not a relationship type name: a letter, then up to 63 "
                    "letters, digits or underscores"
                )
            if lowered not in names:
                names.append(lowered)
        return names

    graph_max_depth: int = Field(6, ge=1, le=64, description="ceiling of any depth asked for")
    graph_max_nodes: int = Field(
        10_000, ge=1, description="ceiling of any limit or max_nodes asked for"
    )
    graph_node_budget: int = Field(
        100_000, ge=1, description="nodes one graph query may visit before it stops, truncated"
    )


@dataclass
class LoadedConfig:
    """A config file read and merged with the environment, before plugin sections are checked."""

    source: str
    plugins: list[str]
    server: ServerSettings
    raw: dict[str, Any]
    sections: dict[str, BaseModel] = field(default_factory=dict)
    from_environment: dict[tuple[str, str], str] = field(default_factory=dict)
    # Plugins whose section says ``required = false``: one that fails to load or to start
    # is left out, and the server runs without it (reported down in readiness).
    optional: frozenset[str] = frozenset()

    def section(self, name: str) -> BaseModel | None:
        return self.sections.get(name)

    def required(self, plugin: str) -> bool:
        return plugin not in self.optional


def _env_value(text: str) -> Any:
    if text[:1] in "[{":
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text
    return text


def _section_path(raw: dict[str, Any], name: str, source: str) -> tuple[dict[str, Any], str]:
    """The table holding section ``name`` (``storage.sqlite`` lives at raw["storage"])."""
    *parents, last = name.split(".")
    table = raw
    for depth, part in enumerate(parents):
        child = table.setdefault(part, {})
        if not isinstance(child, dict):
            where = ".".join(parents[: depth + 1])
            raise ConfigError(source, where, None, f"must be a table (it holds [{name}])")
        table = child
    return table, last


def get_section(raw: dict[str, Any], name: str, source: str = "<config>") -> Any:
    table, last = _section_path(raw, name, source)
    return table.get(last, {})


def _apply_environment(
    raw: dict[str, Any], env: Mapping[str, str], sections: list[str], source: str
) -> dict[tuple[str, str], str]:
    """Apply the variables to ``raw``; returns which variable set each (section, key)."""
    origins: dict[tuple[str, str], str] = {}
    by_env_name = {s.upper().replace(".", "_").replace("-", "_"): s for s in sections}
    for variable, text in env.items():
        if not variable.startswith(ENV_PREFIX) or "__" not in variable[len(ENV_PREFIX) :]:
            continue
        section_part, key = variable[len(ENV_PREFIX) :].split("__", 1)
        section = by_env_name.get(section_part)
        if section is None:
            continue  # variables for plugins not loaded are someone else's
        table, last = _section_path(raw, section, source)
        values = table.setdefault(last, {})
        if not isinstance(values, dict):
            raise ConfigError(source, section, None, "must be a table")
        values[key.lower()] = _env_value(text)
        origins[(section, key.lower())] = variable
    return origins


def read_config(
    path: Path | None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> LoadedConfig:
    """Read ``path`` (or the embedded defaults), apply the environment and CLI overrides,
    and validate ``plugins`` and ``[server]``. Plugin sections are checked later by
    :func:`validate_sections`, once the plugins have said what their models are."""
    env = env or {}
    source = str(path) if path is not None else "<embedded defaults>"
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(source, None, None, "no such file") from None
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(source, None, None, f"not valid TOML: {error}") from None
    plugins = raw.pop("plugins", DEFAULT_PLUGINS)
    if "BUTTERFLYFX_PLUGINS" in env:
        text = env["BUTTERFLYFX_PLUGINS"].strip()  # "a,b" or a JSON list like other lists
        plugins = (
            _env_value(text)
            if text.startswith("[")
            else [p.strip() for p in text.split(",") if p.strip()]
        )
    if not isinstance(plugins, list) or not all(isinstance(p, str) for p in plugins):
        raise ConfigError(source, None, "plugins", "must be a list of plugin names")
    origins = _apply_environment(raw, env, ["server", *plugins], source)
    server_table = raw.pop("server", {})
    if not isinstance(server_table, dict):
        raise ConfigError(source, "server", None, "must be a table")
    server_raw = dict(server_table)
    for key, value in (overrides or {}).items():
        if value is not None:
            server_raw[key] = value
    server = validate_model(ServerSettings, server_raw, source, "server", origins)
    optional = _take_required_flags(raw, plugins, source, origins)
    return LoadedConfig(
        source, list(plugins), server, raw, from_environment=origins, optional=optional
    )


REQUIRED_KEY = "required"
_BOOLEAN_WORDS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def _take_required_flags(
    raw: dict[str, Any], plugins: list[str], source: str, origins: Mapping[tuple[str, str], str]
) -> frozenset[str]:
    """Remove every plugin section's ``required`` key (the core's, not the plugin's: its
    model never sees it) and return the plugins it marks optional."""
    optional: set[str] = set()
    for name in plugins:
        *parents, last = name.split(".")
        chain: list[dict[str, Any]] = [raw]
        for part in parents:
            child = chain[-1].get(part)
            if not isinstance(child, dict):
                break
            chain.append(child)
        if len(chain) != len(parents) + 1:
            continue
        table = chain[-1]
        values = table.get(last)
        if not isinstance(values, dict) or REQUIRED_KEY not in values:
            continue
        value = values.pop(REQUIRED_KEY)
        if isinstance(value, str):
            value = _BOOLEAN_WORDS.get(value.strip().lower(), value)
        if not isinstance(value, bool):
            message = "must be true or false"
            variable = origins.get((name, REQUIRED_KEY))
            if variable is not None:
                message += f" (set by environment variable {variable})"
            raise ConfigError(source, name, REQUIRED_KEY, message)
        if not values:  # a section that only said `required`: as if it were not there
            del table[last]
            for parent, part in zip(reversed(chain[:-1]), reversed(parents), strict=True):
                if parent[part]:
                    break
                del parent[part]
        if not value:
            optional.add(name)
    return frozenset(optional)


def validate_model(
    model: type[BaseModel],
    values: Any,
    source: str,
    section: str,
    origins: Mapping[tuple[str, str], str] | None = None,
) -> Any:
    """Validate one section; the error names the key and, if one set it, the variable."""
    if not isinstance(values, dict):
        raise ConfigError(source, section, None, "must be a table")
    try:
        return model.model_validate(values)
    except ValidationError as error:
        first = error.errors()[0]
        key = ".".join(str(part) for part in first["loc"]) or None
        message = "unknown key" if first["type"] == "extra_forbidden" else first["msg"]
        variable = (origins or {}).get((section, str(first["loc"][0]) if first["loc"] else ""))
        if variable is not None:
            message += f" (set by environment variable {variable})"
        raise ConfigError(source, section, key, message) from None


def validate_sections(
    config: LoadedConfig,
    models: Mapping[str, type[BaseModel]],
    unchecked: Collection[str] = (),
) -> None:
    """Check each plugin's section with its model, and refuse sections nobody owns
    (those named in ``unchecked``, of optional plugins that failed to load, are let be)."""
    for name, model in models.items():
        config.sections[name] = validate_model(
            model,
            get_section(config.raw, name, config.source),
            config.source,
            name,
            config.from_environment,
        )
    _refuse_unowned(config, config.raw, "", {*models, *unchecked})


def _refuse_unowned(
    config: LoadedConfig, table: dict[str, Any], prefix: str, owned: set[str]
) -> None:
    """Every table in ``table`` is a section a model owns or a namespace leading to one."""
    for key, value in table.items():
        name = f"{prefix}{key}"
        if name in owned:
            continue
        namespace = (
            isinstance(value, dict)
            and name not in config.plugins
            and (
                any(o.startswith(f"{name}.") for o in owned)
                or (value and all(isinstance(child, dict) for child in value.values()))
            )
        )
        if namespace:  # [storage.sqlite] lives in the table "storage"
            _refuse_unowned(config, value, f"{name}.", owned)
            continue
        if name in config.plugins:
            message = f"plugin {name!r} takes no settings; remove this section"
        elif not isinstance(value, dict):
            message = "is not a setting: top-level keys are plugins and sections"
        else:
            message = "no loaded plugin has this section; is it in the plugins list?"
        raise ConfigError(config.source, name, None, message)


def effective_settings(config: LoadedConfig) -> dict[str, Any]:
    """Every setting in force, with secrets masked, for ``butterflyfx config check``."""
    result: dict[str, Any] = {
        "source": config.source,
        "plugins": list(config.plugins),
        "optional_plugins": sorted(config.optional),
        "server": _masked(config.server.model_dump(mode="json")),
    }
    for name, section in config.sections.items():
        result[name] = _masked(section.model_dump(mode="json"))
    return result


def is_secret(key: str) -> bool:
    """A key whose value must not be printed: api_key, jwt_secret, tokens, db_password, ...

    The last word decides: ``key_prefix`` and ``secret_file`` name a prefix and a path."""
    last = re.split(r"[^a-z0-9]+", key.lower())[-1]
    return last in SECRET_WORDS or last.rstrip("s") in SECRET_WORDS


def _masked(values: dict[str, Any]) -> dict[str, Any]:
    return {key: _masked_value(value, is_secret(key)) for key, value in values.items()}


def _masked_value(value: Any, secret: bool) -> Any:
    if isinstance(value, dict):
        return _masked(value) if not secret else {key: MASK for key in value}
    if isinstance(value, list):
        return [_masked_value(item, secret) for item in value]
    if secret and isinstance(value, str) and value:  # counts and switches are not secrets
        return MASK
    if isinstance(value, str):  # a password inside a URL: postgresql://user:pw@host/db
        return hide_url_passwords(value)
    return value


def hide_url_passwords(text: str, mask: str = MASK) -> str:
    """``text`` with the password of every URL in it (``postgresql://user:pw@host``)
    replaced by ``mask``."""
    return _URL_PASSWORD.sub(lambda m: f"{m['head']}{mask}@", text)
