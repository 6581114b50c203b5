"""The ``static`` plugin in process: a site's files beside the API, as browsers and download
tools fetch them (content types, revalidation, ranges, HEAD), and the API left untouched.

Path traversal against a real server is in tests/server/test_static_files.py.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from quart import Blueprint

from butterflyfx.core.auth import open_route
from butterflyfx.core.config import ConfigError, read_config
from butterflyfx.core.context import ServerContext
from butterflyfx.core.hookspecs import hookimpl
from butterflyfx.core.plugins import PluginError
from butterflyfx.plugins.http.app import create_app

PROBLEM = "application/problem+json"
DIGITS = b"0123456789"


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A small site: a page, its assets, a download, a folder with and one without an index."""
    root = tmp_path / "site"
    (root / "docs").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "index.html").write_text("<h1>Welcome</h1>")
    (root / "docs" / "index.html").write_text("<h1>Docs</h1>")
    (root / "app.css").write_text("body { margin: 0 }")
    (root / "app.js").write_text("console.log(1)")
    (root / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (root / "data.json").write_text("{}")
    (root / "backup.tar.gz").write_bytes(b"\x1f\x8b")
    (root / "notes.unknownext").write_text("?")
    (root / "digits.txt").write_bytes(DIGITS)
    (root / "same-digits.txt").symlink_to("digits.txt")  # a link inside, to inside
    return root


def build(
    tmp_path: Path,
    plugins: str = "storage.memory,http,static",
    extra: dict[str, object] | None = None,
    **static: Any,
) -> Any:
    env = {"BUTTERFLYFX_PLUGINS": plugins}
    env.update({f"BUTTERFLYFX_STATIC__{key.upper()}": str(value) for key, value in static.items()})
    config = read_config(None, env=env, overrides={"data_dir": tmp_path / "data"})
    return create_app(ServerContext.build(config, extra))


def serve(app: Any, scenario: Callable[[Any], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        async with app.test_app() as running:
            return await scenario(running.test_client())

    return asyncio.run(main())


def fetch(app: Any, *requests: tuple[str, str, dict[str, str]]) -> list[Any]:
    """Each ``(method, path, headers)`` against one server life: ``(response, body)``."""

    async def scenario(client: Any) -> list[Any]:
        answers = []
        for method, path, headers in requests:
            response = await client.open(path, method=method, headers=headers)
            answers.append((response, await response.get_data()))
        return answers

    return serve(app, scenario)


def get(app: Any, *paths: str, **headers: str) -> list[Any]:
    return fetch(app, *[("GET", path, headers) for path in paths])


def test_a_visitor_gets_the_home_page_and_each_asset_with_its_content_type(tmp_path, site):
    app = build(tmp_path, directory=site)
    paths = ["/", "/app.css", "/app.js", "/logo.png", "/data.json", "/backup.tar.gz",
             "/notes.unknownext"]  # fmt: skip

    answers = get(app, *paths)

    types = {path: r.headers["Content-Type"] for path, (r, _) in zip(paths, answers, strict=True)}
    assert types == {
        "/": "text/html; charset=utf-8",
        "/app.css": "text/css; charset=utf-8",
        "/app.js": "text/javascript; charset=utf-8",
        "/logo.png": "image/png",
        "/data.json": "application/json",
        "/backup.tar.gz": "application/gzip",  # the archive itself, not a gzip-encoded tar
        "/notes.unknownext": "application/octet-stream",
    }
    home, body = answers[0]
    assert home.status_code == 200 and body == b"<h1>Welcome</h1>"
    assert all(r.headers["X-Content-Type-Options"] == "nosniff" for r, _ in answers)
    assert all(r.headers["Cache-Control"] == "no-cache" for r, _ in answers)


def test_a_browser_revalidating_an_unchanged_file_gets_304_and_a_changed_one_200(tmp_path, site):
    app = build(tmp_path, directory=site)
    [(first, _)] = get(app, "/digits.txt")
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]

    same_tag, same_date, (other, problem) = fetch(
        app,
        ("GET", "/digits.txt", {"If-None-Match": etag}),
        ("GET", "/digits.txt", {"If-Modified-Since": modified}),
        ("GET", "/digits.txt", {"If-Match": '"another-version"'}),
    )
    (site / "digits.txt").write_bytes(b"9876543210")
    os.utime(site / "digits.txt", (1e9, 2e9))  # another second than the first version's
    [(changed, body)] = get(app, "/digits.txt", **{"If-None-Match": etag})

    for response, body_304 in (same_tag, same_date):
        assert response.status_code == 304 and body_304 == b""
        assert response.headers["ETag"] == etag
    assert other.status_code == 412 and b"precondition-failed" in problem
    assert changed.status_code == 200 and body == b"9876543210"
    assert changed.headers["ETag"] != etag


def test_a_download_resumes_from_a_byte_range(tmp_path, site):
    app = build(tmp_path, directory=site)
    [(whole, _)] = get(app, "/digits.txt")
    middle, tail, stale = fetch(
        app,
        ("GET", "/digits.txt", {"Range": "bytes=2-4"}),
        ("GET", "/digits.txt", {"Range": "bytes=-3"}),
        # If-Range names another version: the whole current file comes back instead.
        ("GET", "/digits.txt", {"Range": "bytes=2-4", "If-Range": '"an-old-version"'}),
    )

    assert whole.headers["Accept-Ranges"] == "bytes"
    assert middle[0].status_code == 206 and middle[1] == b"234"
    assert middle[0].headers["Content-Range"] == "bytes 2-4/10"
    assert tail[0].status_code == 206 and tail[1] == b"789"
    assert tail[0].headers["Content-Range"] == "bytes 7-9/10"
    assert stale[0].status_code == 200 and stale[1] == DIGITS


def test_a_large_file_arrives_whole_and_in_ranges_that_cross_read_chunks(tmp_path, site):
    video = bytes(range(256)) * 1000  # 256 kB: several of the plugin's 64 KiB reads
    (site / "clip.mp4").write_bytes(video)

    (whole, body), (part, piece) = fetch(
        build(tmp_path, directory=site),
        ("GET", "/clip.mp4", {}),
        ("GET", "/clip.mp4", {"Range": "bytes=65530-131080"}),
    )

    assert whole.headers["Content-Type"] == "video/mp4" and body == video
    assert part.status_code == 206 and piece == video[65530:131081]
    assert part.headers["Content-Range"] == f"bytes 65530-131080/{len(video)}"


def test_a_range_past_the_end_is_416_naming_the_file_size(tmp_path, site):
    [(response, body)] = get(build(tmp_path, directory=site), "/digits.txt", Range="bytes=10-")

    assert response.status_code == 416
    assert response.headers["Content-Range"] == "bytes */10"
    assert response.headers["Content-Type"] == PROBLEM
    assert b"range-not-satisfiable" in body and b'"size":10' in body


def test_several_ranges_another_unit_or_a_malformed_range_get_the_whole_file(tmp_path, site):
    ranges = ["bytes=0-1,4-5", "items=0-1", "bytes=banana"]

    answers = fetch(
        build(tmp_path, directory=site), *[("GET", "/digits.txt", {"Range": r}) for r in ranges]
    )

    assert [(r.status_code, body) for r, body in answers] == [(200, DIGITS)] * 3


def test_head_answers_the_headers_of_get_without_the_body(tmp_path, site):
    (got, _), (head, body) = fetch(
        build(tmp_path, directory=site), ("GET", "/digits.txt", {}), ("HEAD", "/digits.txt", {})
    )

    # Content-Length of HEAD is checked over HTTP in tests/server/test_static_files.py:
    # Quart's test client recomputes it from the (empty) body it collected.
    assert head.status_code == 200 and body == b""
    for name in ("ETag", "Last-Modified", "Content-Type", "Accept-Ranges"):
        assert head.headers[name] == got.headers[name]


def test_folders_serve_their_index_and_are_never_listed(tmp_path, site):
    app = build(tmp_path, directory=site)

    (bare, _), (slashed, body), (empty, _), (file_as_folder, _) = get(
        app, "/docs?tab=2", "/docs/", "/empty/", "/digits.txt/"
    )

    assert bare.status_code == 301 and bare.headers["Location"] == "/docs/?tab=2"
    assert slashed.status_code == 200 and body == b"<h1>Docs</h1>"
    assert empty.status_code == 404 and empty.headers["Content-Type"] == PROBLEM
    assert file_as_folder.status_code == 404


def test_a_link_inside_the_folder_to_a_file_inside_is_served_but_dotfiles_are_not(tmp_path, site):
    (site / ".env").write_text("PASSWORD=hunter2")
    (site / "env.txt").symlink_to(".env")  # a visible name for a hidden file

    (linked, body), (hidden, _), (via_link, leaked) = get(
        build(tmp_path, directory=site), "/same-digits.txt", "/.env", "/env.txt"
    )

    assert linked.status_code == 200 and body == DIGITS
    assert hidden.status_code == 404 and via_link.status_code == 404
    assert b"hunter2" not in leaked


def test_only_get_and_head_are_allowed_on_files(tmp_path, site):
    methods = ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"]

    answers = fetch(build(tmp_path, directory=site), *[(m, "/digits.txt", {}) for m in methods])

    for response, _ in answers:
        assert response.status_code == 405
        assert set(response.headers["Allow"].replace(" ", "").split(",")) == {"GET", "HEAD"}


def test_files_named_like_the_api_never_shadow_it(tmp_path, site):
    for name in ("api/v1/nope", "api/v1/health", "-/plugins", "api"):
        (site / name).parent.mkdir(parents=True, exist_ok=True)
    (site / "api" / "v1" / "nope").write_text("a file, not the API")
    (site / "-" / "plugins").write_text("a file, not the API")
    app = build(tmp_path, directory=site)

    answers = fetch(
        app,
        ("GET", "/api/v1/nope", {}),
        ("GET", "/api/v1/health", {}),
        ("POST", "/api/v1/nope", {}),
        ("GET", "/-/plugins", {}),
        ("GET", "/-/nothing-here", {}),
        ("GET", "/api", {}),
    )
    (missing, body), (health, health_body), (post, _), (plugins, plugins_body) = answers[:4]
    (dash, _), (bare, _) = answers[4:]

    assert missing.status_code == 404 and missing.headers["Content-Type"] == PROBLEM
    assert b"a file, not the API" not in body
    assert health.status_code == 200 and b'"static"' in health_body
    assert post.status_code == 404  # the API's 404, not the files' 405
    assert b"a file, not the API" not in plugins_body  # whatever the API answers there
    assert dash.status_code == 404 and dash.headers["Content-Type"] == PROBLEM
    assert bare.status_code == 404 and bare.headers["Content-Type"] == PROBLEM


class StatusPage:
    """A third-party plugin with a page of its own at the top level, as ``/metrics`` is."""

    @hookimpl
    def butterflyfx_routes(self, app: Any) -> None:
        page = Blueprint("status_page", __name__)

        @page.get("/status")
        @open_route
        async def status() -> dict[str, str]:
            return {"page": "the plugin's"}

        app.register_blueprint(page)


def test_another_plugin_s_top_level_page_wins_over_a_file_of_the_same_name(tmp_path, site):
    (site / "status").write_text("a file")
    app = build(
        tmp_path, "storage.memory,http,static,status", {"status": StatusPage()}, directory=site
    )

    [(response, body)] = get(app, "/status")

    assert response.status_code == 200 and body == b'{"page":"the plugin\'s"}'


def test_files_are_public_while_the_api_still_needs_a_key(tmp_path, site, capsys):
    app = build(tmp_path, "storage.memory,http,auth.apikey,static", directory=site)

    (page, _), (api, _) = get(app, "/", "/api/v1/substrates")

    assert page.status_code == 200
    assert api.status_code == 401


def test_cache_seconds_lets_browsers_keep_files_without_asking(tmp_path, site):
    [(response, _)] = get(build(tmp_path, directory=site, cache_seconds=3600), "/app.css")

    assert response.headers["Cache-Control"] == "public, max-age=3600"


def test_without_a_directory_no_file_is_served_and_health_says_so(tmp_path, site):
    async def scenario(client: Any) -> Any:
        page = await client.get("/")
        health = await client.get("/api/v1/health")
        return page.status_code, (await health.get_json())["plugins"]["static"]

    page, state = serve(build(tmp_path), scenario)

    assert page == 404
    assert state["status"] == "ok" and state["serving"] is False
    assert "static.directory is not set" in state["detail"]


def test_a_directory_that_goes_away_while_serving_makes_the_plugin_degraded(tmp_path, site):
    async def scenario(client: Any) -> Any:
        before = (await (await client.get("/api/v1/health")).get_json())["plugins"]["static"]
        shutil.rmtree(site)
        page = await client.get("/")
        after = await client.get("/api/v1/health")
        return before, page.status_code, after.status_code, (await after.get_json())

    before, page, status, after = serve(build(tmp_path, directory=site), scenario)

    assert before == {
        "status": "ok",
        "serving": True,
        "directory": str(site),
        "index": "index.html",
    }
    assert page == 404
    assert status == 200 and after["status"] == "degraded"  # the API still answers
    assert after["plugins"]["static"]["status"] == "degraded"


def test_a_directory_that_does_not_exist_stops_start_up(tmp_path):
    env = {"BUTTERFLYFX_PLUGINS": "storage.memory,http,static",
           "BUTTERFLYFX_STATIC__DIRECTORY": str(tmp_path / "no-such-site")}  # fmt: skip
    ctx = ServerContext.build(read_config(None, env=env, overrides={"data_dir": tmp_path}))

    with pytest.raises(PluginError) as refused:
        asyncio.run(ctx.start())

    assert str(refused.value).startswith("plugin 'static' failed to start: NotADirectoryError")
    assert "no-such-site" in str(refused.value) and "leave the key unset" in str(refused.value)


@pytest.mark.parametrize("index", ["../index.html", "sub/index.html", ".index.html"])
def test_an_index_that_is_not_a_plain_file_name_is_refused_at_boot(tmp_path, index):
    with pytest.raises(ConfigError, match=r"section \[static\], key 'index'"):
        build(tmp_path, directory=tmp_path, index=index)
