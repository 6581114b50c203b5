"""``GET /`` and ``GET /<path>``: files from the served folder, with the caching and range
answers browsers and download tools expect, and nothing else.

The rules never claim ``/api`` or ``/-`` (nor anything below them), so every API path keeps
the API's own answers, a 404 problem document included, whatever the folder holds.
Werkzeug also ranks a rule with literal segments (``/metrics``) above one that takes the
whole path, so another plugin's top-level routes win too.
"""

from __future__ import annotations

import asyncio
import mimetypes
import os
import stat
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO
from urllib.parse import quote

from quart import Blueprint, Quart, Response, redirect, request
from quart.wrappers.response import DataBody, ResponseBody
from quart_schema import hide
from werkzeug.exceptions import NotFound, RequestedRangeNotSatisfiable
from werkzeug.routing import PathConverter

from butterflyfx.core.auth import open_route
from butterflyfx.core.problems import Problem, ProblemError

from .location import FolderWithoutSlash, Found, inside, locate
from .settings import StaticSettings

CHUNK = 64 * 1024
# Python's own table, not the host's /etc/mime.types, so every host answers alike; plus
# what the table lacks or names by an older name (RFC 9239 for JavaScript).
TYPES = mimetypes.MimeTypes(filenames=())
for _type, _extensions in {
    "text/javascript": (".js", ".mjs"),
    "application/json": (".json", ".map"),
    "application/manifest+json": (".webmanifest",),
    "application/wasm": (".wasm",),
    "image/svg+xml": (".svg",),
    "image/webp": (".webp",),
    "image/avif": (".avif",),
    "font/woff": (".woff",),
    "font/woff2": (".woff2",),
}.items():
    for _extension in _extensions:
        TYPES.add_type(_type, _extension)
# A compressed file is sent as the archive it is, never as its contents with an encoding.
COMPRESSED = {"gzip": "application/gzip", "bzip2": "application/x-bzip2", "xz": "application/x-xz"}
OCTETS = "application/octet-stream"


class OutsideApi(PathConverter):
    """A path of any depth, except ``api`` and ``-`` and everything under them."""

    regex = r"(?!(?:api|-)(?:/|$))[^/].*?"


def content_type(path: str) -> str:
    kind, encoding = TYPES.guess_type(path, strict=False)
    if encoding is not None:
        return COMPRESSED.get(encoding, OCTETS)
    return kind or OCTETS


class OpenFile(ResponseBody):
    """A response body read from a file already open (the one checked), in chunks, off the
    event loop; Quart narrows it to one range through :meth:`make_conditional`."""

    def __init__(self, file: IO[bytes], size: int) -> None:
        self.file, self.size = file, size
        self.begin, self.end = 0, size

    async def __aenter__(self) -> OpenFile:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self.file.close()

    def __aiter__(self) -> OpenFile:
        return self

    async def __anext__(self) -> bytes:
        if self.begin >= self.end:
            raise StopAsyncIteration
        chunk = await asyncio.to_thread(self._read, self.begin, min(CHUNK, self.end - self.begin))
        if not chunk:  # the file shrank while being sent
            raise StopAsyncIteration
        self.begin += len(chunk)
        return chunk

    def _read(self, offset: int, length: int) -> bytes:
        self.file.seek(offset)
        return self.file.read(length)

    async def make_conditional(self, begin: int, end: int | None) -> int:
        if begin < 0:  # a suffix range, "bytes=-500": the last 500 bytes
            begin, end = max(self.size + begin, 0), None
        end = self.size if end is None else min(end, self.size)
        if begin >= end:
            raise RequestedRangeNotSatisfiable(length=self.size)
        self.begin, self.end = begin, end
        return self.size


def open_checked(found: Found) -> IO[bytes] | None:
    """Open the file found, or None if what is there now is not what was checked.

    A folder's contents can change between the check and the open (a symlink swapped in by
    someone who may write there): the open follows no final symlink, the opened file must
    be the very one checked, and where the system can say, its real path must still be
    inside the folder.
    """
    # O_NONBLOCK: a FIFO swapped in must not block the event loop on open.
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        descriptor = os.open(found.path, flags)
    except OSError:
        return None
    file = os.fdopen(descriptor, "rb", buffering=0)
    try:
        opened = os.fstat(descriptor)
        same = (opened.st_dev, opened.st_ino) == (found.status.st_dev, found.status.st_ino)
        real = _real_path(descriptor)
        if same and stat.S_ISREG(opened.st_mode) and (real is None or inside(real, found.root)):
            return file
    except OSError:
        pass
    file.close()
    return None


def _real_path(descriptor: int) -> str | None:
    try:
        return os.readlink(f"/proc/self/fd/{descriptor}")  # Linux
    except OSError:
        return None


class StaticRoutes:
    """The served folder's routes, bound to its settings."""

    def __init__(self, settings: StaticSettings) -> None:
        assert settings.directory is not None
        self.directory: Path = settings.directory
        self.index = settings.index
        self.cache_seconds = settings.cache_seconds

    def install(self, app: Quart) -> None:
        app.url_map.converters["outside_api"] = OutsideApi
        bp = Blueprint("static_files", __name__)
        for rule in ("/", "/<outside_api:path>"):
            # GET answers HEAD too; OPTIONS and the rest are 405 with Allow: GET, HEAD.
            bp.add_url_rule(
                rule,
                view_func=self.serve,
                methods=["GET"],
                provide_automatic_options=False,
                merge_slashes=False,  # "//etc/passwd" is refused, not redirected
                strict_slashes=False,
            )
        app.register_blueprint(bp)

    @hide
    @open_route
    async def serve(self, path: str = "") -> Response:
        found = locate(self.directory, path, self.index)
        if isinstance(found, FolderWithoutSlash):
            query = request.query_string.decode("latin-1")
            target = quote(request.path + "/") + (f"?{query}" if query else "")
            return redirect(target, 301)  # type: ignore[return-value]
        file = open_checked(found) if found is not None else None
        if found is None or file is None:
            raise NotFound()
        return await self.respond(found, file)

    async def respond(self, found: Found, file: IO[bytes]) -> Response:
        size = found.status.st_size
        body = OpenFile(file, size)
        try:
            response = await self.conditional(body, found)
        except RequestedRangeNotSatisfiable:
            body.close()
            raise ProblemError(unsatisfiable(size)) from None
        except BaseException:
            body.close()
            raise
        if response.status_code == 412:
            body.close()
            raise ProblemError(
                Problem(412, "precondition-failed", "Precondition failed",
                        "If-Match names no current version of this file")
            )  # fmt: skip
        if response.response is not body:  # a 304: Quart dropped the body
            body.close()
        elif request.method == "HEAD":  # the length stays; no byte is read
            body.close()
            response.response = DataBody(b"")
        return response

    async def conditional(self, body: OpenFile, found: Found) -> Response:
        """The whole file's response, narrowed by the request's conditions: 304, or 206."""
        size = found.status.st_size
        response = Response(body, mimetype=content_type(found.path))
        response.content_length = size
        response.set_etag(f"{found.status.st_mtime_ns:x}-{size:x}")
        response.last_modified = datetime.fromtimestamp(found.status.st_mtime, UTC)
        response.headers["Accept-Ranges"] = "bytes"
        response.headers["X-Content-Type-Options"] = "nosniff"
        if self.cache_seconds:
            response.headers["Cache-Control"] = f"public, max-age={self.cache_seconds}"
        else:
            response.headers["Cache-Control"] = "no-cache"
        # Without a length Quart leaves the Range alone; 304s still apply.
        length = size if honours_range() else None
        return await response.make_conditional(request, accept_ranges=True, complete_length=length)


def honours_range() -> bool:
    """False when the request's Range is one to ignore (RFC 9110 allows it) and answer with
    the whole file: several ranges, another unit than bytes, or a malformed header."""
    if "Range" not in request.headers:
        return True
    asked = request.range
    return asked is not None and asked.units == "bytes" and len(asked.ranges) == 1


def unsatisfiable(size: int) -> Problem:
    return Problem(
        416, "range-not-satisfiable", "Range not satisfiable",
        f"the range asked for lies outside the file's {size} bytes",
        {"size": size}, {"Content-Range": f"bytes */{size}"},
    )  # fmt: skip
