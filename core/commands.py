"""Subcommands plugins add to the ``butterflyfx`` CLI through ``butterflyfx_commands``.

The CLI reads the config (``--config FILE``, else the embedded defaults; ``--data-dir``
overrides ``server.data_dir``) before it builds its parser, so a plugin's commands are
there exactly when the config loads the plugin. The server is not started: a command
opens what it needs itself (``ctx.data_dir`` and ``ctx.section(...)`` say where).
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from .context import ServerContext


@runtime_checkable
class Command(Protocol):
    """One subcommand: ``butterflyfx <name> ...``."""

    help: str

    def configure(self, parser: argparse.ArgumentParser) -> None:
        """Add the command's arguments (and sub-subcommands) to its parser."""

    def run(self, args: argparse.Namespace, ctx: ServerContext) -> int | Awaitable[int]:
        """Do it; the exit code. Print results on stdout, problems on stderr."""
        ...


class CommandError(Exception):
    """A command cannot do what it was asked; the CLI prints the message, exit code 2."""
