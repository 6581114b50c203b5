"""Typed relationships between substrates, and points on the manifold of seed 004."""

from __future__ import annotations

import math

import pytest

from butterflyfx.kernel import (
    RELATIONSHIP_TYPES,
    InvalidRelationship,
    Relationship,
    format_id,
    manifold_point,
    normalize_relationship_type,
    relationship_identity,
)


def test_the_fifteen_relationship_types():
    assert sorted(RELATIONSHIP_TYPES) == sorted(
        [
            "part_to_whole", "whole_to_part", "sibling", "containment", "attribute",
            "dependency", "adjacency", "aggregation", "boundary", "cycle", "recursion",
            "lineage", "embedding", "extraction", "orthogonal",
        ]
    )  # fmt: skip


@pytest.mark.parametrize("spelling", ["dependency", "DEPENDENCY", "Dependency", " dependency "])
def test_relationship_types_are_case_insensitive(spelling):
    assert Relationship.create(1, 2, spelling).relationship_type == "dependency"


def test_an_unknown_type_is_refused_listing_the_known_ones_unless_configured():
    with pytest.raises(InvalidRelationship) as caught:
        Relationship.create(1, 2, "friendship")
    assert "dependency" in str(caught.value)
    assert normalize_relationship_type("Friendship", extra_types=["friendship"]) == "friendship"


def test_a_relationship_id_comes_from_source_target_and_type():
    r = Relationship.create(0xA, 0xB, "Lineage", weight=2, metadata={"why": "test"})
    assert r.identity == relationship_identity(0xA, 0xB, "lineage")
    assert r.relationship_id == format_id(r.identity)
    assert r.weight == 2.0 and isinstance(r.weight, float)
    assert Relationship.create(0xA, 0xB, "lineage", weight=9).identity == r.identity


@pytest.mark.parametrize("kind", ["recursion", "cycle", "RECURSION"])
def test_self_loops_are_allowed_only_for_recursion_and_cycle(kind):
    assert Relationship.create(7, 7, kind).source == 7


def test_other_self_loops_are_refused():
    with pytest.raises(InvalidRelationship, match="cycle or recursion"):
        Relationship.create(7, 7, "sibling")


@pytest.mark.parametrize("weight", [math.nan, math.inf, "1", True])
def test_weights_must_be_finite_numbers(weight):
    with pytest.raises(InvalidRelationship, match="weight"):
        Relationship.create(1, 2, "sibling", weight=weight)


@pytest.mark.parametrize(("source", "target"), [(-1, 2), (1, 2**64), ("0x1", 2), (True, 2)])
def test_ends_must_be_substrate_identities(source, target):
    with pytest.raises(InvalidRelationship):
        Relationship.create(source, target, "sibling")


def test_a_manifold_point_follows_the_helix_formula():
    p = manifold_point(2, 3, 10.0)
    theta = 3 * 2 * math.pi / 7
    assert p.theta == pytest.approx(theta)
    assert p.radius == 3
    assert (p.x, p.y, p.z) == pytest.approx((3 * math.cos(theta), 5.0, 3 * math.sin(theta)))
    assert set(p.to_dict()) == {"spiral", "level", "position", "theta", "radius", "x", "y", "z"}


def test_level_zero_of_spiral_zero_sits_on_the_x_axis():
    p = manifold_point(0, 0, 0)
    assert (p.x, p.y, p.z) == (1.0, 0.0, 0.0)


@pytest.mark.parametrize(
    ("spiral", "level", "position", "bound"),
    [
        (-1, 0, 0, "spiral"),
        (1001, 0, 0, "spiral"),
        (0, 7, 0, "level"),
        (0, -1, 0, "level"),
        (0, 0, 1e6 + 1, "position"),
        (0, 0, math.nan, "position"),
        (1.5, 0, 0, "spiral"),
        (0, True, 0, "level"),
    ],
)
def test_out_of_range_points_name_the_bound(spiral, level, position, bound):
    with pytest.raises(ValueError, match=bound):
        manifold_point(spiral, level, position)
