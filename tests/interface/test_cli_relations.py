"""``butterflyfx rel ...``, ``butterflyfx query ...`` and ``butterflyfx graph`` run as the real
command against a real ``butterflyfx serve``: relate substrates, traverse, find a path,
search, count, and draw the neighbourhood as DOT or Mermaid."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from butterflyfx.interface.machine.models import (
    GraphBody,
    PathBody,
    RelationshipBody,
    StatsBody,
    TraverseBody,
)

COMMAND = str(Path(sys.executable).with_name("butterflyfx"))
TIMEOUT = 90.0


@pytest.fixture
def cli(server):
    """``butterflyfx`` with ``--url`` and ``--key`` of the module's server."""

    def run(*argv: str):
        environment = {**os.environ, "COLUMNS": "40", "NO_COLOR": "1"}
        return subprocess.run(
            [COMMAND, *argv, "--url", server.url, "--key", server.admin_key],
            env=environment, capture_output=True, text=True, timeout=TIMEOUT,
        )  # fmt: skip

    return run


def answer(done) -> object:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def chain(server):
    """Three substrates, wall -> room -> house (``part_to_whole``), and a ``sibling`` pair."""
    from butterflyfx.interface.client import ButterflyFX

    with ButterflyFX(server.url, api_key=server.admin_key, retries=0) as client:
        made = {
            name: client.create_substrate("lambda", f"lambda **kw: {i}", {"name": name})
            for i, name in enumerate(["wall", "room", "house", "garden"])
        }
    return {name: substrate.substrate_id for name, substrate in made.items()}


def test_relate_list_and_traverse(cli, chain, client):
    wall, room, house = chain["wall"], chain["room"], chain["house"]
    first = RelationshipBody.model_validate(
        answer(cli("rel", "create", wall, room, "part_to_whole", "--json"))
    )
    assert (first.source_id, first.target_id) == (wall, room)
    table = cli("rel", "create", room, house, "part_to_whole", "--weight", "2.5", "--meta", "a=1")
    assert table.returncode == 0 and "part_to_whole" in table.stdout and "2.5" in table.stdout

    outgoing = answer(cli("rel", "list", wall, "--json"))
    assert [r["target_id"] for r in outgoing] == [room]
    incoming = cli("rel", "list", house, "--incoming")
    assert "1 relationship to" in incoming.stdout and room in incoming.stdout

    reached = TraverseBody.model_validate(answer(cli("query", "traverse", wall, "--json")))
    assert [(r.substrate_id, r.depth) for r in reached.results] == [
        (wall, 0),
        (room, 1),
        (house, 2),
    ]
    assert reached == client.traverse(wall)
    shallow = cli("query", "traverse", wall, "--max-depth", "1")
    assert room in shallow.stdout and house not in shallow.stdout

    path = PathBody.model_validate(answer(cli("query", "path", wall, house, "--json")))
    assert (path.nodes, path.hops) == ([wall, room, house], 2)
    weighted = cli("query", "path", wall, house, "--weighted")
    assert "2 hops, total weight 3.5" in weighted.stdout


def test_search_stats_and_the_graph_table(cli, chain):
    found = answer(cli("query", "search", "--name-prefix", "gar", "--json"))
    assert [s["substrate_id"] for s in found] == [chain["garden"]]
    by_meta = cli("query", "search", "--meta", "name=garden")
    assert chain["garden"] in by_meta.stdout and chain["wall"] not in by_meta.stdout

    stats = StatsBody.model_validate(answer(cli("query", "stats", "--json")))
    assert stats.substrates >= 4
    assert "substrates" in cli("query", "stats").stdout

    cli("rel", "create", chain["house"], chain["garden"], "sibling", "--bidirectional")
    graph = GraphBody.model_validate(answer(cli("rel", "graph", chain["garden"], "--json")))
    assert chain["house"] in {n.substrate_id for n in graph.nodes}
    drawn = cli("rel", "graph", chain["garden"], "--depth", "1")
    assert "sibling" in drawn.stdout and "yes" in drawn.stdout  # both ways


DOT_NODE = re.compile(r'^  "(0x[0-9A-F]{16})" \[label="([^"]*)"(, penwidth=2)?\];$')
DOT_EDGE = re.compile(
    r'^  "(0x[0-9A-F]{16})" -> "(0x[0-9A-F]{16})" \[label="(\w+)"(, dir=both)?\];$'
)
MERMAID_NODE = re.compile(r'^  s(0x[0-9A-F]{16})\["([^"]*)"\]$')
MERMAID_EDGE = re.compile(r'^  s(0x[0-9A-F]{16}) (-->|<-->)\|"(\w+)"\| s(0x[0-9A-F]{16})$')


def test_graph_draws_the_neighbourhood_as_dot_and_mermaid(cli, chain):
    wall, room, garden = chain["wall"], chain["room"], chain["garden"]
    cli("rel", "create", wall, room, "part_to_whole")
    cli("rel", "create", garden, wall, "adjacency", "--bidirectional")

    dot = cli("graph", wall, "--format", "dot", "--depth", "1").stdout.splitlines()
    assert dot[0] == "digraph butterflyfx {" and dot[-1] == "}"
    nodes = {m[1]: m for m in map(DOT_NODE.match, dot) if m}
    edges = {(m[1], m[2], m[3], bool(m[4])) for m in map(DOT_EDGE.match, dot) if m}
    assert set(nodes) == {wall, room, garden}
    assert nodes[wall][3] and not nodes[room][3]  # the root is bold
    assert nodes[wall][2] == f"wall\\n{wall}"
    assert {(wall, room, "part_to_whole", False), (garden, wall, "adjacency", True)} <= edges
    assert len(dot) == 3 + len(nodes) + len(edges)  # nothing else but the header and footer

    mermaid = cli("graph", wall, "--format", "mermaid", "--depth", "1").stdout.splitlines()
    assert mermaid[0] == "flowchart LR" and mermaid[-1] == f"  style s{wall} stroke-width:3px"
    m_nodes = {m[1] for m in map(MERMAID_NODE.match, mermaid) if m}
    m_edges = {(m[1], m[2], m[3], m[4]) for m in map(MERMAID_EDGE.match, mermaid) if m}
    assert m_nodes == set(nodes)
    assert {(wall, "-->", "part_to_whole", room), (garden, "<-->", "adjacency", wall)} <= m_edges
    assert len(mermaid) == 2 + len(m_nodes) + len(m_edges)


def test_a_relationship_is_shown_listed_with_all_the_others_and_deleted(cli, client):
    made = [client.create_substrate("lambda", f"lambda **kw: {n} - 1").substrate_id for n in (7, 8)]
    first = RelationshipBody.model_validate(
        answer(cli("rel", "create", made[0], made[1], "dependency", "--json"))
    )
    shown = cli("rel", "get", first.relationship_id)
    assert shown.returncode == 0, shown.stderr
    assert first.relationship_id in shown.stdout and "dependency" in shown.stdout
    assert (
        RelationshipBody.model_validate(answer(cli("rel", "get", first.relationship_id, "--json")))
        == first
    )

    everything = answer(cli("rel", "list", "--json"))  # no ID: every relationship of the tenant
    assert first.relationship_id in [r["relationship_id"] for r in everything]
    assert len(everything) == client.stats().relationships.total
    dependencies = answer(cli("rel", "list", "--type", "dependency", "--json"))
    assert {r["relationship_type"] for r in dependencies} == {"dependency"}
    table = cli("rel", "list")
    assert f"{len(everything)} relationship" in table.stdout and "in the tenant" in table.stdout
    refused = cli("rel", "list", "--incoming")
    assert refused.returncode == 2 and "--incoming needs a substrate ID" in refused.stderr

    gone = cli("rel", "delete", first.relationship_id)
    assert gone.returncode == 0 and f"deleted {first.relationship_id}" in gone.stdout
    missing = cli("rel", "get", first.relationship_id)
    assert missing.returncode == 1 and "404" in missing.stderr
