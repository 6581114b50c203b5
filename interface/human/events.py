"""``butterflyfx events [--kinds K1,K2] [--count N] [--json]``: the tenant's events, live.

One line per event as it arrives (the ``events`` plugin's WebSocket, through
:meth:`ButterflyFX.events`): ``<at>  <kind>  <subject id>  <data>`` for people, the
event's JSON with ``--json`` for scripts. It stops after ``--count`` events, or on
Ctrl-C, with exit code 0. A refused subscription is the one-line error and exit code of
any other command; a stream the server closes prints why on stderr and exits 1 (3 when
the connection was lost).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from . import render
from .commands import leaf
from .connection import API_ERROR, UNREACHABLE

LOST = 1006  # the close code of a connection that ended without a close frame


def event_line(event: Any, as_json: bool) -> str:
    """One event as a line: its JSON (``--json``), else time, kind, subject id and data."""
    if as_json:
        return json.dumps(render.plain(event), ensure_ascii=False)
    return f"{event.at}  {event.kind}  {event.subject_id}  {render.compact(event.data)}"


def watch(client: Any, args: argparse.Namespace) -> int:
    """Print each event until ``--count`` of them were printed, or Ctrl-C."""
    from butterflyfx.interface.client.errors import StreamClosed

    printed = 0
    try:
        with client.events(args.kinds) as stream:
            for event in stream:
                print(event_line(event, args.json), flush=True)
                printed += 1
                if printed == args.count:
                    break
    except KeyboardInterrupt:  # how a watch without --count ends: not an error
        pass
    except StreamClosed as closed:
        print(f"butterflyfx: {closed.detail}", file=sys.stderr, flush=True)
        return UNREACHABLE if closed.code == LOST else API_ERROR
    return 0


def count(text: str) -> int:
    """``--count``: a whole number of events, 1 or more."""
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number, 1 or more, not {text!r}")
    return number


def add_events_command(commands: Any) -> None:
    """Add ``events`` to the ``butterflyfx`` commands."""
    watched = leaf(
        commands, "events", watch, "print the tenant's events as they happen (Ctrl-C stops)",
        description="Subscribe to the tenant's events (the events plugin) and print one line "
        "per event as it happens: time, kind, subject id and data, or with --json the event's "
        "JSON. Events from before the subscription are not sent.",
    )  # fmt: skip
    watched.add_argument("--kinds", metavar="K1,K2", help="only these kinds (comma-separated)")
    watched.add_argument("--count", type=count, metavar="N", help="stop after N events")
