"""Kernel speed: invoke through a cached CompiledExpression, and create (parse, check,
compile, identity), each against plain CPython doing the nearest equivalent work.

Targets on a 2-core machine: >= 1,000,000 invokes/s and >= 20,000 creates/s.
"""

from __future__ import annotations

import ast
import hashlib

from butterflyfx.kernel import Substrate, compile_expression

SEED = "lambda **kw: kw.get('x', 0) * kw.get('y', 0)"
PARAMS = {"x": 5, "y": 7}


def test_invoke_seed_expression(benchmark, report):
    compiled = compile_expression("lambda", SEED)
    assert benchmark(compiled.invoke, PARAMS) == 35
    report("invoke (seed multiply)", "measured")


def test_invoke_baseline_native_lambda(benchmark, report):
    def native(**kw):
        return kw.get("x", 0) * kw.get("y", 0)

    assert benchmark(lambda: native(**PARAMS)) == 35
    report("invoke (seed multiply)", "baseline")


def test_invoke_comprehension(benchmark, report):
    compiled = compile_expression("lambda", "lambda **kw: sum(i * i for i in range(kw['n']))")
    assert benchmark(compiled.invoke, {"n": 100}) == 328350
    report("invoke (sum of 100 squares)", "measured")


def test_invoke_comprehension_baseline(benchmark, report):
    def native(**kw):
        return sum(i * i for i in range(kw["n"]))

    assert benchmark(lambda: native(n=100)) == 328350
    report("invoke (sum of 100 squares)", "baseline")


def test_create_substrate(benchmark, report):
    def create():
        compiled = compile_expression("lambda", SEED)
        return Substrate("lambda", SEED, compiled.identity)

    assert benchmark(create).substrate_id == "0xE7A2CB9AAF2B6E02"
    report("create (parse+check+compile+id)", "measured")


def test_create_baseline_parse_compile_hash(benchmark, report):
    def baseline():
        tree = ast.parse(SEED, mode="eval")
        compile(tree, "<substrate>", "eval")
        return hashlib.blake2b(ast.unparse(tree).encode(), digest_size=8).digest()

    assert len(benchmark(baseline)) == 8
    report("create (parse+check+compile+id)", "baseline")
