"""The example auth plugin, ``examples/plugins/butterflyfx-auth-hmac``, works as its README says.

The folder is built into a wheel with pip, as its author would publish it, and installed with
``pip install --target`` into a folder of its own, put on ``PYTHONPATH``: this environment's
site-packages is never touched. Then the plugin's own tests run against that installation, and
every shell command of its README runs against a real ``butterflyfx serve``: the README's
```shell blocks are read, and a line this file does not know how to run fails the test.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from butterflyfx.testing.process import free_port, wait_until_ready

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "plugins" / "butterflyfx-auth-hmac"
README = EXAMPLE / "README.md"
TIMEOUT = 120.0  # only keeps a broken run from hanging; nothing here is timed
SHELL_BLOCK = re.compile(r"^```shell\n(.*?)^```$", re.DOTALL | re.MULTILINE)
EXPORT = re.compile(r"""export (BUTTERFLYFX_AUTH_HMAC__SECRET)="\$\(python -c '([^']*)'\)\"""")
TOKEN_LINE = re.compile(r"TOKEN=\$\((butterflyfx [^|]+) \| tail -n 1\)")


def readme_lines() -> list[str]:
    """Every line of the README's ```shell blocks, in order."""
    text = README.read_text(encoding="utf-8")
    return [line for block in SHELL_BLOCK.findall(text) for line in block.splitlines() if line]


def lines_starting(prefix: str) -> list[str]:
    return [line for line in readme_lines() if line.startswith(prefix)]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The README's ``pip install ./examples/plugins/butterflyfx-auth-hmac``, into a folder."""
    (install,) = lines_starting("pip install ")
    assert (ROOT / shlex.split(install)[2]).resolve() == EXAMPLE
    work = tmp_path_factory.mktemp("auth-hmac")
    source = work / "source"  # a copy: building writes build/ and *.egg-info beside the code
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__py*"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", str(work / "wheels"),
         str(source)],
        check=True, timeout=TIMEOUT, cwd=work,
    )  # fmt: skip
    (wheel,) = (work / "wheels").glob("butterflyfx_auth_hmac-1.0.0-*.whl")
    target = work / "site"
    subprocess.run(
        [*pip, "install", "--no-deps", "--no-index", "--target", str(target), str(wheel)],
        check=True, timeout=TIMEOUT, cwd=work,
    )  # fmt: skip
    return target


def environment(site: Path, **extra: str) -> dict[str, str]:
    """This environment without BUTTERFLYFX_ settings, the installed plugin importable."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("BUTTERFLYFX_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # leave no __pycache__ in the example folder
    return {**env, **extra}


def butterflyfx(command: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """A README ``butterflyfx ...`` line, run as ``python -m butterflyfx.server.cli ...``."""
    name, *args = shlex.split(command)
    assert name == "butterflyfx"
    return subprocess.run(
        [sys.executable, "-m", "butterflyfx.server.cli", *args],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


def curl(line: str, token: str, url: str) -> httpx.Response:
    """A README ``curl`` line sent with httpx: its -H headers, its -d body, to the live server."""
    _, *words = shlex.split(line.replace("$TOKEN", token))
    headers: dict[str, str] = {}
    body: str | None = None
    while words[0].startswith("-"):
        flag, value, *words = words
        if flag == "-H":
            name, _, header = value.partition(": ")
            headers[name] = header
        else:
            assert flag == "-d", f"the test cannot send curl's {flag}: {line}"
            body = value
    (address,) = words
    address = address.replace("http://127.0.0.1:8000", url)
    with httpx.Client(timeout=30.0, trust_env=False) as client:
        return client.request("POST" if body else "GET", address, headers=headers, content=body)


# -- the README shows what the tests run -------------------------------------------


def test_every_shell_line_of_the_readme_is_one_this_file_runs():
    known = (
        r"pip install \S+",
        EXPORT.pattern,
        r"cd examples/plugins/butterflyfx-auth-hmac",
        r"butterflyfx (plugins|serve) --config butterflyfx\.toml",
        TOKEN_LINE.pattern,
        r"curl .*",
        r"python -m pytest examples/plugins/butterflyfx-auth-hmac/tests",
    )
    strange = [line for line in readme_lines() if not any(re.fullmatch(p, line) for p in known)]
    assert readme_lines() and strange == [], f"teach this test to run these README lines: {strange}"


def test_the_readme_shows_the_example_config_file_as_it_is():
    text = README.read_text(encoding="utf-8")
    (shown,) = re.findall(r"^```toml\n(.*?)^```$", text, re.DOTALL | re.MULTILINE)

    assert shown == (EXAMPLE / "butterflyfx.toml").read_text(encoding="utf-8")


# -- the plugin's own tests, against the installed wheel -----------------------------


def test_the_plugins_own_tests_pass_against_its_installed_wheel(site):
    (line,) = lines_starting("python -m pytest ")
    _python, *args = shlex.split(line)

    result = subprocess.run(
        [sys.executable, *args, "-q", "-p", "no:cacheprovider"],
        cwd=ROOT, env=environment(site), capture_output=True, text=True, timeout=TIMEOUT,
    )  # fmt: skip

    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    counts = {
        word: int(n) for n, word in re.findall(r"(\d+) (passed|skipped|failed)", result.stdout)
    }
    assert counts.get("passed", 0) > 0, result.stdout[-2000:]
    # The only story skipped (in both conformance classes): taking a token back while the
    # server runs, which a stateless token cannot offer.
    assert counts.get("skipped", 0) == 2, result.stdout[-2000:]


# -- the README's walkthrough, on a real server ------------------------------------


def test_the_readme_walkthrough_serves_acme_with_a_minted_token(site, tmp_path):
    (export,) = [m for line in readme_lines() if (m := EXPORT.fullmatch(line))]
    variable, recipe = export.groups()
    secret = subprocess.run(
        [sys.executable, "-c", recipe], capture_output=True, text=True, check=True, timeout=TIMEOUT
    ).stdout.strip()
    assert len(secret) >= 32
    env = environment(site, **{variable: secret})
    (folder,) = lines_starting("cd ")
    # The README works in the example folder; here a copy of its config, so the server's
    # data folder (data_dir, relative) lands in tmp_path.
    shutil.copy(ROOT / folder.split()[1] / "butterflyfx.toml", tmp_path / "butterflyfx.toml")

    (plugins,) = lines_starting("butterflyfx plugins ")
    listed = butterflyfx(plugins, env, tmp_path)
    assert listed.returncode == 0, listed.stderr
    rows = {line.split()[0]: line.split() for line in listed.stdout.splitlines()[1:]}
    assert rows["auth.hmac"][:4] == ["auth.hmac", "loaded", "1.0.0", "butterflyfx-auth-hmac"]

    (serve,) = lines_starting("butterflyfx serve ")
    port, log = free_port(), tmp_path / "server.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "butterflyfx.server.cli", *shlex.split(serve)[1:],
             "--port", str(port), "--log-format", "json"],
            env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=stderr,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(
            process, f"{url}/api/v1/health", deadline=TIMEOUT,
            log=lambda: log.read_text(errors="replace"),
        )  # fmt: skip
        (minting,) = [m.group(1) for line in readme_lines() if (m := TOKEN_LINE.fullmatch(line))]
        minted = butterflyfx(minting, env, tmp_path)
        assert minted.returncode == 0, minted.stderr
        token = minted.stdout.splitlines()[-1]

        create, read = (curl(line, token, url) for line in lines_starting("curl "))
        substrate_id = create.json()["substrate_id"]
        with httpx.Client(base_url=url, timeout=30.0, trust_env=False) as client:
            by_id = client.get(f"/api/v1/substrates/{substrate_id}", headers=bearer(token))
            flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
            altered = client.get("/api/v1/substrates", headers=bearer(flipped))
            without = client.get("/api/v1/substrates")
        process.send_signal(signal.SIGTERM)
        code = process.wait(TIMEOUT)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(TIMEOUT)

    assert create.status_code == 201, create.text
    assert read.status_code == 200
    assert [item["substrate_id"] for item in read.json()["items"]] == [substrate_id]
    assert by_id.status_code == 200
    for refused in (altered, without):
        assert refused.status_code == 401
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
        assert refused.headers["Content-Type"] == "application/problem+json"
    assert "signature does not match" in altered.json()["detail"]
    assert code == 0, log.read_text(errors="replace")
    server_log = log.read_text(errors="replace")
    assert secret not in server_log and token not in server_log and flipped not in server_log
    assert secret not in minted.stdout


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
