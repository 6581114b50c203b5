"""A real ``butterflyfx serve`` with the ``static`` plugin, probed over raw HTTP for every way
out of the served folder.

Raw sockets, because HTTP clients normalise ``..`` and re-encode paths before sending: the
bytes on the wire here are exactly the ones listed. A secret lives next to the folder (and
another in a folder a symlink points to); no answer may contain either, and every attempt
must look like a plain missing file: 404, a problem document, nothing else.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from server_process import Butterflyfx, Server

SECRET = "TOP-SECRET-do-not-serve"
PASSWORD_LINE = "root:"  # the first line of /etc/passwd
PLUGINS = "storage.sqlite,http,static"


def layout(tmp_path: Path) -> Path:
    """``site/`` is served; ``secret.txt`` beside it and ``outside/`` are not."""
    site = tmp_path / "site"
    (site / "docs").mkdir(parents=True)
    (site / "index.html").write_text("<h1>Welcome</h1>")
    (site / "hello.txt").write_text("hello, world")
    (site / "docs" / "index.html").write_text("<h1>Docs</h1>")
    (site / "same-hello.txt").symlink_to("hello.txt")  # inside, to inside: served
    (site / "leak.txt").symlink_to(tmp_path / "secret.txt")  # inside, to outside
    (site / "relative-leak.txt").symlink_to("../secret.txt")
    (site / "elsewhere").symlink_to(tmp_path / "outside", target_is_directory=True)
    (site / ".env").write_text(f"PASSWORD={SECRET}")
    (site / ".git").mkdir()
    (site / ".git" / "config").write_text(SECRET)
    (tmp_path / "secret.txt").write_text(SECRET)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_text(SECRET)
    (tmp_path / "outside" / "index.html").write_text(SECRET)
    return site


def raw_get(url: str, target: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    """Send ``target`` byte for byte as the request target; the status, headers and body."""
    address = urlsplit(url)
    with socket.create_connection((address.hostname, address.port), timeout=30) as connection:
        request = (
            f"{method} {target} HTTP/1.1\r\nHost: {address.netloc}\r\nConnection: close\r\n\r\n"
        )
        connection.sendall(request.encode("latin-1"))
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    """One server for every attempt (they only read), with the folder above."""
    tmp_path = tmp_path_factory.mktemp("static")
    site = layout(tmp_path)
    cli = Butterflyfx(tmp_path)
    env = {"BUTTERFLYFX_PLUGINS": PLUGINS, "BUTTERFLYFX_STATIC__DIRECTORY": str(site)}
    try:
        server = cli.start(env=env).wait_ready()
        yield server, tmp_path
    finally:
        for started in cli.servers:
            started.destroy()


ESCAPES = [
    "/../secret.txt",
    "/../../../../../../etc/passwd",
    "/docs/../../secret.txt",
    "/%2e%2e/secret.txt",
    "/%2E%2E/secret.txt",
    "/.%2e/secret.txt",
    "/%2e./secret.txt",
    "/..%2fsecret.txt",
    "/%2e%2e%2fsecret.txt",
    "/docs/%2e%2e/%2e%2e/secret.txt",
    "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/%252e%252e/secret.txt",  # encoded twice: a name with "%2e" in it, not ".."
    "//etc/passwd",
    "///etc/passwd",
    "/%2fetc/passwd",
    "/%2Fetc%2Fpasswd",
    "//{outside}/secret.txt",  # the absolute path of the secret
    "/%2f{outside}/secret.txt",
    "/..\\secret.txt",
    "/..%5csecret.txt",
    "/docs\\..\\..\\secret.txt",
    "/hello.txt%00",
    "/hello.txt%00.html",
    "/..%00/secret.txt",
    "/..;/secret.txt",
    "http://localhost/../secret.txt",  # absolute-form request target
    "/leak.txt",  # a symlink inside, to a file outside
    "/relative-leak.txt",
    "/elsewhere/secret.txt",  # through a symlinked folder that points outside
    "/elsewhere/",
    "/.env",
    "/%2eenv",
    "/.git/config",
    "/%2egit/config",
    "/docs/../.env",
]


@pytest.mark.parametrize("target", ESCAPES)
def test_no_path_reaches_a_file_outside_the_folder_or_a_hidden_one(served, target):
    server, tmp_path = served
    target = target.format(outside=str(tmp_path).lstrip("/"))

    status, headers, body = raw_get(server.url, target)
    _, _, missing = raw_get(server.url, "/no-such-file.txt")

    assert status == 404, body
    assert SECRET.encode() not in body and PASSWORD_LINE.encode() not in body
    assert headers["content-type"] == "application/problem+json"
    # Indistinguishable from a file that does not exist: the same problem, bar its instance.
    problem, plain = json.loads(body), json.loads(missing)
    assert {k: v for k, v in problem.items() if k not in ("instance", "detail")} == {
        k: v for k, v in plain.items() if k not in ("instance", "detail")
    }


def test_the_folder_s_own_files_are_served_through_the_same_server(served):
    server, _ = served

    home = raw_get(server.url, "/")
    hello = raw_get(server.url, "/hello.txt")
    linked = raw_get(server.url, "/same-hello.txt")
    docs = raw_get(server.url, "/docs/")
    head = raw_get(server.url, "/hello.txt", method="HEAD")

    assert home[0] == 200 and home[2] == b"<h1>Welcome</h1>"
    assert hello[0] == 200 and hello[2] == b"hello, world"
    assert linked[0] == 200 and linked[2] == b"hello, world"
    assert docs[0] == 200 and docs[2] == b"<h1>Docs</h1>"
    assert head[0] == 200 and head[2] == b""
    assert head[1]["content-length"] == str(len("hello, world"))
    assert head[1]["etag"] == hello[1]["etag"]


def test_ranges_and_revalidation_work_over_http(served):
    server, _ = served
    client = server.client()

    part = client.get("/hello.txt", headers={"Range": "bytes=0-4"})
    again = client.get("/hello.txt", headers={"If-None-Match": part.headers["ETag"]})
    beyond = client.get("/hello.txt", headers={"Range": "bytes=100-"})

    assert part.status_code == 206 and part.content == b"hello"
    assert part.headers["Content-Range"] == "bytes 0-4/12"
    assert again.status_code == 304 and again.content == b""
    assert beyond.status_code == 416 and beyond.headers["Content-Range"] == "bytes */12"


def test_api_paths_keep_the_api_s_answers_next_to_the_files(served):
    server, _ = served
    client = server.client()

    assert client.get("/api/v1/health").json()["plugins"]["static"]["serving"] is True
    unknown = client.get("/api/v1/no-such-endpoint")
    assert unknown.status_code == 404
    assert unknown.headers["Content-Type"] == "application/problem+json"
    assert client.delete("/hello.txt").status_code == 405
