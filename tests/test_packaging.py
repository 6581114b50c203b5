"""How the project installs, and the layering its design card promises."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Build the wheel a user gets from ``pip install .``."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps",
         "--quiet", "--wheel-dir", str(out), str(ROOT)],
        check=True, timeout=300, cwd=out,
    )  # fmt: skip
    (built,) = out.glob("butterflyfx-*.whl")
    return built


def test_the_wheel_puts_everything_under_one_butterflyfx_namespace(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top_levels = {name.split("/")[0] for name in names}
    assert {t for t in top_levels if not t.endswith(".dist-info")} == {"butterflyfx"}
    assert "butterflyfx/kernel/__init__.py" in names
    assert "butterflyfx/kernel/py.typed" in names
    assert "butterflyfx/kernel/expressions/lambda_lang/checker.py" in names


def test_the_installed_wheel_imports_outside_the_source_tree(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet",
         "--target", str(target), str(wheel)],
        check=True, timeout=300,
    )  # fmt: skip
    assert not (target / "core").exists() and not (target / "kernel").exists()
    script = (
        "import butterflyfx.kernel as k, sys\n"
        "assert 'site' in k.__file__, k.__file__\n"
        "s = k.Substrate.create('lambda', \"lambda **kw: kw.get('x', 0) * kw.get('y', 0)\")\n"
        "print(s.substrate_id, k.compile_expression('lambda', s.expression_code)"
        ".invoke({'x': 5, 'y': 7}))\n"
    )
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(target)}
    result = subprocess.run(
        [sys.executable, "-S", "-c", script],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0xE7A2CB9AAF2B6E02", "35"]


def _imports(folder: Path):
    for path in sorted(folder.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield path, alias.name, 0
            elif isinstance(node, ast.ImportFrom):
                yield path, node.module or "", node.level


def test_the_kernel_imports_only_the_standard_library_and_itself():
    offenders = [
        f"{path.relative_to(ROOT)}: {module}"
        for path, module, level in _imports(ROOT / "kernel")
        if level == 0 and module.split(".")[0] not in sys.stdlib_module_names
    ]
    assert offenders == []


def test_the_kernel_does_no_io_and_no_asyncio():
    forbidden = {"asyncio", "socket", "os", "subprocess", "io", "pathlib", "shutil", "threading"}
    offenders = [
        f"{path.relative_to(ROOT)}: {module}"
        for path, module, level in _imports(ROOT / "kernel")
        if level == 0 and module.split(".")[0] in forbidden
    ]
    assert offenders == []


def test_nothing_in_the_kernel_calls_eval_or_exec():
    calls = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path in (ROOT / "kernel").rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in {"eval", "exec", "__import__"}
    ]
    assert calls == []


def test_core_never_imports_quart_a_driver_or_an_upper_layer():
    forbidden = {"quart", "quart_schema", "hypercorn", "aiosqlite", "sqlite3", "asyncpg", "redis"}
    offenders = [
        f"{path.relative_to(ROOT)}: {module}"
        for path, module, level in _imports(ROOT / "core")
        if (level == 0 and module.split(".")[0] in forbidden)
        or module.startswith(("butterflyfx.plugins", "butterflyfx.server", "butterflyfx.interface"))
    ]
    assert offenders == []


def test_plugins_never_import_each_other():
    offenders = []
    for package in sorted(p for p in (ROOT / "plugins").iterdir() if (p / "__init__.py").exists()):
        own = f"butterflyfx.plugins.{package.name}"
        for path, module, level in _imports(package):
            if module.startswith("butterflyfx.plugins") and not module.startswith(own):
                offenders.append(f"{path.relative_to(ROOT)}: {module}")
            if level > len(path.relative_to(package).parts):  # climbs out of the plugin
                offenders.append(f"{path.relative_to(ROOT)}: relative import leaves the plugin")
    assert offenders == []


def test_every_package_folder_is_listed_in_pyproject():
    import tomllib

    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setup["packages"])
    roots = {folder: name for name, folder in setup["package-dir"].items()}
    found = set()
    for folder, name in roots.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            parts = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join([name, *parts]))
    assert found == listed
