"""Which file a URL path names inside the served folder, or that it names none.

Every refusal looks the same to the client (a 404), whether the file is missing, hidden,
a folder without an index, or outside the folder: a probe learns nothing about what
exists. Paths are checked twice: as written (no ``..``, ``.`` or empty segments, no
dotfiles, no backslashes or NUL bytes) and once every symlink is resolved (still inside
the folder, still not hidden), so a symlink inside that points inside is served and one
that points out is not.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Found:
    """A regular file inside the folder: its real path, the folder's real path, its stat."""

    path: str
    root: str
    status: os.stat_result


@dataclass(frozen=True)
class FolderWithoutSlash:
    """The URL names a folder that has an index, without the trailing ``/`` that relative
    links in the index need: the client is sent to the URL with it."""


def safe_segments(url_path: str) -> list[str] | None:
    """The path's segments, or None when any could step out of the folder or is hidden."""
    if not url_path:
        return []
    segments = url_path.removesuffix("/").split("/")
    for segment in segments:
        # "" catches "//etc/passwd" and "a//b"; a leading dot catches ".", ".." and dotfiles.
        if not segment or segment.startswith(".") or "\\" in segment or "\x00" in segment:
            return None
    return segments


def inside(path: str, root: str) -> bool:
    """Whether the real ``path`` is ``root`` or below it, and no part below it is hidden."""
    try:
        if os.path.commonpath([root, path]) != root:
            return False
    except ValueError:  # different drives on Windows
        return False
    below = os.path.relpath(path, root)
    return below == "." or not any(part.startswith(".") for part in Path(below).parts)


def locate(directory: Path, url_path: str, index: str) -> Found | FolderWithoutSlash | None:
    """The file ``url_path`` (the URL's path after its leading ``/``, decoded) names under
    ``directory``, a redirect for a folder's URL lacking its ``/``, or None."""
    segments = safe_segments(url_path)
    if segments is None:
        return None
    # Resolved for every request, so a deploy that switches a symlinked folder
    # (current -> releases/42) is served from the moment it switches.
    root = os.path.realpath(directory)
    wants_folder = url_path == "" or url_path.endswith("/")
    try:
        found = _regular_file(os.path.join(root, *segments), root)
        if found is not None:
            return None if wants_folder else found
        if not index or not os.path.isdir(os.path.join(root, *segments)):
            return None
        found = _regular_file(os.path.join(root, *segments, index), root)
    except (OSError, ValueError):  # a name too long, a loop of symlinks...
        return None
    if found is None:
        return None
    return found if wants_folder else FolderWithoutSlash()


def _regular_file(candidate: str, root: str) -> Found | None:
    real = os.path.realpath(candidate)
    if not inside(real, root):
        return None
    try:
        status = os.stat(real)
    except OSError:
        return None
    return Found(real, root, status) if stat.S_ISREG(status.st_mode) else None
