"""Every example in README.md and docs/ runs, and prints what the page says it prints."""

from __future__ import annotations

import contextlib
import doctest
import io
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OPTIONS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def documentation_pages() -> list[Path]:
    """README.md and every Markdown page under docs/, found anew on each run."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


@pytest.mark.parametrize(
    "page", documentation_pages(), ids=lambda page: page.relative_to(ROOT).as_posix()
)
def test_every_example_on_the_page_prints_what_the_page_says(page: Path) -> None:
    report = io.StringIO()
    with contextlib.redirect_stdout(report):
        failed, attempted = doctest.testfile(
            str(page),
            module_relative=False,
            name=page.relative_to(ROOT).as_posix(),
            optionflags=OPTIONS,
            encoding="utf-8",
        )
    name = page.relative_to(ROOT).as_posix()
    assert attempted > 0, f"{name} has no examples: show what the page describes with >>> examples"
    assert failed == 0, f"{failed} of {attempted} examples in {name} failed:\n{report.getvalue()}"
