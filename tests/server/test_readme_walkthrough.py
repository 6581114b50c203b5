"""The curl walk-throughs of README.md and docs/api.md print what they say, against a real server.

Every ```` ```console ```` block of a page is read in order: a line starting with ``$ ``
is a command (continued over the next lines while it ends with ``\\`` or has a quote open),
and the lines after it, up to the next command, are what it prints. Each command runs with
bash, in order, against one ``butterflyfx serve`` process per page on a free port with an
empty data folder and the plugins the page says to start it with, the page's
``127.0.0.1:8000`` replaced by that server's address.

An output is compared part by part: a line starting with ``{`` or ``[`` that begins a JSON
document starts a JSON part, compared as JSON, where the string ``"..."`` in the page
stands for any value; other lines are text, compared as doctest does with ELLIPSIS and
NORMALIZE_WHITESPACE (``\\r\\n`` from ``curl -i`` counts as ``\\n``). Anything else must be
equal: ids, identities, results, dimensions, statuses, and which keys an object has.
"""

from __future__ import annotations

import doctest
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from server_process import Butterflyfx, clean_environment

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
API_PAGE = ROOT / "docs" / "api.md"
README_ADDRESS = "127.0.0.1:8000"
# Each walk-through and the environment its server starts with; a page other than the
# README says so in the command it tells readers to start the server with.
SECURITY_PAGE = ROOT / "docs" / "security.md"
PAGES = {
    README: {},
    API_PAGE: {"BUTTERFLYFX_PLUGINS": "storage.sqlite,graph.sql,http"},
    SECURITY_PAGE: {},
}
WILDCARD = "..."
AUTH = '-H "Authorization: Bearer \\$KEY" '  # a pattern: what the README's requests send
COMMAND_TIMEOUT = 60.0
TEXT_OPTIONS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
# Settings of the machine that would change what curl prints or where it connects.
PROXY_VARIABLES = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}


# -- reading the README -----------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One ``$ `` command of a console block and the output the README shows for it."""

    line: int  # 1-based line of the README where the command starts
    command: str
    expected: str


def _complete(command: str) -> bool:
    """Whether a shell command is whole: no quote left open, no trailing backslash."""
    try:
        shlex.split(command)
    except ValueError:
        return False
    return True


def console_steps(markdown: str, page: str = "README.md") -> list[Step]:
    """The commands of every ```` ```console ```` block, in order, with their outputs."""
    steps: list[Step] = []
    block: list[tuple[int, str]] | None = None  # (line number, text) inside a console block
    for number, line in enumerate(markdown.splitlines(), start=1):
        if block is None:
            if line.strip() == "```console":
                block = []
        elif line.strip() == "```":
            steps += block_steps(block, page)
            block = None
        else:
            block.append((number, line))
    if block is not None:
        raise ValueError(f"{page}: a console block is never closed")
    return steps


def block_steps(block: list[tuple[int, str]], page: str = "README.md") -> list[Step]:
    steps: list[Step] = []
    start, command, output = 0, "", []
    for number, line in block:
        if start and not _complete(command):
            command += "\n" + line
        elif line.startswith("$ "):
            if start:
                steps.append(Step(start, command, "\n".join(output)))
            start, command, output = number, line[2:], []
        elif start:
            output.append(line)
        else:
            raise ValueError(f"{page} line {number}: output before any $ command")
    if start and not _complete(command):
        raise ValueError(f"{page} line {start}: the command is never finished")
    if start:
        steps.append(Step(start, command, "\n".join(output)))
    return steps


# -- comparing outputs ------------------------------------------------------------------


def parts(text: str) -> list[tuple[str, Any]]:
    """``text`` cut into ("json", value) and ("text", lines) parts; blank text is dropped.

    A JSON part starts on a line whose first character is ``{`` or ``[`` and which begins a
    JSON document that ends a line.
    """
    text = text.replace("\r\n", "\n")
    decoder = json.JSONDecoder()
    found: list[tuple[str, Any]] = []
    pending: list[str] = []

    def flush() -> None:
        if "".join(pending).strip():
            found.append(("text", "".join(pending)))
        pending.clear()

    position = 0
    while position < len(text):
        newline = text.find("\n", position)
        line_end = len(text) if newline < 0 else newline + 1
        if text[position : position + 1] in ("{", "["):
            try:
                value, stop = decoder.raw_decode(text, position)
            except ValueError:
                pass
            else:
                newline = text.find("\n", stop)
                rest_end = len(text) if newline < 0 else newline + 1
                if not text[stop:rest_end].strip():
                    flush()
                    found.append(("json", value))
                    position = rest_end
                    continue
        pending.append(text[position:line_end])
        position = line_end
    flush()
    return found


def json_differences(expected: Any, actual: Any, path: str = "$") -> list[str]:
    """Where ``actual`` differs from ``expected``, in which the string "..." matches anything.

    Types are compared too: 35, 35.0 and true are three different results.
    """
    if expected == WILDCARD:
        return []
    if isinstance(expected, dict) and isinstance(actual, dict):
        found = []
        if set(expected) != set(actual):
            missing = sorted(set(expected) - set(actual))
            extra = sorted(set(actual) - set(expected))
            found.append(f"{path}: keys missing {missing}, unexpected {extra}")
        for key in expected.keys() & actual.keys():
            found += json_differences(expected[key], actual[key], f"{path}.{key}")
        return found
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return [f"{path}: {len(actual)} items where {len(expected)} were expected"]
        found = []
        for number, (want, got) in enumerate(zip(expected, actual, strict=True)):
            found += json_differences(want, got, f"{path}[{number}]")
        return found
    if type(expected) is not type(actual) or expected != actual:
        return [f"{path}: {json.dumps(actual)} where {json.dumps(expected)} was expected"]
    return []


def output_differences(expected: str, actual: str) -> list[str]:
    """Why ``actual`` is not the output ``expected`` shows (nothing when it is)."""
    want, got = parts(expected), parts(actual)
    if [kind for kind, _ in want] != [kind for kind, _ in got]:
        return [
            f"parts {[kind for kind, _ in got]} where {[kind for kind, _ in want]} were expected"
        ]
    checker = doctest.OutputChecker()
    found = []
    for number, ((kind, want_value), (_, got_value)) in enumerate(zip(want, got, strict=True)):
        if kind == "json":
            found += json_differences(want_value, got_value, f"part {number + 1} $")
        elif not checker.check_output(want_value, got_value, TEXT_OPTIONS):
            found.append(f"part {number + 1}: text {got_value!r} where {want_value!r} was expected")
    return found


# -- without a server: the reading and the comparing --------------------------------------


def test_commands_continue_over_backslashes_and_open_quotes():
    markdown = """text
```console
$ echo a \\
    b
some
output
$ echo '{
  "x": 1}'
{"x": 1}
```

```sh
$ not run
```
```console
$ true
```
"""
    assert console_steps(markdown) == [
        Step(3, "echo a \\\n    b", "some\noutput"),
        Step(7, "echo '{\n  \"x\": 1}'", '{"x": 1}'),
        Step(16, "true", ""),
    ]


def test_an_unfinished_command_or_output_without_a_command_is_an_error():
    with pytest.raises(ValueError, match="never finished"):
        console_steps("```console\n$ echo 'open\n```\n")
    with pytest.raises(ValueError, match="output before any"):
        console_steps("```console\nloose output\n```\n")


def test_the_wildcard_matches_any_value_and_nothing_else_is_loose():
    shown = '{"id": "0xAB", "identity": 171, "at": "...", "result": 35, "tags": ["a", "..."]}'
    assert output_differences(shown, '{"at":"2026","id":"0xAB","identity":171,'
                                     '"result":35,"tags":["a",{"any":1}]}') == []  # fmt: skip
    wrong = [
        '{"id": "0xAC", "identity": 171, "at": 1, "result": 35, "tags": ["a", 1]}',
        '{"id": "0xAB", "identity": 171, "at": 1, "result": 35.0, "tags": ["a", 1]}',
        '{"id": "0xAB", "identity": 171, "at": 1, "result": 35, "tags": ["a"]}',
        '{"id": "0xAB", "identity": 171, "result": 35, "tags": ["a", 1]}',
        '{"id": "0xAB", "identity": 171, "at": 1, "result": 35, "tags": ["a", 1], "x": 0}',
        '{"id": "0xAB", "identity": 171, "at": 1, "result": 35, "tags": ["a", 1]}\nmore',
        "not JSON at all",
    ]
    for output in wrong:
        assert output_differences(shown, output), output


def test_text_parts_match_with_ellipsis_and_json_parts_as_json():
    shown = 'HTTP/1.1 201\netag: "e7-1-..."\n...\n\n{"substrate_id": "0xE7", "created_at": "..."}'
    headers = 'HTTP/1.1 201 \r\netag: "e7-1-abc"\r\ndate: today\r\n\r\n'

    assert output_differences(shown, headers + '{"created_at":"now","substrate_id":"0xE7"}') == []
    assert output_differences(shown, headers + '{"created_at":"now","substrate_id":"0xE8"}')
    assert output_differences(shown, headers.replace("201", "200") + '{"created_at":"now",'
                                     '"substrate_id":"0xE7"}')  # fmt: skip
    assert output_differences("204", "204\n") == []
    assert output_differences("204", "404\n")


def test_the_walkthrough_covers_every_substrate_operation():
    steps = console_steps(README.read_text(encoding="utf-8"))
    commands = [step.command for step in steps]
    base = f"http://{README_ADDRESS}/api/v1/substrates"
    operations = {
        "create": rf"-X POST {base} ",
        "a key": r"export KEY=\$\(butterflyfx keys create ",
        "refused without it": rf"curl -s -o /dev/null -w '%{{http_code}}\\n' {base}$",
        "get": rf"curl -s {AUTH}{base}/0x[0-9A-F]{{16}} ",
        "divide": rf"{base}/0x[0-9A-F]{{16}}/divide",
        "invoke with parameters": rf'{base}/0x[0-9A-F]{{16}}/invoke.*"parameters": \{{"x"',
        "multiply dimensions": r"--data-binary @-",
        "multiply substrate_ids": r'"substrate_ids": \[',
        "delete": rf"-X DELETE {base}/0x",
        "get after delete": rf"curl -si {AUTH}{base}/0x[0-9A-F]{{16}}$",
    }
    for operation, pattern in operations.items():
        assert any(re.search(pattern, command, re.S) for command in commands), operation
    assert all(step.expected.strip() for step in steps), "a command shows no output"


def test_the_api_walkthrough_covers_every_relationship_and_query_operation():
    steps = console_steps(API_PAGE.read_text(encoding="utf-8"), "docs/api.md")
    commands = [step.command for step in steps]
    base = f"http://{README_ADDRESS}/api/v1"
    hex_id = "0x[0-9A-F]{16}"
    operations = {
        "create a relationship": rf"-X POST {base}/relationships ",
        "get a relationship": rf"curl -s {base}/relationships/{hex_id}",
        "delete a relationship": rf"-X DELETE {base}/relationships/{hex_id}",
        "outgoing": rf"{base}/relationships/outgoing/{hex_id}",
        "incoming": rf"{base}/relationships/incoming/{hex_id}",
        "graph": rf"{base}/relationships/graph\?root={hex_id}",
        "traverse": rf"{base}/query/traverse",
        "path": rf"{base}/query/path",
        "weighted path": r'"weighted": true',
        "search": rf"{base}/query/search",
        "stats": rf"{base}/query/stats",
        "a batch of substrates": rf"{base}/substrates/batch",
        "a batch of relationships": rf"{base}/relationships/batch",
        "every relationship": rf"{base}/relationships\?limit",
        "an unknown type refused": r'"relationship_type": "likes"',
        "a ceiling refused": r'"max_depth": 7',
    }
    for operation, pattern in operations.items():
        assert any(re.search(pattern, command, re.S) for command in commands), operation
    assert all(step.expected.strip() for step in steps), "a command shows no output"


def test_each_page_names_the_plugins_its_server_was_started_with():
    for page, env in PAGES.items():
        if "BUTTERFLYFX_PLUGINS" in env:
            start = f"BUTTERFLYFX_PLUGINS={env['BUTTERFLYFX_PLUGINS']} make serve"
            assert start in page.read_text(encoding="utf-8"), f"{page.name} must say: {start}"


# -- against a real server ------------------------------------------------------------------


def require(tool: str) -> str:
    found = shutil.which(tool)
    if found:
        return found
    reason = f"{tool} is not installed; README.md's walk-through runs its commands with it"
    if os.environ.get("BUTTERFLYFX_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason}, and BUTTERFLYFX_REQUIRE_SERVICES=1 requires it")
    pytest.skip(reason)


def shell_environment(home: Path) -> dict[str, str]:
    """No BUTTERFLYFX_ setting, no proxy, no ~/.curlrc; the venv's python3 first on PATH."""
    env = {
        key: value
        for key, value in clean_environment().items()
        if key.lower() not in PROXY_VARIABLES and not key.startswith("CURL_")
    }
    path = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", os.defpath)])
    return {**env, "PATH": path, "HOME": str(home), "CURL_HOME": str(home),
            "XDG_CONFIG_HOME": str(home)}  # fmt: skip


def run_step(
    bash: str, command: str, cwd: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """Run one command as the reader's shell would; what it exports stays in ``env`` for
    the commands after it, as in one terminal."""
    exported = re.findall(r"\bexport (\w+)=", command)
    trailer = "".join(f"; printf '\\0%s' \"${name}\"" for name in exported)
    done = subprocess.run(
        [bash, "-o", "pipefail", "-c", command + trailer],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    if exported:
        printed, *values = done.stdout.split("\0")
        env.update(zip(exported, values, strict=True))
        done.stdout = printed
    return done


@pytest.mark.parametrize("page", list(PAGES), ids=lambda page: page.relative_to(ROOT).as_posix())
def test_every_command_of_the_walkthrough_prints_what_the_page_shows(
    butterflyfx: Butterflyfx, tmp_path: Path, page: Path
) -> None:
    bash = require("bash")
    require("curl")
    name = page.relative_to(ROOT).as_posix()
    steps = console_steps(page.read_text(encoding="utf-8"), name)
    server = butterflyfx.start("--data-dir", str(tmp_path / "data"), env=PAGES[page])
    server.wait_ready()
    address = server.url.removeprefix("http://")
    shell = tmp_path / "shell"
    shell.mkdir()
    env = shell_environment(shell)

    # The reader's shell runs in the server's folder: `butterflyfx keys` finds its data there.
    env["BUTTERFLYFX_SERVER__DATA_DIR"] = str(tmp_path / "data")

    failures = []
    for step in steps:
        done = run_step(bash, step.command.replace(README_ADDRESS, address), shell, env)
        problems = output_differences(step.expected.replace(README_ADDRESS, address), done.stdout)
        if done.returncode != 0 or done.stderr:
            problems.insert(0, f"exit status {done.returncode}, stderr {done.stderr!r}")
        if problems:
            failures.append(
                f"{name} line {step.line}: $ {step.command}\n"
                + "".join(f"  - {problem}\n" for problem in problems)
                + f"  printed:\n{done.stdout}\n"
            )

    assert len(steps) >= 10
    assert not failures, "\n".join(failures) + f"\nserver log:\n{server.log_text()[-4000:]}"
