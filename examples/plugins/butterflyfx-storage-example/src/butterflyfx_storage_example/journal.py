"""The journal file: JSON lines appended under a lock, read by every process that shares it.

Any number of processes (the server's workers, a second server on the same folder) may
have one journal open. Each keeps its own copy of the data in memory, and each operation:

1. takes the lock file beside the journal (``flock``: shared to read, exclusive to write),
2. reads the lines other processes appended since its last look (or the whole file again
   when another process compacted it, which replaces the file: a new inode),
3. answers from memory and, for a write, appends one line and ``fsync``s it before the
   lock is released, so a write is acknowledged only once it is on disk.

A crash can leave a last line without its newline: a write never acknowledged. Readers
ignore it; the next writer cuts it off before appending. Compaction (at close) writes the
live data as a new file and renames it over the journal, under the exclusive lock.

``flock`` needs a local POSIX file system: not NFS, not Windows.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .records import HEADER, Record, line, parse


class JournalError(RuntimeError):
    """The journal cannot be used: not a journal, a damaged line, a file that went away."""


class Journal:
    """One open journal file. ``apply(record)`` is called for every line read, in order
    (the header excepted); ``reset()`` before the file is read again from its start."""

    def __init__(
        self,
        path: Path,
        apply: Callable[[Record], None],
        reset: Callable[[], None],
        *,
        fsync: bool = True,
    ) -> None:
        self.path = path
        self.lock_path = path.with_name(path.name + ".lock")
        self.compacting_path = path.with_name(path.name + ".compacting")
        self._apply, self._reset, self._fsync = apply, reset, fsync
        self._lock_fd: int | None = None
        self._fd: int | None = None
        self._file: tuple[int, int] = (0, 0)  # (device, inode) of the file we read
        self.offset = 0  # bytes of complete lines read
        self.records = 0  # lines read, the header included

    # -- opening and closing ------------------------------------------------------------
    def open(self) -> None:
        """Create the journal (with its header) if there is none, then read all of it."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise JournalError(f"cannot open the journal {str(self.path)!r}: {error}") from error
        try:
            with self.locked(exclusive=True, catch_up=False):
                self.compacting_path.unlink(missing_ok=True)  # a compaction a crash cut short
                try:
                    self._open_file(create=True)
                except OSError as error:
                    raise JournalError(
                        f"cannot open the journal {str(self.path)!r}: {error}"
                    ) from error
                if os.fstat(self._file_fd).st_size == 0:
                    self._write(line(HEADER))
                    _sync_folder(self.path.parent)
                self._catch_up()
        except BaseException:
            self._close_files()
            raise

    def close(self, snapshot: Callable[[], Iterable[Record]] | None = None) -> None:
        """Close the files; with ``snapshot``, first rewrite the journal as those records
        when that makes it shorter (fewer lines than it has)."""
        if self._lock_fd is None:
            return
        try:
            if snapshot is not None:
                with self.locked(exclusive=True):
                    self._compact(snapshot())
        finally:
            self._close_files()

    def _close_files(self) -> None:
        for fd in (self._fd, self._lock_fd):
            if fd is not None:
                os.close(fd)
        self._fd = self._lock_fd = None

    # -- under the lock -----------------------------------------------------------------
    @contextmanager
    def locked(self, *, exclusive: bool, catch_up: bool = True) -> Iterator[None]:
        """Hold the lock (exclusive to write), having read every line written before."""
        if self._lock_fd is None:
            raise JournalError(f"the journal {str(self.path)!r} is not open")
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            if catch_up:
                self._catch_up()
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def append(self, record: Record) -> None:
        """Write one record at the end and make it durable; under the exclusive lock only.
        The record is applied to memory only once it is on disk."""
        size = os.fstat(self._file_fd).st_size
        if size > self.offset:  # a torn last line: a crashed writer's, never acknowledged
            os.ftruncate(self._file_fd, self.offset)
        self._write(line(record))
        self._apply(record)

    def _write(self, data: bytes) -> None:
        try:
            view = memoryview(data)
            while view:
                written = os.write(self._file_fd, view)
                view = view[written:]
            if self._fsync:
                os.fsync(self._file_fd)
        except OSError:
            os.ftruncate(self._file_fd, self.offset)  # leave no half-written line behind
            raise
        self.offset += len(data)
        self.records += 1

    def _catch_up(self) -> None:
        """Read what was appended since the last look; everything when the file was replaced."""
        try:
            on_disk = os.stat(self.path)
        except FileNotFoundError:
            raise JournalError(f"the journal {str(self.path)!r} is gone") from None
        if (on_disk.st_dev, on_disk.st_ino) != self._file:
            self._open_file(create=False)
            self._reset()
        size = os.fstat(self._file_fd).st_size
        if size <= self.offset:
            return
        data = os.pread(self._file_fd, size - self.offset, self.offset)
        complete = data[: data.rfind(b"\n") + 1]  # a torn last line is left for a writer
        start = 0
        while start < len(complete):
            end = complete.index(b"\n", start) + 1
            self._read_line(complete[start:end])
            self.offset += end - start
            start = end

    def _read_line(self, raw: bytes) -> None:
        number = self.records + 1
        try:
            record = parse(raw)
        except ValueError as error:
            record, damage = None, str(error)
        if number == 1:
            if record != HEADER:
                raise JournalError(
                    f"{str(self.path)!r} is not a storage.example journal: its first line is "
                    f"not {line(HEADER).decode().strip()}"
                )
        elif record is None or record == HEADER:
            reason = damage if record is None else "a second header"
            raise JournalError(
                f"{str(self.path)!r}, line {number}, is not a journal record ({reason})"
            )
        else:
            try:
                self._apply(record)
            except (KeyError, TypeError, ValueError) as error:
                raise JournalError(
                    f"{str(self.path)!r}, line {number}: a damaged record "
                    f"({type(error).__name__}: {error})"
                ) from None
        self.records = number

    def _compact(self, records: Iterable[Record]) -> None:
        lines = [line(HEADER), *(line(record) for record in records)]
        if len(lines) >= self.records:
            return
        with open(self.compacting_path, "wb") as file:
            file.writelines(lines)
            file.flush()
            os.fsync(file.fileno())
        os.replace(self.compacting_path, self.path)
        _sync_folder(self.path.parent)
        # Other processes see the new inode at their next look and read it from the start.
        self._open_file(create=False)
        self.offset, self.records = sum(map(len, lines)), len(lines)

    def _open_file(self, *, create: bool) -> None:
        flags = os.O_RDWR | os.O_APPEND | (os.O_CREAT if create else 0)
        fd = os.open(self.path, flags, 0o644)
        if self._fd is not None:
            os.close(self._fd)
        self._fd = fd
        status = os.fstat(fd)
        self._file = (status.st_dev, status.st_ino)
        self.offset = self.records = 0

    @property
    def _file_fd(self) -> int:
        if self._fd is None:
            raise JournalError(f"the journal {str(self.path)!r} is not open")
        return self._fd


def _sync_folder(folder: Path) -> None:
    """Make a new or renamed file's name durable, not only its bytes."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
