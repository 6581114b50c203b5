"""docs/configuration.md documents every config key, with the default the code really uses.

The keys are discovered, not listed: the fields of ``ServerSettings`` and of every model a
built-in plugin returns from ``butterflyfx_config_model``. Adding a field without a row in the
reference, or changing a default without changing the row, fails here.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from butterflyfx.core.config import ServerSettings
from butterflyfx.core.plugins import PluginHost, available_plugins

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "configuration.md"
REFERENCE_HEADING = "## Reference"
# | `section.key` | type | default | allowed | meaning |
ROW = re.compile(r"^\| `(?P<key>[\w.-]+)` \| [^|]+ \| (?P<default>[^|]+?) \|", re.MULTILINE)
DISTRIBUTION = "butterflyfx"  # third-party plugins document their keys in their own package


def builtin_plugins() -> list[str]:
    return sorted(
        name
        for name, entry in available_plugins().items()
        if entry.dist is not None and entry.dist.name == DISTRIBUTION
    )


def config_models() -> dict[str, type[BaseModel]]:
    """``server`` and every built-in plugin's section, each with its model."""
    models: dict[str, type[BaseModel]] = {"server": ServerSettings}
    for result in PluginHost(builtin_plugins()).hook.butterflyfx_config_model():
        if result is not None:
            section, model = result
            models[section] = model
    return models


def fields_of(model: type[BaseModel], prefix: str) -> Iterator[tuple[str, FieldInfo]]:
    """``(section.key, field)`` for every key; a key holding a model is a table of keys."""
    for name, field in model.model_fields.items():
        key = field.alias or name
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            yield from fields_of(field.annotation, f"{prefix}.{key}")
        else:
            yield f"{prefix}.{key}", field


def config_keys() -> dict[str, FieldInfo]:
    keys: dict[str, FieldInfo] = {}
    for section, model in config_models().items():
        keys.update(fields_of(model, section))
    return keys


def reference_rows() -> dict[str, str]:
    """``section.key`` -> its default column, from the rows of the reference part."""
    text = DOC.read_text(encoding="utf-8")
    assert REFERENCE_HEADING in text, f"{DOC.name} has no {REFERENCE_HEADING!r} part"
    reference = text.split(REFERENCE_HEADING, 1)[1]
    return {match["key"]: match["default"].strip() for match in ROW.finditer(reference)}


def toml_value(value: Any) -> str:
    """How a default is written in a TOML file, as the reference shows it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path):
        return json.dumps(str(value))
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise AssertionError(f"teach toml_value to write a default of type {type(value).__name__}")


def documented_default(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    return "unset" if value is None else f"`{toml_value(value)}`"


def test_every_builtin_plugin_declared_in_pyproject_is_installed_and_examined():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    entry_points = declared["project"]["entry-points"][DISTRIBUTION]
    assert builtin_plugins() == sorted(entry_points), "reinstall: pip install -e '.[test]'"


def test_every_config_key_has_a_row_in_the_reference():
    rows = reference_rows()

    missing = sorted(set(config_keys()) - set(rows))

    assert not missing, f"document these keys in {DOC.relative_to(ROOT)}, Reference: {missing}"


def test_the_reference_names_no_key_the_code_lacks():
    stale = sorted(set(reference_rows()) - set(config_keys()))

    assert not stale, f"{DOC.relative_to(ROOT)} documents keys no model has: {stale}"


def test_every_documented_default_is_the_default_in_force():
    rows = reference_rows()
    wrong = {
        key: {"documented": rows[key], "in the code": documented_default(field)}
        for key, field in config_keys().items()
        if key in rows and rows[key] != documented_default(field)
    }

    assert not wrong, f"defaults in {DOC.relative_to(ROOT)} differ from the code: {wrong}"
