"""Dividing a substrate into its nine dimensions and multiplying them back."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest

from butterflyfx.kernel import (
    DIMENSIONS,
    FIBONACCI_SEQUENCE,
    EvaluationError,
    ExpressionRejected,
    InconsistentDimensions,
    InvocationStats,
    Relationship,
    Substrate,
    SubstrateFacts,
    compile_expression,
    divide,
    multiply,
)

CREATED = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
SEED = "lambda **kw: kw.get('x', 0) * kw.get('y', 0)"


def seed_substrate(**extra) -> Substrate:
    return Substrate.create("lambda", SEED, {"name": "multiply"}, created_at=CREATED, **extra)


def contents(division):
    return {d.name: d.content for d in division.dimensions}


def test_the_nine_dimensions_follow_the_seed():
    division = divide(seed_substrate())
    assert [(d.level, d.name) for d in division.dimensions] == [
        (0, "Void"),
        (1, "Identity"),
        (1, "Domain"),
        (2, "Length"),
        (3, "Area"),
        (5, "Volume"),
        (8, "Frequency"),
        (13, "System"),
        (21, "Complete"),
    ]
    assert list(division.fibonacci_sequence) == list(FIBONACCI_SEQUENCE)
    assert [d.description for d in division.dimensions] == [text for _, _, text in DIMENSIONS]
    assert division.substrate_id == "0xE7A2CB9AAF2B6E02"


def test_each_dimension_holds_what_it_says():
    c = contents(divide(seed_substrate(version=3)))
    assert len(c["Void"]["fingerprint"]) == 64
    assert c["Identity"] == {"substrate_id": "0xE7A2CB9AAF2B6E02", "identity": 0xE7A2CB9AAF2B6E02}
    assert c["Domain"] == {"expression_type": "lambda"}
    assert c["Length"]["reads"] == ["x", "y"]
    assert c["Length"]["accepts_any"] is True
    assert c["Length"]["metadata_keys"] == ["name"]
    assert c["Area"] == {"available": False}
    assert c["Volume"] == {
        "created_at": "2026-11-24T09:30:00Z",
        "updated_at": "2026-11-24T09:30:00Z",
        "version": 3,
    }
    assert c["Frequency"] == {"available": False}
    assert "invoke" in c["System"]["operations"]
    assert c["Complete"]["expression_code"] == SEED
    assert c["Complete"]["metadata"] == {"name": "multiply"}


def test_named_parameters_show_in_length_with_their_defaults():
    s = Substrate.create("lambda", "lambda r, scale=2: pi * r ** 2 * scale")
    length = contents(divide(s))["Length"]
    assert length["parameters"] == [
        {"name": "r", "required": True, "default": None},
        {"name": "scale", "required": False, "default": 2},
    ]
    assert length["accepts_any"] is False


def test_area_counts_relationships_by_type_and_direction_and_lists_neighbours():
    me = seed_substrate().identity
    relations = [
        Relationship.create(me, 1, "dependency"),
        Relationship.create(me, 2, "dependency"),
        Relationship.create(3, me, "lineage"),
        Relationship.create(me, 4, "sibling", bidirectional=True),
        Relationship.create(me, me, "recursion"),
    ]
    area = contents(divide(seed_substrate(), SubstrateFacts(relationships=relations)))["Area"]
    assert area["by_type"] == {
        "dependency": {"outgoing": 2, "incoming": 0},
        "lineage": {"outgoing": 0, "incoming": 1},
        "recursion": {"outgoing": 1, "incoming": 1},
        "sibling": {"outgoing": 1, "incoming": 1},
    }
    assert (area["outgoing"], area["incoming"]) == (4, 3)
    assert len(area["neighbours"]) == 5
    assert area["neighbours"][0] == {
        "substrate_id": "0x0000000000000001",
        "relationship_type": "dependency",
        "direction": "outgoing",
    }


def test_frequency_reports_invocation_statistics():
    stats = InvocationStats(count=4, errors=1, total_ms=10.0, last_invoked_at=CREATED)
    frequency = contents(divide(seed_substrate(), SubstrateFacts(invocations=stats)))["Frequency"]
    assert frequency == {
        "available": True,
        "invocations": 4,
        "errors": 1,
        "mean_ms": 2.5,
        "last_invoked_at": "2026-11-24T09:30:00Z",
    }


def test_multiply_rebuilds_the_substrate_from_its_dimensions():
    original = seed_substrate(version=2)
    rebuilt = multiply(divide(original))
    assert rebuilt == original


def test_multiply_accepts_the_dimensions_as_json_objects():
    original = seed_substrate()
    rebuilt = multiply(divide(original).to_dict()["dimensions"])
    assert rebuilt.identity == original.identity


def test_facts_do_not_stop_a_round_trip():
    original = seed_substrate()
    facts = SubstrateFacts(relationships=[], invocations=InvocationStats(count=1, total_ms=1.0))
    assert multiply(divide(original, facts)).identity == original.identity


@pytest.mark.parametrize(
    ("dimension", "key", "value"),
    [
        ("Identity", "substrate_id", "0x0000000000000001"),
        ("Domain", "expression_type", "constant"),
        ("Length", "reads", ["x"]),
        ("Volume", "version", 99),
        ("System", "node_count", 1),
        ("Void", "fingerprint", "00" * 32),
    ],
)
def test_tampered_dimensions_are_refused_naming_the_dimension(dimension, key, value):
    dims = copy.deepcopy(divide(seed_substrate()).to_dict()["dimensions"])
    next(d for d in dims if d["name"] == dimension)["content"][key] = value
    with pytest.raises(InconsistentDimensions) as caught:
        multiply(dims)
    assert caught.value.dimension == dimension


@pytest.mark.parametrize(
    "mutate",
    [
        lambda dims: dims.pop(),
        lambda dims: dims.reverse(),
        lambda dims: dims[8]["content"].pop("expression_code"),
        lambda dims: dims[8]["content"].update(expression_code="lambda **kw: __import__('os')"),
        lambda dims: dims[3].update(content="not an object"),
    ],
    ids=["eight-dimensions", "reordered", "no-code", "hostile-code", "content-not-object"],
)
def test_broken_dimensions_are_inconsistent_never_a_crash(mutate):
    dims = copy.deepcopy(divide(seed_substrate()).to_dict()["dimensions"])
    mutate(dims)
    with pytest.raises(InconsistentDimensions):
        multiply(dims)


def test_multiplying_substrates_composes_their_product():
    a = Substrate.create("lambda", "lambda **kw: kw.get('x', 0) + 1")
    b = Substrate.create("lambda", "lambda x, y=2: x * y")
    c = Substrate.create("constant", "3")
    product = multiply(a, b, c)
    assert product.expression_type == "lambda"
    assert product.metadata["product_of"] == [a.substrate_id, b.substrate_id, c.substrate_id]
    value = compile_expression("lambda", product.expression_code).invoke({"x": 4})
    assert value == (4 + 1) * (4 * 2) * 3
    assert multiply(a, b, c).identity == product.identity


def test_a_product_still_fails_when_a_factor_would():
    a = Substrate.create("lambda", "lambda x: x")
    b = Substrate.create("lambda", "lambda **kw: kw['y']")
    product = compile_expression("lambda", multiply(a, b).expression_code)
    assert product.invoke({"x": 2, "y": 3}) == 6
    with pytest.raises(EvaluationError):
        product.invoke({"y": 3})


def test_the_product_of_one_substrate_is_itself_and_of_none_is_an_error():
    s = seed_substrate()
    assert multiply(s) is s
    with pytest.raises(TypeError):
        multiply()
    with pytest.raises(TypeError):
        multiply(divide(s), divide(s))


def test_a_product_too_big_for_the_static_limits_is_rejected():
    factor = Substrate.create("lambda", "lambda **kw: " + " + ".join(["kw.get('x', 1)"] * 20))
    with pytest.raises(ExpressionRejected):
        multiply(*[factor] * 8)
