"""Relating substrates and querying the graph through the client: relationships, the
neighbourhood graph, traversal, shortest path, search and the tenant's counts."""

from __future__ import annotations

import pytest

from butterflyfx.interface.client import NotFound
from butterflyfx.interface.machine.models import GraphBody, PathBody, StatsBody, TraverseBody


def chain(client, tag: str) -> list[str]:
    """Three substrates, a -> b -> c by dependency; their ids."""
    ids = [
        client.create_substrate(
            "lambda", f"lambda **kw: kw.get('{tag}', {n})", {"name": f"{tag}-{n}"}
        ).substrate_id
        for n in range(3)
    ]
    client.create_relationship(ids[0], ids[1], "dependency", weight=2.0)
    client.create_relationship(ids[1], ids[2], "dependency", metadata={"why": "test"})
    return ids


def test_relate_then_list_traverse_find_paths_and_draw_the_neighbourhood(client):
    a, b, c = chain(client, "story")
    relation = client.create_relationship(a, c, "containment")

    assert client.get_relationship(relation.relationship_id) == relation
    assert {r.target_id for r in client.outgoing(a, page_size=1)} == {b, c}
    assert [r.source_id for r in client.incoming(c, types=["dependency"])] == [b]

    reached = client.traverse(a, max_depth=3, relationship_types=["dependency"])
    assert isinstance(reached, TraverseBody)
    assert [(r.substrate_id, r.depth) for r in reached.results] == [(a, 0), (b, 1), (c, 2)]
    assert reached.results[-1].path == [a, b, c]

    shortest = client.path(a, c, relationship_types=["dependency"])
    assert isinstance(shortest, PathBody) and shortest.nodes == [a, b, c] and shortest.hops == 2

    drawn = client.graph(a, depth=1)
    assert isinstance(drawn, GraphBody)
    assert {n.substrate_id for n in drawn.nodes} == {a, b, c}

    assert client.delete_relationship(relation.relationship_id) is None
    with pytest.raises(NotFound):
        client.get_relationship(relation.relationship_id)


def test_search_pages_lazily_and_stats_count_the_tenant(client):
    made = chain(client, "searchable")
    found = list(client.search(page_size=1, name_prefix="searchable-"))
    counts = client.stats()

    assert sorted(s.substrate_id for s in found) == sorted(made)
    assert isinstance(counts, StatsBody)
    assert counts.substrates >= 3 and counts.relationships.by_type["dependency"] >= 2
