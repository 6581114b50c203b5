"""Registering the human commands with the ``butterflyfx`` CLI, and running them.

Every leaf command takes the connection options (``--url``, ``--key``, ``--profile``,
``--timeout``) and ``--json``; :func:`run_human` builds the client, calls the command's
action with it, and turns an error answer into one line on stderr and an exit code:
0 done, 1 the server answered with an error, 2 a usage or profile error, 3 no answer.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from butterflyfx.core.commands import CommandError

from . import connection
from .connection import KEY_VARIABLE, URL_VARIABLE

HUMAN_COMMANDS = ("substrate", "rel", "query", "graph", "import", "export", "events")

Action = Callable[[Any, argparse.Namespace], int]


def options() -> argparse.ArgumentParser:
    """The options every leaf command shares (an argparse parent parser)."""
    shared = argparse.ArgumentParser(add_help=False)
    shared.add_argument("--url", help=f"the API's base URL (or ${URL_VARIABLE}, or the profile)")
    shared.add_argument("--key", help=f"the API key (or ${KEY_VARIABLE}, or the profile)")
    shared.add_argument("--profile", metavar="NAME", help="a profile of the profile file")
    shared.add_argument("--timeout", type=float, default=30.0, metavar="S",
                        help="seconds per HTTP request")  # fmt: skip
    shared.add_argument("--json", action="store_true", help="print the API's JSON")
    return shared


def leaf(group: Any, name: str, action: Action, help: str, **extra: Any) -> argparse.ArgumentParser:
    """Add command ``name`` to ``group`` (a subparsers object), run by ``action``."""
    parser: argparse.ArgumentParser = group.add_parser(
        name, help=help, description=extra.pop("description", help), parents=[options()]
    )
    parser.set_defaults(run=run_human, action=action)
    return parser


def run_human(args: argparse.Namespace) -> int:
    """Run ``args.action`` with a client of the chosen server; errors as one line."""
    from butterflyfx.interface.client import ButterflyFX, ButterflyFXError

    target = connection.resolve(args)
    try:
        with ButterflyFX(target.url, api_key=target.key, timeout=args.timeout) as client:
            return int(args.action(client, args))
    except ButterflyFXError as error:
        print(f"butterflyfx: {connection.describe(error)}", file=sys.stderr, flush=True)
        return connection.API_ERROR if error.status else connection.UNREACHABLE


def pairs(values: list[str] | None, what: str) -> dict[str, Any]:
    """``KEY=VALUE`` arguments as a dict; each VALUE is JSON if it parses, else a string."""
    result: dict[str, Any] = {}
    for item in values or []:
        name, equals, raw = item.partition("=")
        if not equals or not name:
            raise CommandError(f"{what} must be KEY=VALUE, not {item!r}")
        try:
            result[name] = json.loads(raw)
        except ValueError:
            result[name] = raw
    return result


def json_object(text: str | None, what: str) -> dict[str, Any]:
    """A JSON object given on the command line ({} for None)."""
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except ValueError as error:
        raise CommandError(f"{what} is not JSON: {error}") from error
    if not isinstance(value, dict):
        raise CommandError(f"{what} must be a JSON object")
    return value


def add_human_commands(commands: Any) -> None:
    """Add ``substrate``, ``rel``, ``query``, ``graph``, ``import``, ``export`` and
    ``events`` to the ``butterflyfx`` commands."""
    from .drawing import add_graph_command
    from .events import add_events_command
    from .relations import add_query_commands, add_rel_commands
    from .substrates import add_substrate_commands
    from .transfer import add_transfer_commands

    add_substrate_commands(commands)
    add_rel_commands(commands)
    add_query_commands(commands)
    add_graph_command(commands)
    add_transfer_commands(commands)
    add_events_command(commands)
