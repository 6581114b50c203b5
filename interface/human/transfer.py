"""``butterflyfx export`` and ``butterflyfx import FILE``: a tenant as NDJSON, and back.

One JSON object a line: ``{"kind": "substrate", ...}`` with the fields of a substrate as the
API sends them, then ``{"kind": "relationship", ...}`` likewise (export writes every
substrate before any relationship, so an import creates what a relationship names first).

Import reads the lines as it goes (``-`` reads standard input, so ``butterflyfx export |
butterflyfx import -`` copies a tenant between servers) and sends them ``--batch`` at a
time (100 by default, 500 at most) as at most two batch requests, the batch's substrates
first, then its relationships; creates are content-addressed, so a line sent twice names
the same substrate or relationship. After
each batch it writes how many lines are done to ``FILE.checkpoint``; ``--resume`` starts
after them (a lost connection stops the import at the last whole batch). A line that fails
(not JSON, refused by the server) is written with its line number and error to
``FILE.failed`` (``--failures``; ``import.failed`` for standard input, which has no
checkpoint) and the others go on; the exit code is then 1. A progress bar shows on
stderr when stderr is a terminal, and a summary line after it; ``--json`` prints the
counts on stdout too (export's stdout is the NDJSON).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from butterflyfx.core.commands import CommandError

from . import render
from .commands import leaf


@contextlib.contextmanager
def progress(description: str, total: int | None, hidden: bool) -> Iterator[Any]:
    """A rich progress bar on stderr; ``advance()`` moves it. Off when asked, or when
    stderr is not a terminal (a log file gets the summary line alone)."""
    from rich.console import Console
    from rich.progress import Progress

    console = Console(stderr=True)
    with Progress(console=console, disable=hidden or not console.is_terminal) as bar:
        task = bar.add_task(description, total=total)
        yield lambda: bar.advance(task)


def export(client: Any, args: argparse.Namespace) -> int:
    target: IO[str]
    with contextlib.ExitStack() as stack:
        if args.output:
            target = stack.enter_context(open(args.output, "w", encoding="utf-8"))
        else:
            target = sys.stdout
        counts = client.stats()  # the progress bars' totals
        substrates = relationships = 0
        with progress("substrates", counts.substrates, args.no_progress) as advance:
            for substrate in client.list_substrates():
                _write(target, "substrate", substrate)
                substrates += 1
                advance()
        # The list holds each relationship once, bidirectional ones too.
        with progress("relationships", counts.relationships.total, args.no_progress) as advance:
            for relationship in client.list_relationships():
                _write(target, "relationship", relationship)
                relationships += 1
                advance()
    summary = (
        f"exported {render.count(substrates, 'substrate')} and "
        f"{render.count(relationships, 'relationship')}"
    )
    print(f"butterflyfx: {summary}", file=sys.stderr)
    return 0


def _write(target: IO[str], kind: str, model: Any) -> None:
    target.write(json.dumps({"kind": kind, **render.plain(model)}, ensure_ascii=False) + "\n")


MAX_BATCH = 500  # items the server takes in one batch request
STDIN = "-"
SUBSTRATE_FIELDS = ("expression_type", "expression_code", "metadata")
RELATIONSHIP_FIELDS = (
    "source_id", "target_id", "relationship_type", "bidirectional", "weight", "metadata",
)  # fmt: skip


@dataclass(frozen=True)
class Line:
    """One line of the file as a batch item: where it is, what it says, what it asks for
    and, for a substrate line, the id it expects (an export names it)."""

    number: int
    text: str
    item: dict[str, Any]
    expects: str | None = None


@dataclass
class Batch:
    """The lines of one batch, sorted by what they ask for: its two requests' items."""

    substrates: list[Line] = field(default_factory=list)
    relationships: list[Line] = field(default_factory=list)


def _sort(batch: Batch, number: int, text: str) -> None:
    """Put the line's item into ``batch``; a line that is not one raises ValueError."""
    record = json.loads(text)
    if not isinstance(record, dict):
        raise ValueError("a line must be a JSON object")
    kind = record.get("kind") or ("relationship" if "source_id" in record else "substrate")
    if kind == "substrate":
        item = {name: record[name] for name in SUBSTRATE_FIELDS if name in record}
        batch.substrates.append(Line(number, text, item, record.get("substrate_id")))
    elif kind == "relationship":
        item = {name: record[name] for name in RELATIONSHIP_FIELDS if name in record}
        batch.relationships.append(Line(number, text, item))
    else:
        raise ValueError(f"unknown kind {kind!r}")


def _send(create: Callable[[list[dict[str, Any]]], Any], lines: Sequence[Line]) -> list[Any]:
    """One result per item, from as few batch requests as the server takes: a body too
    large for it (413) is sent again in halves. Raises the error of a refused request."""
    from butterflyfx.interface.client import ButterflyFXError

    try:
        return list(create([line.item for line in lines]).results)
    except ButterflyFXError as error:
        if error.status != 413 or len(lines) < 2:
            raise
    half = len(lines) // 2
    return _send(create, lines[:half]) + _send(create, lines[half:])


class Importer:
    """Sends the batches of one import and keeps its counts and its failures file."""

    def __init__(self, client: Any, failures: Path) -> None:
        self.client = client
        self.failures = failures
        self.made = {"substrate": 0, "relationship": 0}
        self.failed = 0
        self._pending: list[tuple[int, str, str]] = []  # this batch's failures, to sort

    def run(self, batch: Batch) -> None:
        """Create what the batch holds: its substrates first, then its relationships.
        A lost connection (no answer) is raised: the batch is not done."""
        for kind, lines, create in (
            ("substrate", batch.substrates, self.client.create_substrates),
            ("relationship", batch.relationships, self.client.create_relationships),
        ):
            if lines:
                self._create(kind, lines, create)

    def _create(self, kind: str, lines: Sequence[Line], create: Callable[..., Any]) -> None:
        from butterflyfx.interface.client import ButterflyFXError

        try:
            results = _send(create, lines)
        except ButterflyFXError as error:
            if not error.status:  # no answer: stop; --resume starts this batch again
                raise
            for line in lines:  # the whole request was refused (403, say): each line fails
                self.fail(line.number, line.text, error)
            return
        for line, result in zip(lines, results, strict=True):
            made = getattr(result, kind)
            if result.problem is not None:
                self.fail(line.number, line.text, result.problem)
            elif line.expects and line.expects != made.substrate_id:
                wrong = ValueError(f"created as {made.substrate_id}, not {line.expects}")
                self.fail(line.number, line.text, wrong)
            else:
                self.made[kind] += 1

    def fail(self, number: int, text: str, error: Any) -> None:
        """Note a failed line and why (a problem or an exception); :meth:`flush` writes it."""
        from .connection import describe

        reason = describe(error) if hasattr(error, "status") else f"{type(error).__name__}: {error}"
        self._pending.append((number, reason, text))
        self.failed += 1

    def flush(self) -> None:
        """Write the failures noted since the last flush to the failures file, by line."""
        if self._pending:
            with self.failures.open("a", encoding="utf-8") as out:
                for number, reason, text in sorted(self._pending):
                    out.write(json.dumps({"line": number, "error": reason, "text": text}) + "\n")
            self._pending.clear()


def _batches(lines: Iterable[str], start: int, size: int) -> Iterator[tuple[int, list[str]]]:
    """``(lines before it, its lines)`` for each batch of ``size`` lines after the first
    ``start``, read as they are needed: a file of any size is never held whole."""
    remaining = iter(lines)
    first = sum(1 for _ in itertools.islice(remaining, start))
    while chunk := [line.rstrip("\r\n") for line in itertools.islice(remaining, size)]:
        yield first, chunk
        first += len(chunk)


def _opened(name: str, stack: contextlib.ExitStack) -> tuple[IO[str], int | None]:
    """The lines to import (stdin for ``-``) and how many there are (None: unknown)."""
    if name == STDIN:
        return sys.stdin, None
    try:
        with open(name, encoding="utf-8") as counting:  # a first pass, for the progress bar
            total = sum(1 for _ in counting)
        return stack.enter_context(open(name, encoding="utf-8")), total
    except OSError as error:
        raise CommandError(f"cannot read {name}: {error}") from error


def import_(client: Any, args: argparse.Namespace) -> int:
    if not 1 <= args.batch <= MAX_BATCH:
        raise CommandError(f"--batch must be from 1 to {MAX_BATCH}")
    from_stdin = args.file == STDIN
    if from_stdin and args.resume:
        raise CommandError("--resume needs a FILE: standard input cannot be read again")
    checkpoint = None if from_stdin else Path(f"{args.file}.checkpoint")
    failures = Path(args.failures or ("import.failed" if from_stdin else f"{args.file}.failed"))
    start = _done(checkpoint) if checkpoint and args.resume else 0
    failures.unlink(missing_ok=True)
    importer = Importer(client, failures)
    done = start
    with contextlib.ExitStack() as stack:
        source, total = _opened(args.file, stack)
        name = "stdin" if from_stdin else Path(args.file).name
        left = None if total is None else max(total - start, 0)
        with progress(name, left, args.no_progress) as advance:
            for first, lines in _batches(source, start, args.batch):
                batch = Batch()
                for number, text in enumerate(lines, first + 1):
                    if text.strip():
                        try:
                            _sort(batch, number, text)
                        except ValueError as error:  # JSONDecodeError is one
                            importer.fail(number, text, error)
                try:
                    importer.run(batch)
                except Exception:
                    _save(checkpoint, first)  # the batches before this one are whole
                    raise
                finally:
                    importer.flush()
                done = first + len(lines)
                _save(checkpoint, done)
                for _ in lines:
                    advance()
    _save(checkpoint, done)
    made, failed = importer.made, importer.failed
    skipped = f" (the first {start} lines were done before)" if start else ""
    summary = (
        f"imported {render.count(made['substrate'], 'substrate')} and "
        f"{render.count(made['relationship'], 'relationship')}{skipped}"
    )
    if failed:
        summary += f"; {render.count(failed, 'line')} failed, see {failures}"
    print(f"butterflyfx: {summary}", file=sys.stderr)
    if args.json:  # the counts, for a script
        counts = {"substrates": made["substrate"], "relationships": made["relationship"]}
        render.print_json({**counts, "failed": failed, "skipped": start})
    return 1 if failed else 0


def _done(checkpoint: Path) -> int:
    try:
        return int(checkpoint.read_text(encoding="utf-8").strip() or 0)
    except FileNotFoundError:
        return 0
    except ValueError as error:
        raise CommandError(f"{checkpoint} does not hold a line count") from error


def _save(checkpoint: Path | None, lines: int) -> None:
    if checkpoint is not None:  # stdin has none: it cannot be read again
        checkpoint.write_text(f"{lines}\n", encoding="utf-8")


def add_transfer_commands(commands: Any) -> None:
    exported = leaf(commands, "export", export, "write the tenant as NDJSON (stdout or --output)",
                    description=__doc__.split("\n\n", 1)[0])  # fmt: skip
    exported.add_argument("--output", metavar="FILE", help="write here, not to stdout")
    exported.add_argument("--no-progress", action="store_true", help="no progress bar")

    imported = leaf(commands, "import", import_, "create what an NDJSON file describes",
                    description=__doc__.split("\n\n", 1)[1].replace("\n", " "))  # fmt: skip
    imported.add_argument("file", metavar="FILE", help="the NDJSON file; - reads standard input")
    imported.add_argument("--batch", type=int, default=100, metavar="N",
                          help=f"lines a batch request holds, and between checkpoints "
                               f"(default 100, at most {MAX_BATCH})")  # fmt: skip
    imported.add_argument("--resume", action="store_true", help="start after FILE.checkpoint")
    imported.add_argument("--failures", metavar="FILE",
                          help="where failed lines go (default FILE.failed; import.failed "
                               "for standard input)")  # fmt: skip
    imported.add_argument("--no-progress", action="store_true", help="no progress bar")
