"""Hooks, their documentation and their tests move together (Datasette's test_docs.py habit).

Adding a hook spec to ``core/hookspecs.py`` without a section in ``docs/plugins.md``
or without a test that names it fails here, and so does a section whose call rule
disagrees with the spec's docstring, or an example file the page no longer shows as it is.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pluggy
import pytest

from butterflyfx.core import hookspecs

ROOT = Path(__file__).resolve().parents[1]
PLUGINS_PAGE = ROOT / "docs" / "plugins.md"
EXAMPLE = ROOT / "examples" / "third_party_plugin"
HOOK_NAME = re.compile(r"\bbutterflyfx_[a-z_]+\b")
RULE = re.compile(r"\bRule\b\W+(all|first non-None)")


def hook_specs() -> dict[str, object]:
    """Every function in core/hookspecs.py carrying the ``butterflyfx`` hookspec marker."""
    return {
        name: function
        for name, function in vars(hookspecs).items()
        if name.startswith("butterflyfx_")
        and inspect.isfunction(function)
        and hasattr(function, "butterflyfx_spec")
    }


def page() -> str:
    return PLUGINS_PAGE.read_text(encoding="utf-8")


def sections(text: str) -> dict[str, str]:
    """The text under each ``##`` / ``###`` heading, up to the next such heading."""
    parts = re.split(r"^(#{2,3} .+)$", text, flags=re.MULTILINE)
    return {heading: body for heading, body in zip(parts[1::2], parts[2::2], strict=True)}


def hook_section(name: str) -> str:
    pattern = re.compile(rf"\b{name}\b")
    found = [body for heading, body in sections(page()).items() if pattern.search(heading)]
    assert found, f"docs/plugins.md has no heading naming {name}"
    return found[0]


def test_the_hook_specs_found_are_the_ones_pluggy_registers():
    manager = pluggy.PluginManager("butterflyfx")
    manager.add_hookspecs(hookspecs)
    registered = {name for name in vars(manager.hook) if name.startswith("butterflyfx_")}

    assert set(hook_specs()) == registered
    assert {"butterflyfx_startup", "butterflyfx_storage", "butterflyfx_on_event"} <= registered


def test_every_hook_spec_has_a_heading_in_docs_plugins():
    headings = list(sections(page()))
    missing = [
        name
        for name in hook_specs()
        if not any(re.search(rf"\b{name}\b", heading) for heading in headings)
    ]
    assert missing == [], f"add a ## or ### heading for each of these to docs/plugins.md: {missing}"


def test_every_hook_named_in_a_heading_of_docs_plugins_exists():
    named = {name for heading in sections(page()) for name in HOOK_NAME.findall(heading)}
    assert named - set(hook_specs()) == set(), "docs/plugins.md documents hooks that do not exist"


@pytest.mark.parametrize("name", sorted(hook_specs()))
def test_each_hook_section_gives_arguments_result_rule_timing_and_an_example(name):
    body = hook_section(name)
    for label in ("**Arguments**", "**Returns**", "**Rule**", "**Called**"):
        assert label in body, f"the {name} section of docs/plugins.md does not say {label}"
    assert ">>> " in body, f"the {name} section of docs/plugins.md has no >>> example"


@pytest.mark.parametrize("name", sorted(hook_specs()))
def test_each_hook_section_states_the_call_rule_its_spec_states(name):
    spec_rule = RULE.search(inspect.getdoc(hook_specs()[name]) or "")
    assert spec_rule is not None, f"the docstring of {name} in core/hookspecs.py states no Rule"
    docs_rule = RULE.search(hook_section(name))
    assert docs_rule is not None and docs_rule.group(1) == spec_rule.group(1), (
        f"docs/plugins.md says {name}'s rule is {docs_rule and docs_rule.group(1)!r}, "
        f"core/hookspecs.py says {spec_rule.group(1)!r}"
    )


def test_every_hook_spec_is_named_by_a_test():
    this_file = Path(__file__).resolve()
    test_text = "\n".join(
        path.read_text(encoding="utf-8")
        for path in sorted((ROOT / "tests").rglob("*.py"))
        if path.resolve() != this_file
    )
    untested = [name for name in hook_specs() if not re.search(rf"\b{name}\b", test_text)]
    assert untested == [], f"no test under tests/ implements or names these hooks: {untested}"


# -- the third-party plugin on the page is the one in examples/ ---------------------


def shown_files() -> dict[str, str]:
    """Code blocks preceded by ``<!-- file: PATH -->``, by path."""
    blocks = re.findall(
        r"^<!-- file: (\S+) -->\n```[\w-]*\n(.*?)^```$", page(), re.DOTALL | re.MULTILINE
    )
    return dict(blocks)


def example_files() -> list[str]:
    return sorted(
        path.relative_to(ROOT).as_posix()
        for path in EXAMPLE.rglob("*")
        if path.is_file()
        and not any(part in {"__pycache__", "build"} or part.endswith(".egg-info")
                    for part in path.parts)
    )  # fmt: skip


def test_the_page_shows_every_file_of_the_example_plugin_package():
    assert example_files(), "examples/third_party_plugin is missing"
    assert sorted(shown_files()) == example_files()


@pytest.mark.parametrize("path", example_files())
def test_the_code_on_the_page_is_the_example_file_byte_for_byte(path):
    shown = shown_files().get(path)
    assert shown is not None, f"docs/plugins.md does not show {path}"
    assert shown == (ROOT / path).read_text(encoding="utf-8"), (
        f"the copy of {path} in docs/plugins.md differs from the file: paste the file again"
    )
