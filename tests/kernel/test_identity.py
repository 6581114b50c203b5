"""A substrate's id is forever: same expression, same id, on any machine, in any process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from butterflyfx.kernel import (
    InvalidSubstrateId,
    UnknownExpressionType,
    format_id,
    parse_id,
    relationship_identity,
    substrate_identity,
)

VECTORS_FILE = Path(__file__).parents[1] / "vectors" / "identity.json"
VECTORS = json.loads(VECTORS_FILE.read_text())["vectors"]
SEED = "lambda **kw: kw.get('x', 0) * kw.get('y', 0)"


def test_the_golden_vectors_file_is_big_enough_to_mean_something():
    assert len(VECTORS) >= 20
    assert len({v["substrate_id"] for v in VECTORS}) == len(VECTORS)


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v["expression_code"][:40])
def test_every_golden_vector_keeps_its_id(vector):
    identity = substrate_identity(vector["expression_type"], vector["expression_code"])
    assert format_id(identity) == vector["substrate_id"]


@pytest.mark.parametrize("hash_seed", ["0", "1", "12345", "random"])
def test_identity_does_not_depend_on_the_process_hash_seed(hash_seed):
    script = (
        "import json, sys\n"
        "from butterflyfx.kernel import substrate_identity, format_id\n"
        "vectors = json.load(sys.stdin)\n"
        "print(json.dumps([format_id(substrate_identity(v['expression_type'],"
        " v['expression_code'])) for v in vectors]))\n"
    )
    env = dict(os.environ, PYTHONHASHSEED=hash_seed)
    result = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps(VECTORS),
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    assert json.loads(result.stdout) == [v["substrate_id"] for v in VECTORS]


@pytest.mark.parametrize(
    "variant",
    [
        'lambda **kw: kw.get("x", 0) * kw.get("y", 0)',
        "lambda **kw:kw.get('x',0)*kw.get('y',0)",
        "lambda **kw: (kw.get('x', 0)\n    * kw.get('y', 0))  # the seed's product",
        "lambda **kw: ((kw.get('x', 0)) * (kw.get('y', 0)))",
        "  lambda   **kw :  kw.get( 'x' , 0 ) * kw.get( 'y' , 0 )  ",
    ],
)
def test_whitespace_comments_quotes_and_parentheses_do_not_change_the_id(variant):
    assert substrate_identity("lambda", variant) == substrate_identity("lambda", SEED)


def test_different_expressions_and_types_have_different_ids():
    assert substrate_identity("lambda", SEED) != substrate_identity(
        "lambda", "lambda **kw: kw.get('y', 0) * kw.get('x', 0)"
    )
    assert substrate_identity("constant", "1") != substrate_identity("lambda", "lambda **kw: 1")


def test_constant_ids_ignore_key_order_and_spacing():
    assert substrate_identity("constant", '{"a": 1, "b": [1, 2]}') == substrate_identity(
        "constant", '{ "b":[1,2],\n "a":1 }'
    )


def test_an_unknown_expression_type_names_the_known_ones():
    with pytest.raises(UnknownExpressionType) as caught:
        substrate_identity("python", "print(1)")
    assert caught.value.known == ["constant", "lambda"]
    assert "constant, lambda" in str(caught.value)


def test_format_id_is_0x_and_sixteen_upper_case_hex_digits():
    assert format_id(0) == "0x0000000000000000"
    assert format_id(0xABCDEF) == "0x0000000000ABCDEF"
    assert format_id(2**64 - 1) == "0xFFFFFFFFFFFFFFFF"


@pytest.mark.parametrize("bad", [-1, 2**64, 1.5, True, "0x1"])
def test_format_id_refuses_what_is_not_a_64_bit_identity(bad):
    with pytest.raises(InvalidSubstrateId):
        format_id(bad)


@pytest.mark.parametrize(
    "text", ["0xE7A2CB9AAF2B6E02", "0xe7a2cb9aaf2b6e02", "E7A2CB9AAF2B6E02", "0Xe7A2cb9AAF2B6E02"]
)
def test_parse_id_accepts_any_case_with_or_without_0x(text):
    assert parse_id(text) == 0xE7A2CB9AAF2B6E02
    assert format_id(parse_id(text)) == "0xE7A2CB9AAF2B6E02"


@pytest.mark.parametrize(
    "text",
    ["", "0x", "0xG1", "0x12345678901234567", " 0x1", "0x1 ", "-0x1", "1_000", "0o17", "0x1\n"],
)
def test_parse_id_rejects_anything_else(text):
    with pytest.raises(InvalidSubstrateId):
        parse_id(text)


def test_parse_id_rejects_non_strings():
    with pytest.raises(InvalidSubstrateId):
        parse_id(123)  # type: ignore[arg-type]


def test_relationship_identity_depends_on_direction_and_type():
    a, b = 0x1, 0x2
    forward = relationship_identity(a, b, "dependency")
    assert forward == relationship_identity(a, b, "dependency")
    assert forward != relationship_identity(b, a, "dependency")
    assert forward != relationship_identity(a, b, "lineage")
    assert 0 <= forward < 2**64
