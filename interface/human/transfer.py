"""``butterflyfx export`` and ``butterflyfx import FILE``: a tenant as NDJSON, and back.

One JSON object a line: ``{"kind": "substrate", ...}`` with the fields of a substrate as the
API sends them, then ``{"kind": "relationship", ...}`` likewise (export writes every
substrate before any relationship, so an import creates what a relationship names first).

Import sends the lines ``--batch`` at a time (100 by default, 500 at most) as at most two
batch requests, the batch's substrates first, then its relationships; creates are
content-addressed, so a line sent twice names the same substrate or relationship. After
each batch it writes how many lines are done to ``FILE.checkpoint``; ``--resume`` starts
after them (a lost connection stops the import at the last whole batch). A line that fails
(not JSON, refused by the server) is written with its line number and error to
``FILE.failed`` and the others go on; the exit code is then 1. A progress bar shows on
stderr when stderr is a terminal, and a summary line after it; ``--json`` prints the
counts on stdout too (export's stdout is the NDJSON).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable, Iterator, Sequence
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
        total = client.stats().substrates
        substrates: list[str] = []
        with progress("substrates", total, args.no_progress) as advance:
            for substrate in client.list_substrates():
                _write(target, "substrate", substrate)
                substrates.append(substrate.substrate_id)
                advance()
        written = 0
        # The list holds each relationship once, bidirectional ones too.
        total_relationships = client.stats().relationships.total
        with progress("relationships", total_relationships, args.no_progress) as advance:
            for relationship in client.list_relationships():
                _write(target, "relationship", relationship)
                written += 1
                advance()
    summary = (
        f"exported {render.count(len(substrates), 'substrate')} and "
        f"{render.count(written, 'relationship')}"
    )
    print(f"butterflyfx: {summary}", file=sys.stderr)
    return 0


def _write(target: IO[str], kind: str, model: Any) -> None:
    target.write(json.dumps({"kind": kind, **render.plain(model)}, ensure_ascii=False) + "\n")


MAX_BATCH = 500  # items the server takes in one batch request
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


def import_(client: Any, args: argparse.Namespace) -> int:
    if not 1 <= args.batch <= MAX_BATCH:
        raise CommandError(f"--batch must be from 1 to {MAX_BATCH}")
    source = Path(args.file)
    checkpoint = Path(f"{source}.checkpoint")
    failures = Path(f"{source}.failed")
    try:
        lines = source.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise CommandError(f"cannot read {source}: {error}") from error
    start = _done(checkpoint) if args.resume else 0
    failures.unlink(missing_ok=True)
    importer = Importer(client, failures)
    with progress(source.name, len(lines) - start, args.no_progress) as advance:
        for first in range(start, len(lines), args.batch):
            last = min(first + args.batch, len(lines))
            batch = Batch()
            for number in range(first + 1, last + 1):
                text = lines[number - 1]
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
            _save(checkpoint, last)
            for _ in range(first, last):
                advance()
    _save(checkpoint, len(lines))
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


def _save(checkpoint: Path, lines: int) -> None:
    checkpoint.write_text(f"{lines}\n", encoding="utf-8")


def add_transfer_commands(commands: Any) -> None:
    exported = leaf(commands, "export", export, "write the tenant as NDJSON (stdout or --output)",
                    description=__doc__.split("\n\n", 1)[0])  # fmt: skip
    exported.add_argument("--output", metavar="FILE", help="write here, not to stdout")
    exported.add_argument("--no-progress", action="store_true", help="no progress bar")

    imported = leaf(commands, "import", import_, "create what an NDJSON file describes",
                    description=__doc__.split("\n\n", 1)[1].replace("\n", " "))  # fmt: skip
    imported.add_argument("file", metavar="FILE")
    imported.add_argument("--batch", type=int, default=100, metavar="N",
                          help=f"lines a batch request holds, and between checkpoints "
                               f"(default 100, at most {MAX_BATCH})")  # fmt: skip
    imported.add_argument("--resume", action="store_true", help="start after FILE.checkpoint")
    imported.add_argument("--no-progress", action="store_true", help="no progress bar")
