"""The ``[storage.example]`` config section: where the journal is and how hard it tries."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field

from butterflyfx.core.config import StrictModel

if TYPE_CHECKING:
    from butterflyfx.core.context import ServerContext

SECTION = "storage.example"


class ExampleSettings(StrictModel):
    """The ``[storage.example]`` section; an unknown key or a wrong type stops start-up."""

    path: Path = Field(
        default=Path("example-store.jsonl"),
        description="the journal file; a relative path is inside the server's data_dir",
    )
    fsync: bool = Field(
        default=True,
        description="true: a write is acknowledged once on disk (it survives power loss); "
        "false: once the operating system has it (it survives a crash of the server only)",
    )
    compact_at_close: bool = Field(
        default=True,
        description="rewrite the journal as its live data when the store closes, "
        "if that makes it shorter",
    )


def settings_of(ctx: ServerContext) -> ExampleSettings:
    """The validated section, or its defaults when the config file has none."""
    section = ctx.section(SECTION)
    return section if isinstance(section, ExampleSettings) else ExampleSettings()


def journal_path(ctx: ServerContext) -> Path:
    """The configured file, relative ones inside the server's data folder."""
    return Path(ctx.data_dir) / settings_of(ctx).path
