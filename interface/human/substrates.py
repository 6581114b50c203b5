"""``butterflyfx substrate create|get|list|update|delete|divide|invoke|multiply``."""

from __future__ import annotations

import argparse
import itertools
import sys
from typing import Any

from butterflyfx.core.commands import CommandError

from . import render
from .commands import json_object, leaf, pairs


def create(client: Any, args: argparse.Namespace) -> int:
    code = sys.stdin.read() if args.code == "-" else args.code
    metadata = {**json_object(args.metadata, "--metadata"), **pairs(args.meta, "--meta")}
    made = client.create_substrate(args.expression_type, code, metadata or None)
    return show_substrate(made, args)


def get(client: Any, args: argparse.Namespace) -> int:
    return show_substrate(client.get_substrate(args.substrate_id), args)


def show_substrate(substrate: Any, args: argparse.Namespace) -> int:
    return render.one("substrate", substrate, args.json)


def list_(client: Any, args: argparse.Namespace) -> int:
    found = list(itertools.islice(client.list_substrates(page_size=args.page_size), args.limit))
    if args.json:
        render.print_json(found)
    else:
        rows = (render.substrate_row(s) for s in found)
        render.table(render.count(len(found), "substrate"), render.SUBSTRATE_COLUMNS, rows)
    return 0


def update(client: Any, args: argparse.Namespace) -> int:
    """Merge metadata into the substrate's (RFC 7396): ``--meta``/``--metadata`` set keys,
    ``--remove`` drops them."""
    patch: dict[str, Any] = {
        **json_object(args.metadata, "--metadata"),
        **pairs(args.meta, "--meta"),
        **dict.fromkeys(args.remove or []),
    }
    if not patch:
        raise CommandError("give --meta, --metadata or --remove: there is nothing to change")
    return show_substrate(client.update_substrate(args.substrate_id, patch), args)


def delete(client: Any, args: argparse.Namespace) -> int:
    client.delete_substrate(args.substrate_id)
    return render.deleted(args.substrate_id, args.json)


def divide(client: Any, args: argparse.Namespace) -> int:
    division = client.divide(args.substrate_id)
    if args.json:
        render.print_json(division)
    else:
        rows = ([d.level, d.name, d.description, d.content] for d in division.dimensions)
        title = f"substrate {division.substrate_id} divided"
        render.table(title, ["level", "name", "description", "content"], rows)
    return 0


def invoke(client: Any, args: argparse.Namespace) -> int:
    parameters = {**json_object(args.params, "--params"), **pairs(args.parameters, "a parameter")}
    answer = client.invoke(args.substrate_id, parameters)
    if args.json:
        render.print_json(answer)
    else:
        render.table(
            None,
            ["substrate_id", "result", "ms"],
            [[answer.substrate_id, answer.result, f"{answer.invocation_time_ms:.3f}"]],
        )
    return 0


def multiply(client: Any, args: argparse.Namespace) -> int:
    if args.division is not None:
        if args.substrate_ids:
            raise CommandError("give substrate ids or --division, not both")
        with open(args.division, encoding="utf-8") if args.division != "-" else sys.stdin as f:
            division = json_object(f.read(), "--division")
        product = client.multiply(dimensions=division.get("dimensions", []))
    elif len(args.substrate_ids) < 2:
        raise CommandError("multiply needs two or more substrate ids, or --division")
    else:
        product = client.multiply(substrate_ids=args.substrate_ids)
    return show_substrate(product, args)


def add_substrate_commands(commands: Any) -> None:
    group = commands.add_parser("substrate", help="create, read, list, divide, invoke substrates")
    sub = group.add_subparsers(dest="substrate_command", metavar="COMMAND", required=True)

    made = leaf(sub, "create", create, "create a substrate (the same code: the same one)")
    made.add_argument("expression_type", metavar="TYPE", help="e.g. lambda")
    made.add_argument("code", metavar="CODE", help="the expression; - reads it from stdin")
    made.add_argument("--meta", action="append", metavar="KEY=VALUE",
                      help="a metadata entry (VALUE is JSON or a string); repeatable")  # fmt: skip
    made.add_argument("--metadata", metavar="JSON", help="the metadata as a JSON object")

    leaf(sub, "get", get, "show a substrate").add_argument("substrate_id", metavar="ID")

    listed = leaf(sub, "list", list_, "list the tenant's substrates, oldest id first")
    listed.add_argument("--limit", type=int, metavar="N", help="at most N (default: all)")
    listed.add_argument("--page-size", type=int, metavar="N", help="substrates per request")

    changed = leaf(sub, "update", update, "change a substrate's metadata (its code never changes)")
    changed.add_argument("substrate_id", metavar="ID")
    changed.add_argument("--meta", action="append", metavar="KEY=VALUE",
                         help="set an entry (VALUE is JSON or a string); repeatable")  # fmt: skip
    changed.add_argument("--metadata", metavar="JSON", help="entries to set, as a JSON object")
    changed.add_argument("--remove", action="append", metavar="KEY",
                         help="remove a metadata entry; repeatable")  # fmt: skip

    leaf(sub, "delete", delete, "delete a substrate").add_argument("substrate_id", metavar="ID")
    leaf(sub, "divide", divide, "the nine dimensions of a substrate").add_argument(
        "substrate_id", metavar="ID"
    )

    invoked = leaf(sub, "invoke", invoke, "run a substrate's expression")
    invoked.add_argument("substrate_id", metavar="ID")
    invoked.add_argument("parameters", nargs="*", metavar="KEY=VALUE",
                         help="a parameter (VALUE is JSON or a string)")  # fmt: skip
    invoked.add_argument("--params", metavar="JSON", help="the parameters as a JSON object")

    product = leaf(sub, "multiply", multiply, "the product of substrates, or a rebuilt one")
    product.add_argument("substrate_ids", nargs="*", metavar="ID")
    product.add_argument(
        "--division", metavar="FILE", help="rebuild from `substrate divide --json` (- for stdin)"
    )
