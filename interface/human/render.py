"""Printing answers: rich tables for people, the API's JSON for scripts (``--json``).

A table's cells are plain text (ids, numbers, compact JSON for metadata). On a terminal the
table fits its width; into a pipe or a file it is as wide as its longest cells need (at least
80 columns, whatever ``COLUMNS`` says), so a row stays on one line for ``grep``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel


def count(number: int, noun: str) -> str:
    """``1 substrate``, ``2 substrates``."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


def plain(value: Any) -> Any:
    """``value`` as the API sends it: models dumped to JSON types, lists of them too."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


def print_json(value: Any) -> None:
    print(json.dumps(plain(value), indent=2, ensure_ascii=False))


def compact(value: Any) -> str:
    """A cell: strings as they are, anything else as compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(plain(value), separators=(",", ":"), ensure_ascii=False)


def table(title: str | None, headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Print a table of ``rows`` under ``headers``."""
    from rich.console import Console  # loaded when a table is printed, not for `serve`
    from rich.measure import Measurement
    from rich.table import Table

    shown = Table(title=title, title_justify="left")
    for header in headers:
        shown.add_column(header, overflow="fold")
    for row in rows:
        shown.add_row(*(compact(cell) for cell in row))
    console = Console(file=sys.stdout, highlight=False)
    if not console.is_terminal:  # a pipe or a file has no width to fit: never fold a cell
        unbounded = console.options.update_width(1_000_000)
        console.width = max(80, Measurement.get(console, unbounded, shown).maximum)
    console.print(shown)


def fields(title: str, model: BaseModel) -> None:
    """A model as a two-column table, one row per field."""
    table(title, ["field", "value"], ([name, value] for name, value in plain(model).items()))


def one(kind: str, model: Any, as_json: bool) -> int:
    """Show one substrate or relationship (``kind``): its JSON, or its fields as a table
    titled with its id; exit code 0."""
    if as_json:
        print_json(model)
    else:
        fields(f"{kind} {getattr(model, f'{kind}_id')}", model)
    return 0


def deleted(identifier: str, as_json: bool) -> int:
    """Say what was deleted; with ``--json`` nothing, as the API's 204 has no body."""
    if not as_json:
        print(f"deleted {identifier}")
    return 0


SUBSTRATE_COLUMNS = ["substrate_id", "type", "name", "version", "created_at"]


def substrate_row(substrate: Any) -> list[Any]:
    return [
        substrate.substrate_id,
        substrate.expression_type,
        str(substrate.metadata.get("name", "")),
        substrate.version,
        substrate.created_at,
    ]


RELATIONSHIP_COLUMNS = ["relationship_id", "source_id", "type", "target_id", "weight", "both ways"]


def relationship_row(relationship: Any) -> list[Any]:
    return [
        relationship.relationship_id,
        relationship.source_id,
        relationship.relationship_type,
        relationship.target_id,
        "" if relationship.weight is None else relationship.weight,
        "yes" if relationship.bidirectional else "no",
    ]
