"""``butterflyfx export`` and ``butterflyfx import FILE``: a tenant as NDJSON, and back.

One JSON object a line: ``{"kind": "substrate", ...}`` with the fields of a substrate as the
API sends them, then ``{"kind": "relationship", ...}`` likewise (export writes every
substrate before any relationship, so an import creates what a relationship names first).

Import creates each line in turn; creates are content-addressed, so a line sent twice names
the same substrate or relationship. Every ``--batch`` lines it writes how many lines are done
to ``FILE.checkpoint``; ``--resume`` starts after them. A line that fails (not JSON, refused
by the server) is written with its error to ``FILE.failed`` and the import goes on; the exit
code is then 1. A progress bar shows on stderr when stderr is a terminal, and a summary line
after it; ``--json`` prints the counts on stdout too (export's stdout is the NDJSON).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator
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
        written, both_ways = 0, set()
        with progress("relationships", len(substrates), args.no_progress) as advance:
            for substrate_id in substrates:
                for relationship in client.outgoing(substrate_id):
                    if relationship.bidirectional:  # listed from both ends: write it once
                        if relationship.relationship_id in both_ways:
                            continue
                        both_ways.add(relationship.relationship_id)
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


def _create(client: Any, record: dict[str, Any]) -> str:
    """Create what ``record`` describes; its kind."""
    kind = record.get("kind") or ("relationship" if "source_id" in record else "substrate")
    if kind == "substrate":
        made = client.create_substrate(
            record["expression_type"], record["expression_code"], record.get("metadata")
        )
        wanted = record.get("substrate_id")
        if wanted and wanted != made.substrate_id:
            raise ValueError(f"created as {made.substrate_id}, not {wanted}")
    elif kind == "relationship":
        client.create_relationship(
            record["source_id"], record["target_id"], record["relationship_type"],
            bidirectional=bool(record.get("bidirectional", False)),
            weight=record.get("weight"), metadata=record.get("metadata"),
        )  # fmt: skip
    else:
        raise ValueError(f"unknown kind {kind!r}")
    return str(kind)


def import_(client: Any, args: argparse.Namespace) -> int:
    from butterflyfx.interface.client import ButterflyFXError

    if args.batch < 1:
        raise CommandError("--batch must be 1 or more")
    source = Path(args.file)
    checkpoint = Path(f"{source}.checkpoint")
    failures = Path(f"{source}.failed")
    try:
        lines = source.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise CommandError(f"cannot read {source}: {error}") from error
    start = _done(checkpoint) if args.resume else 0
    made = {"substrate": 0, "relationship": 0}
    failed = 0
    failures.unlink(missing_ok=True)
    with progress(source.name, len(lines) - start, args.no_progress) as advance:
        for number in range(start + 1, len(lines) + 1):
            text = lines[number - 1]
            if text.strip():
                try:
                    record = json.loads(text)
                    if not isinstance(record, dict):
                        raise ValueError("a line must be a JSON object")
                    made[_create(client, record)] += 1
                except ButterflyFXError as error:
                    if not error.status:  # no answer: stop here; --resume goes on from here
                        _save(checkpoint, number - 1)
                        raise
                    failed += _fail(failures, number, text, error)
                except (ValueError, KeyError, TypeError) as error:
                    failed += _fail(failures, number, text, error)
            if number % args.batch == 0:
                _save(checkpoint, number)
            advance()
    _save(checkpoint, len(lines))
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


def _fail(failures: Path, number: int, text: str, error: Exception) -> int:
    """Write a failed line and why to the failures file; 1."""
    from .connection import describe

    reason = describe(error) if hasattr(error, "status") else f"{type(error).__name__}: {error}"
    with failures.open("a", encoding="utf-8") as out:
        out.write(json.dumps({"line": number, "error": reason, "text": text}) + "\n")
    return 1


def add_transfer_commands(commands: Any) -> None:
    exported = leaf(commands, "export", export, "write the tenant as NDJSON (stdout or --output)",
                    description=__doc__.split("\n\n", 1)[0])  # fmt: skip
    exported.add_argument("--output", metavar="FILE", help="write here, not to stdout")
    exported.add_argument("--no-progress", action="store_true", help="no progress bar")

    imported = leaf(commands, "import", import_, "create what an NDJSON file describes",
                    description=__doc__.split("\n\n", 1)[1].replace("\n", " "))  # fmt: skip
    imported.add_argument("file", metavar="FILE")
    imported.add_argument("--batch", type=int, default=100, metavar="N",
                          help="lines between checkpoints (default 100)")  # fmt: skip
    imported.add_argument("--resume", action="store_true", help="start after FILE.checkpoint")
    imported.add_argument("--no-progress", action="store_true", help="no progress bar")
