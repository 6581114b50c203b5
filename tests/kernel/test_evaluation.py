"""Invoking substrates: what a user sends as parameters and what comes back as JSON."""

from __future__ import annotations

import json
import math

import pytest

from butterflyfx.kernel import (
    EvaluationError,
    EvaluationLimitExceeded,
    ExpressionRejected,
    UnknownExpressionType,
    compile_expression,
)

SEED = "lambda **kw: kw.get('x', 0) * kw.get('y', 0)"


def invoke(code: str, params: dict | None = None, kind: str = "lambda"):
    return compile_expression(kind, code).invoke(params or {})


def test_the_seed_expression_multiplies_its_parameters():
    compiled = compile_expression("lambda", SEED)
    assert compiled.invoke({"x": 5, "y": 7}) == 35
    assert compiled.invoke({"x": 2.5}) == 0
    assert compiled.invoke({}) == 0


def test_a_compiled_expression_is_reusable_and_keeps_no_state_between_calls():
    compiled = compile_expression("lambda", "lambda **kw: [kw.get('n', 0)] * 2")
    assert compiled.invoke({"n": 1}) == [1, 1]
    assert compiled.invoke({"n": 2}) == [2, 2]


def test_named_parameters_are_filled_from_the_parameters_object():
    compiled = compile_expression("lambda", "lambda x, y=10: x + y")
    assert compiled.invoke({"x": 1}) == 11
    assert compiled.invoke({"x": 1, "y": 2}) == 3
    assert [p.name for p in compiled.info.parameters] == ["x", "y"]
    assert [p.required for p in compiled.info.parameters] == [True, False]


def test_a_missing_required_parameter_is_an_evaluation_error_naming_it():
    with pytest.raises(EvaluationError) as caught:
        invoke("lambda x, y=10: x + y", {"y": 1})
    assert "x" in caught.value.message


def test_extra_parameters_are_ignored_by_named_lambdas():
    assert invoke("lambda x: x * 2", {"x": 4, "unused": 1}) == 8


def test_kw_subscript_of_a_missing_key_is_a_key_error():
    with pytest.raises(EvaluationError) as caught:
        invoke("lambda **kw: kw['x']")
    assert caught.value.error_type == "KeyError"


@pytest.mark.parametrize(
    ("code", "params", "expected"),
    [
        ("lambda **kw: sqrt(kw['a'] ** 2 + kw['b'] ** 2)", {"a": 3, "b": 4}, 5.0),
        ("lambda **kw: [i * i for i in range(kw.get('n', 0))]", {"n": 4}, [0, 1, 4, 9]),
        ("lambda **kw: {k: len(k) for k in kw.get('words', [])}", {"words": ["ab"]}, {"ab": 2}),
        ("lambda **kw: sorted(kw['v'], reverse=True)", {"v": [2, 3, 1]}, [3, 2, 1]),
        ("lambda **kw: 'big' if kw['n'] > 10 else 'small'", {"n": 11}, "big"),
        ("lambda **kw: kw['s'][1:3]", {"s": "hello"}, "el"),
        ("lambda **kw: 'x' in kw", {"x": None}, True),
        ("lambda **kw: (1, 2)", {}, [1, 2]),
        ("lambda **kw: {3, 1, 2}", {}, [1, 2, 3]),
        ("lambda **kw: {1: 'a', None: 'b'}", {}, {"1": "a", "null": "b"}),
        ("lambda **kw: round(pi, 3)", {}, 3.142),
        ("lambda **kw: max([], default=-1)", {}, -1),
        ("lambda **kw: int('ff', 16)", {}, 255),
        ("lambda **kw: gcd(12, 18) + factorial(5)", {}, 126),
        ("lambda **kw: all(v > 0 for v in kw['v']) and not any([])", {"v": [1, 2]}, True),
        ("lambda **kw: sum(range(101))", {}, 5050),
        ("lambda **kw: sum([0.5, 0.25], start=1)", {}, 1.75),
        ("lambda **kw: str(kw['n']) * 2", {"n": 12}, "1212"),
    ],
)
def test_the_documented_constructs_compute_what_python_would(code, params, expected):
    assert invoke(code, params) == expected


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("lambda **kw: float('nan')", "NaN"),
        ("lambda **kw: 1e308 * 10", "Infinity"),
        ("lambda **kw: -1e308 * 10", "-Infinity"),
        ("lambda **kw: [float('inf'), 1.5]", ["Infinity", 1.5]),
        ("lambda **kw: {'v': float('nan')}", {"v": "NaN"}),
    ],
)
def test_nan_and_infinities_become_strings_so_the_result_is_always_valid_json(code, expected):
    result = invoke(code)
    assert result == expected
    json.dumps(result, allow_nan=False)


@pytest.mark.parametrize(
    ("code", "error_type"),
    [
        ("lambda **kw: 1 / kw.get('d', 0)", "ZeroDivisionError"),
        ("lambda **kw: 'a' + 1", "TypeError"),
        ("lambda **kw: int('x')", "ValueError"),
        ("lambda **kw: sqrt(-1)", "ValueError"),
        ("lambda **kw: [1][5]", "IndexError"),
    ],
)
def test_ordinary_failures_are_evaluation_errors_with_the_python_class(code, error_type):
    with pytest.raises(EvaluationError) as caught:
        invoke(code)
    assert caught.value.error_type == error_type


def test_results_that_are_not_json_are_refused():
    with pytest.raises(EvaluationError):
        invoke("lambda **kw: range(3)")


def test_an_oversized_result_names_the_limit():
    with pytest.raises(EvaluationLimitExceeded) as caught:
        invoke("lambda **kw: {'a': [i for i in range(6000)], 'b': [i for i in range(6000)]}")
    assert caught.value.limit == "max_result_values"


@pytest.mark.parametrize(
    ("code", "line", "column"),
    [
        ("lambda **kw: kw.keys()", 1, 14),
        ("lambda **kw: open('x')", 1, 14),
        ("lambda **kw: (\n  kw.get('a', 0)\n  + __import__)", 3, 5),
        ("lambda **kw: [x := 1]", 1, 15),
        ("lambda **kw: f'{kw}'", 1, 14),
    ],
)
def test_a_rejection_says_where_the_offence_is(code, line, column):
    with pytest.raises(ExpressionRejected) as caught:
        compile_expression("lambda", code)
    assert (caught.value.line, caught.value.column) == (line, column)
    assert caught.value.reason


def test_something_that_is_not_a_lambda_is_rejected_with_a_hint():
    with pytest.raises(ExpressionRejected) as caught:
        compile_expression("lambda", "1 + 2")
    assert "lambda" in caught.value.reason


def test_a_syntax_error_is_a_rejection_with_a_position():
    with pytest.raises(ExpressionRejected) as caught:
        compile_expression("lambda", "lambda **kw: (1 +")
    assert caught.value.reason.startswith("syntax error")
    assert caught.value.line == 1


def test_constants_are_json_literals_returned_as_fresh_copies():
    compiled = compile_expression("constant", '{"phi": 1.618, "fib": [1, 1, 2]}')
    first = compiled.invoke({"ignored": 1})
    first["fib"].append(99)
    assert compiled.invoke({}) == {"phi": 1.618, "fib": [1, 1, 2]}


@pytest.mark.parametrize("bad", ["NaN", "{'a': 1}", "[1, 2", "", "Infinity"])
def test_constants_that_are_not_strict_json_are_rejected(bad):
    with pytest.raises(ExpressionRejected):
        compile_expression("constant", bad)


def test_an_unknown_expression_type_is_refused():
    with pytest.raises(UnknownExpressionType):
        compile_expression("javascript", "() => 1")


def test_what_the_compiler_learns_about_an_expression():
    info = compile_expression("lambda", "lambda **kw: sqrt(kw.get('x', 0)) + kw['y']").info
    assert info.accepts_any is True
    assert set(info.reads) == {"x", "y"}
    assert "sqrt" in info.functions
    assert info.node_count > 0 and info.depth > 0


def test_floats_survive_with_full_precision():
    assert invoke("lambda **kw: kw['x'] / 3", {"x": 1}) == pytest.approx(1 / 3, rel=0)
    assert math.isclose(invoke("lambda **kw: tau / 2"), math.pi)
