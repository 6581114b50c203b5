"""The folder where every worker of one ``butterflyfx serve`` writes its series.

prometheus-client's multiprocess mode keeps each process's values in memory-mapped files
(``counter_<pid>.db``) in ``PROMETHEUS_MULTIPROC_DIR`` and sums them when scraped. The
folder must hold one run's files only, so each run has its own, named by ``ctx.run_id``
(shared by a serve's processes, new for every serve), under ``<data_dir>/metrics``.

Every process of a run holds a shared ``flock`` on ``<folder>/.lock`` until it exits
(the kernel drops it even after SIGKILL). A starting process removes the folders of other
runs whose lock it can take exclusively: nobody of theirs is left. Two servers sharing a
data folder never remove each other's files, and a folder is only ever removed after
being renamed out of the way, so a process that claims it at that moment notices and
makes a new one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

LOCK = ".lock"
REMOVING = ".removing-"  # a stale folder, renamed, on its way out
ATTEMPTS = 10  # claims lost to a cleaner in a row before giving up (each loss is rare)

# Claimed folders stay locked until the process exits: a serve's parent claims it while
# checking the plugins, then waits for its workers, and must keep it claimed meanwhile.
_claimed: dict[Path, RunFolder] = {}


@dataclass(frozen=True)
class RunFolder:
    path: Path
    lock_fd: int

    @classmethod
    def claim(cls, root: Path, run_id: str) -> RunFolder:
        """This run's folder under ``root``, created if need be and locked (shared) for
        as long as this process lives; other runs' stale folders are removed first."""
        path = (root / run_id).resolve()
        if path in _claimed:
            return _claimed[path]
        root.mkdir(parents=True, exist_ok=True)
        remove_stale(root, keep=run_id)
        for _ in range(ATTEMPTS):
            path.mkdir(exist_ok=True)
            fd = os.open(path / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(fd, fcntl.LOCK_SH)  # waits while a cleaner holds it
            if _same_file(fd, path / LOCK):
                _claimed[path] = folder = cls(path, fd)
                return folder
            os.close(fd)  # a cleaner removed the folder between mkdir and flock: again
        raise OSError(f"could not claim the metrics folder {path}: it kept being removed")


def remove_stale(root: Path, keep: str) -> list[str]:
    """Remove the folders under ``root`` that no running process holds; their names."""
    removed = []
    for folder in sorted(root.iterdir()):
        if folder.name == keep or not folder.is_dir():
            continue
        if folder.name.startswith(REMOVING):  # a cleaner died half-way
            shutil.rmtree(folder, ignore_errors=True)
            continue
        try:
            # O_CREAT: a folder without a lock file was left by a crash, or is being made
            # right now (its maker then finds its lock file gone and makes a new one).
            fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:  # another cleaner moved it first
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a process of that run is alive
            doomed = root / f"{REMOVING}{folder.name}-{os.getpid()}"
            try:
                folder.rename(doomed)
            except OSError:
                continue
            shutil.rmtree(doomed, ignore_errors=True)
            removed.append(folder.name)
        finally:
            os.close(fd)
    return removed


def _same_file(fd: int, path: Path) -> bool:
    with contextlib.suppress(FileNotFoundError):
        held, named = os.fstat(fd), os.stat(path)
        return (held.st_dev, held.st_ino) == (named.st_dev, named.st_ino)
    return False
