"""``butterflyfx graph ID --format dot|mermaid``: a neighbourhood to look at.

The substrates within ``--depth`` of ID (``GET /api/v1/relationships/graph``) become
nodes labelled with their ``name`` metadata and id, the relationships arrows labelled
with their type (two-headed when bidirectional); the root is drawn bold. Pipe DOT to
Graphviz (``| dot -Tsvg``) or paste Mermaid into a Markdown ``mermaid`` block.
"""

from __future__ import annotations

import argparse
from typing import Any

from .commands import leaf


def _label(node: Any) -> str:
    name = node.metadata.get("name")
    return f"{name}\n{node.substrate_id}" if isinstance(name, str) and name else node.substrate_id


def _dot_text(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(body: Any) -> str:
    """The graph as a Graphviz ``digraph``."""
    lines = ["digraph butterflyfx {", "  node [shape=box];"]
    for node in body.nodes:
        bold = ", penwidth=2" if node.substrate_id == body.root else ""
        lines.append(f"  {_dot_text(node.substrate_id)} [label={_dot_text(_label(node))}{bold}];")
    for edge in body.edges:
        both = ", dir=both" if edge.bidirectional else ""
        lines.append(
            f"  {_dot_text(edge.source_id)} -> {_dot_text(edge.target_id)} "
            f"[label={_dot_text(edge.relationship_type)}{both}];"
        )
    lines.append("}")
    return "\n".join(lines)


def _mermaid_text(text: str) -> str:
    return '"' + text.replace('"', "#quot;").replace("\n", "<br/>") + '"'


def to_mermaid(body: Any) -> str:
    """The graph as a Mermaid flowchart (left to right)."""
    lines = ["flowchart LR"]
    for node in body.nodes:
        lines.append(f"  s{node.substrate_id}[{_mermaid_text(_label(node))}]")
    for edge in body.edges:
        arrow = "<-->" if edge.bidirectional else "-->"
        kind = _mermaid_text(edge.relationship_type)
        lines.append(f"  s{edge.source_id} {arrow}|{kind}| s{edge.target_id}")
    lines.append(f"  style s{body.root} stroke-width:3px")
    return "\n".join(lines)


FORMATS = {"dot": to_dot, "mermaid": to_mermaid}


def draw(client: Any, args: argparse.Namespace) -> int:
    body = client.graph(args.root, args.depth, args.types, args.max_nodes)
    if args.json:  # the graph as the API sends it, for tools of one's own
        from .render import print_json

        print_json(body)
    else:
        print(FORMATS[args.format](body))
    return 0


def add_graph_command(commands: Any) -> None:
    drawn = leaf(commands, "graph", draw, "draw the neighbourhood of a substrate (DOT, Mermaid)",
                 description=__doc__.split("\n\n", 1)[1].replace("\n", " "))  # fmt: skip
    drawn.add_argument("root", metavar="ID")
    drawn.add_argument("--format", choices=sorted(FORMATS), default="dot", help="default dot")
    drawn.add_argument("--depth", type=int, metavar="N", help="relationships out from ID")
    drawn.add_argument("--types", metavar="TYPES", help="only these types (comma-separated)")
    drawn.add_argument("--max-nodes", type=int, metavar="N", help="stop after N substrates")
