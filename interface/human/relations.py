"""``butterflyfx rel create|get|delete|list|graph`` and ``butterflyfx query
traverse|path|search|stats``."""

from __future__ import annotations

import argparse
import itertools
from typing import Any

from butterflyfx.core.commands import CommandError

from . import render
from .commands import json_object, leaf, pairs

DIRECTIONS = ["out", "in", "both"]


def create(client: Any, args: argparse.Namespace) -> int:
    metadata = {**json_object(args.metadata, "--metadata"), **pairs(args.meta, "--meta")}
    made = client.create_relationship(
        args.source_id, args.target_id, args.relationship_type,
        bidirectional=args.bidirectional, weight=args.weight, metadata=metadata or None,
    )  # fmt: skip
    return render.one("relationship", made, args.json)


def get(client: Any, args: argparse.Namespace) -> int:
    return render.one("relationship", client.get_relationship(args.relationship_id), args.json)


def delete(client: Any, args: argparse.Namespace) -> int:
    client.delete_relationship(args.relationship_id)
    return render.deleted(args.relationship_id, args.json)


def list_(client: Any, args: argparse.Namespace) -> int:
    if args.substrate_id is None:  # every relationship of the tenant
        if args.incoming:
            raise CommandError("--incoming needs a substrate ID")
        walk = client.list_relationships(types=args.type)
        where = "in the tenant"
    else:
        side = client.incoming if args.incoming else client.outgoing
        walk = side(args.substrate_id, args.type)
        where = f"{'to' if args.incoming else 'from'} {args.substrate_id}"
    found = list(itertools.islice(walk, args.limit))
    if args.json:
        render.print_json(found)
    else:
        title = f"{render.count(len(found), 'relationship')} {where}"
        render.table(title, render.RELATIONSHIP_COLUMNS, map(render.relationship_row, found))
    return 0


def graph(client: Any, args: argparse.Namespace) -> int:
    body = client.graph(args.root, args.depth, args.types, args.max_nodes)
    if args.json:
        render.print_json(body)
        return 0
    cut = " (truncated)" if body.truncated else ""
    title = f"{render.count(len(body.nodes), 'substrate')} within {body.depth} of {body.root}{cut}"
    render.table(title, render.SUBSTRATE_COLUMNS, map(render.substrate_row, body.nodes))
    edges = render.count(len(body.edges), "relationship")
    render.table(edges, render.RELATIONSHIP_COLUMNS, map(render.relationship_row, body.edges))
    return 0


def traverse(client: Any, args: argparse.Namespace) -> int:
    body = client.traverse(args.start_id, args.direction, args.max_depth, args.type, args.limit)
    if args.json:
        render.print_json(body)
        return 0
    cut = " (truncated)" if body.truncated else ""
    title = f"{len(body.results)} reached from {body.start_id}{cut}"
    rows = ([r.substrate_id, r.depth, " > ".join(r.path)] for r in body.results)
    render.table(title, ["substrate_id", "depth", "path"], rows)
    return 0


def path(client: Any, args: argparse.Namespace) -> int:
    body = client.path(
        args.source_id, args.target_id, weighted=args.weighted or None,
        direction=args.direction, max_depth=args.max_depth, relationship_types=args.type,
    )  # fmt: skip
    if args.json:
        render.print_json(body)
        return 0
    title = f"{body.hops} hops, total weight {body.total_weight:g}: " + " > ".join(body.nodes)
    render.table(title, render.RELATIONSHIP_COLUMNS, map(render.relationship_row, body.edges))
    return 0


def search(client: Any, args: argparse.Namespace) -> int:
    filters = {
        "expression_type": args.expression_type,
        "name_prefix": args.name_prefix,
        "code_contains": args.code_contains,
        "created_after": args.created_after,
        "created_before": args.created_before,
        "has_relationship_type": args.has_relationship_type,
        "metadata": pairs(args.meta, "--meta") or None,
    }
    matching = client.search(page_size=args.page_size, **filters)
    found = list(itertools.islice(matching, args.limit))
    if args.json:
        render.print_json(found)
    else:
        rows = map(render.substrate_row, found)
        render.table(render.count(len(found), "substrate"), render.SUBSTRATE_COLUMNS, rows)
    return 0


def stats(client: Any, args: argparse.Namespace) -> int:
    body = client.stats()
    if args.json:
        render.print_json(body)
        return 0
    rels = body.relationships
    rows = [
        ["substrates", body.substrates],
        ["relationships", rels.total],
        *([f"  {name}", count] for name, count in sorted(rels.by_type.items())),
        ["invocations", body.invocations.count],
        ["invocation errors", body.invocations.errors],
        ["storage", body.storage or ""],
        ["graph engine", body.graph_engine or ""],
        ["uptime (s)", f"{body.uptime_seconds:.0f}"],
    ]
    render.table("tenant stats", ["", "count"], rows)
    return 0


def _limits(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", type=int, metavar="N", help="at most N (default: all)")
    parser.add_argument("--page-size", type=int, metavar="N", help="items per request")


def add_rel_commands(commands: Any) -> None:
    group = commands.add_parser("rel", help="relate substrates and list relationships")
    sub = group.add_subparsers(dest="rel_command", metavar="COMMAND", required=True)

    made = leaf(sub, "create", create, "relate SOURCE to TARGET (the same: the same one)")
    made.add_argument("source_id", metavar="SOURCE")
    made.add_argument("target_id", metavar="TARGET")
    made.add_argument("relationship_type", metavar="TYPE", help="e.g. dependency")
    made.add_argument("--bidirectional", action="store_true", help="followed both ways")
    made.add_argument("--weight", type=float, help="for weighted paths")
    made.add_argument("--meta", action="append", metavar="KEY=VALUE", help="repeatable")
    made.add_argument("--metadata", metavar="JSON", help="the metadata as a JSON object")

    leaf(sub, "get", get, "show a relationship").add_argument("relationship_id", metavar="ID")
    leaf(sub, "delete", delete, "delete a relationship").add_argument(
        "relationship_id", metavar="ID"
    )

    listed = leaf(
        sub, "list", list_, "the relationships from (or to) a substrate; without ID, all of them"
    )
    listed.add_argument("substrate_id", metavar="ID", nargs="?")
    listed.add_argument("--incoming", action="store_true", help="those to it, not from it")
    listed.add_argument("--type", metavar="TYPES", help="only these types (comma-separated)")
    listed.add_argument("--limit", type=int, metavar="N", help="at most N (default: all)")

    drawn = leaf(sub, "graph", graph, "the substrates and relationships around a substrate")
    drawn.add_argument("root", metavar="ID")
    drawn.add_argument("--depth", type=int, metavar="N", help="relationships out from ID")
    drawn.add_argument("--types", metavar="TYPES", help="only these types (comma-separated)")
    drawn.add_argument("--max-nodes", type=int, metavar="N", help="stop after N substrates")


def add_query_commands(commands: Any) -> None:
    group = commands.add_parser("query", help="traverse, find paths, search, count")
    sub = group.add_subparsers(dest="query_command", metavar="COMMAND", required=True)

    walked = leaf(sub, "traverse", traverse, "the substrates reachable from START")
    walked.add_argument("start_id", metavar="START")
    walked.add_argument("--direction", choices=DIRECTIONS, help="default out")
    walked.add_argument("--max-depth", type=int, metavar="N")
    walked.add_argument("--type", action="append", metavar="TYPE", help="repeatable")
    walked.add_argument("--limit", type=int, metavar="N", help="at most N results")

    found = leaf(sub, "path", path, "the shortest path from SOURCE to TARGET")
    found.add_argument("source_id", metavar="SOURCE")
    found.add_argument("target_id", metavar="TARGET")
    found.add_argument("--weighted", action="store_true", help="least total weight")
    found.add_argument("--direction", choices=DIRECTIONS, help="default out")
    found.add_argument("--max-depth", type=int, metavar="N")
    found.add_argument("--type", action="append", metavar="TYPE", help="repeatable")

    searched = leaf(sub, "search", search, "substrates matching every filter given")
    searched.add_argument("--expression-type", metavar="TYPE")
    searched.add_argument("--name-prefix", metavar="TEXT")
    searched.add_argument("--code-contains", metavar="TEXT")
    searched.add_argument("--meta", action="append", metavar="KEY=VALUE",
                          help="metadata entries to match; repeatable")  # fmt: skip
    searched.add_argument("--created-after", metavar="TIME")
    searched.add_argument("--created-before", metavar="TIME")
    searched.add_argument("--has-relationship-type", metavar="TYPE")
    _limits(searched)

    leaf(sub, "stats", stats, "the tenant's counts")
