"""The attack battery: hostile ``lambda`` expressions, each stopped by a typed kernel error.

Every entry of ``ATTACKS`` must be refused at compile time with ``ExpressionRejected``
(and, where the offence has a place, with its line and column) or stopped at invoke with
``EvaluationLimitExceeded`` naming the limit, or ``EvaluationError`` naming the Python
error. ``DEFUSED`` holds expressions that are hostile in plain Python but which the kernel
answers correctly and at once (``round(1, -10**9)`` would build ``10**10**9`` in CPython).

Nothing here times an expression in the test process itself: the whole battery runs once
in a child process that reports every expression's duration, and each must stay under one
second. Entries with ``bug`` set are known kernel bugs: they are strict xfails and run in a
child process of their own with a timeout, so a hang cannot stall the suite.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import types
from dataclasses import dataclass, field
from typing import Any

import pytest

from butterflyfx.kernel import (
    CompiledExpression,
    EvaluationError,
    EvaluationLimitExceeded,
    ExpressionRejected,
    KernelError,
    compile_expression,
)

# The single-expression bound the issue asks for ("none taking over 1 s"); the kernel's own
# wall-clock limit is 0.5 s, so this leaves room for a loaded machine.
MAX_SECONDS_PER_EXPRESSION = 1.0
# Modules the battery may cause to be imported: CPython's parser loads unicodedata itself to
# NFKC-normalise non-ASCII identifiers (the look-alike entries), before any checking runs.
PARSER_IMPORTS = frozenset({"unicodedata"})


# -- expectations --------------------------------------------------------------------------
@dataclass(frozen=True)
class Rejected:
    """Refused by ``compile_expression``; ``match`` is a regular expression on the reason.

    ``at`` is ``(line, column)`` when the offence is one node, ``"set"`` when the position
    must be given but depends on the walk (size and depth limits), ``None`` when the reason
    concerns the whole text, ``"any"`` when it differs between Python releases.
    """

    match: str
    at: tuple[int, int] | str | None


@dataclass(frozen=True)
class Limit:
    """Stopped at invoke by ``EvaluationLimitExceeded``; ``name`` is its ``.limit`` (or "*")."""

    name: str


@dataclass(frozen=True)
class Error:
    """Stopped at invoke by ``EvaluationError`` with this ``error_type``."""

    error_type: str


@dataclass(frozen=True)
class Value:
    """Answered at invoke with exactly this JSON value (same type too)."""

    value: Any


Expectation = Rejected | Limit | Error | Value


@dataclass(frozen=True)
class Attack:
    id: str
    source: str
    expect: Expectation
    params: dict[str, Any] = field(default_factory=dict)
    bug: str | None = None  # a known kernel bug: strict xfail, run in its own child process


def _nest(opening: str, inner: str, closing: str, times: int) -> str:
    return opening * times + inner + closing * times


# Seventeen sorts of 10 000 two-byte strings that differ only in their last character:
# every comparison walks 100 000 UCS-2 characters in C, no comprehension is involved, so
# nothing ever looks at the clock. 292 syntax nodes, 861 characters.
_UCS2_SORT = "len(sorted(['ā'*99999+'b','ā'*99999+'c']*5000))"
_UCS2_SORT_BOMB = "lambda: [" + ",".join([_UCS2_SORT] * 17) + "]"

ATTACKS: list[Attack] = [
    # -- sandbox escapes through dunders and attributes ------------------------------------
    Attack(
        "dunder-subclasses-chain",
        "lambda: ().__class__.__bases__[0].__subclasses__()",
        Rejected(r"attribute access is not allowed \(\.__subclasses__\)", (1, 9)),
    ),
    Attack(
        "mro-subclasses-chain",
        "lambda: (1).__class__.__mro__[-1].__subclasses__()",
        Rejected(r"attribute access is not allowed \(\.__subclasses__\)", (1, 9)),
    ),
    Attack(
        "subclasses-in-comprehension",
        "lambda: [c for c in ().__class__.__base__.__subclasses__()]",
        Rejected(r"attribute access is not allowed \(\.__subclasses__\)", (1, 21)),
    ),
    Attack(
        "kw-dunder-class",
        "lambda **kw: kw.__class__",
        Rejected(r"attribute access is not allowed \(\.__class__\)", (1, 14)),
    ),
    Attack(
        "kw-get-dunder-self",
        "lambda **kw: kw.get.__self__",
        Rejected(r"attribute access is not allowed \(\.__self__\)", (1, 14)),
    ),
    Attack(
        "kw-get-dunder-call",
        "lambda **kw: kw.get.__call__('x')",
        Rejected(r"attribute access is not allowed \(\.__call__\)", (1, 14)),
    ),
    Attack(
        "parameter-value-dunder-class",
        "lambda **kw: kw.get('x').__class__",
        Rejected(r"attribute access is not allowed \(\.__class__\)", (1, 14)),
    ),
    Attack(
        "int-literal-dunder-class",
        "lambda: 1 .__class__",
        Rejected(r"attribute access is not allowed \(\.__class__\)", (1, 9)),
    ),
    Attack(
        "kw-items-method",
        "lambda **kw: kw.items()",
        Rejected(r"attribute access is not allowed \(\.items\)", (1, 14)),
    ),
    Attack(
        "kw-get-uncalled",
        "lambda **kw: kw.get",
        Rejected(r"attribute access is not allowed \(\.get\)", (1, 14)),
    ),
    Attack(
        "string-method",
        "lambda: 'a'.upper()",
        Rejected(r"attribute access is not allowed \(\.upper\)", (1, 9)),
    ),
    # -- builtins and the functions that reach the interpreter -----------------------------
    Attack(
        "builtins-name",
        "lambda: __builtins__",
        Rejected(r"names starting with '_' are not allowed \('__builtins__'\)", (1, 9)),
    ),
    Attack(
        "builtins-subscript-call",
        "lambda: __builtins__['eval']('1')",
        Rejected(r"only the built-in functions and kw\.get can be called", (1, 9)),
    ),
    Attack(
        "dunder-import",
        "lambda: __import__('os')",
        Rejected(r"names starting with '_' are not allowed \('__import__'\)", (1, 9)),
    ),
    Attack(
        "dunder-import-in-dead-branch",
        "lambda: 1 if True else __import__('os')",
        Rejected(r"names starting with '_' are not allowed \('__import__'\)", (1, 24)),
    ),
    Attack(
        "dunder-import-on-line-3",
        "lambda **kw: (\n  kw.get('x', 0) +\n  __import__('os'))",
        Rejected(r"names starting with '_' are not allowed \('__import__'\)", (3, 3)),
    ),
    Attack(
        "getattr",
        "lambda: getattr(1, 'real')",
        Rejected(r"'getattr' is not a callable function", (1, 9)),
    ),
    Attack(
        "type-three-arguments",
        "lambda: type('X', (), {})",
        Rejected(r"'type' is not a callable function", (1, 9)),
    ),
    Attack(
        "open-file",
        "lambda: open('/etc/passwd')",
        Rejected(r"'open' is not a callable function", (1, 9)),
    ),
    Attack("eval", "lambda: eval('1+1')", Rejected(r"'eval' is not a callable function", (1, 9))),
    Attack(
        "exec",
        "lambda: exec('import os')",
        Rejected(r"'exec' is not a callable function", (1, 9)),
    ),
    Attack("globals", "lambda: globals()", Rejected(r"'globals' is not a callable", (1, 9))),
    Attack("vars", "lambda: vars()", Rejected(r"'vars' is not a callable function", (1, 9))),
    Attack("locals", "lambda: locals()", Rejected(r"'locals' is not a callable", (1, 9))),
    Attack(
        "compile",
        "lambda: compile('1', 'x', 'eval')",
        Rejected(r"'compile' is not a callable function", (1, 9)),
    ),
    Attack(
        "call-through-subscript",
        "lambda: [eval][0]('1')",
        Rejected(r"only the built-in functions and kw\.get can be called", (1, 9)),
    ),
    Attack(
        "function-as-value",
        "lambda: sum",
        Rejected(r"the function 'sum' can only be called", (1, 9)),
    ),
    Attack(
        "sorted-key-callback",
        "lambda: sorted([1], key=abs)",
        Rejected(r"sorted\(\) takes no keyword argument 'key'", (1, 21)),
    ),
    # -- the runtime's own hidden helpers ----------------------------------------------------
    Attack(
        "hidden-guard-g-mul",
        "lambda: _g_mul(2, 3)",
        Rejected(r"names starting with '_' are not allowed \('_g_mul'\)", (1, 9)),
    ),
    Attack(
        "hidden-guard-g-iter",
        "lambda: _g_iter(None, range(3))",
        Rejected(r"names starting with '_' are not allowed \('_g_iter'\)", (1, 9)),
    ),
    Attack(
        "hidden-budget",
        "lambda: _b",
        Rejected(r"names starting with '_' are not allowed \('_b'\)", (1, 9)),
    ),
    Attack(
        "hidden-parameters-dict",
        "lambda: _p",
        Rejected(r"names starting with '_' are not allowed \('_p'\)", (1, 9)),
    ),
    Attack(
        "hidden-budget-as-parameter",
        "lambda _b=1: _b",
        Rejected(r"names starting with '_' are not allowed \('_b'\)", (1, 8)),
    ),
    Attack(
        "hidden-guard-as-loop-variable",
        "lambda: [_g_mul for _g_mul in range(3)]",
        Rejected(r"names starting with '_' are not allowed \('_g_mul'\)", (1, 21)),
    ),
    # -- format-string tricks -----------------------------------------------------------------
    Attack(
        "str-format-method",
        "lambda: '{0.__class__}'.format(1)",
        Rejected(r"attribute access is not allowed \(\.format\)", (1, 9)),
    ),
    Attack(
        "str-format-through-str",
        "lambda: str.format('{0.__class__}', 1)",
        Rejected(r"attribute access is not allowed \(\.format\)", (1, 9)),
    ),
    Attack(
        "percent-format-literal",
        "lambda **kw: '%s' % kw",
        Rejected(r"%-formatting of strings is not allowed", (1, 14)),
    ),
    Attack("percent-format-computed", "lambda **kw: ('%s' + '') % kw", Error("TypeError")),
    Attack(
        "percent-format-from-parameter",
        "lambda **kw: kw.get('fmt', '') % kw",
        Error("TypeError"),
        params={"fmt": "%(fmt)s"},
    ),
    Attack("f-string", "lambda **kw: f'{kw}'", Rejected(r"f-strings are not allowed", (1, 14))),
    Attack(
        "f-string-conversion-and-spec",
        "lambda **kw: f'{kw!r:>10}'",
        Rejected(r"f-strings are not allowed", (1, 14)),
    ),
    # -- the shape of the lambda itself ---------------------------------------------------------
    Attack(
        "varargs",
        "lambda *args: 1",
        Rejected(r"\*args is not allowed", (1, 9)),
    ),
    Attack(
        "not-a-lambda",
        "__import__('os').system('id')",
        Rejected(r"must start with 'lambda'", (1, 1)),
    ),
    Attack("statement", "import os", Rejected(r"syntax error", (1, 1))),
    Attack("smuggled-statement", "lambda: 1; import os", Rejected(r"syntax error", (1, 10))),
    Attack(
        "nested-lambda-as-default",
        "lambda f=lambda: 1: f()",
        Rejected(r"a default must be a literal value", (1, 10)),
    ),
    Attack(
        "nested-lambda-called",
        "lambda: (lambda: 1)()",
        Rejected(r"only the built-in functions and kw\.get can be called", (1, 9)),
    ),
    Attack(
        "nested-lambda-returned",
        "lambda: (lambda x: x)",
        Rejected(r"nested lambdas are not allowed", (1, 10)),
    ),
    Attack(
        "computed-default",
        "lambda x=10**5000: x",
        Rejected(r"a default must be a literal value", (1, 10)),
    ),
    Attack(
        "unhashable-default-dict-key",
        "lambda x={[1]: 2}: x",
        Rejected(r"a set item or dict key in a default cannot be a container", (1, 11)),
    ),
    Attack(
        "walrus",
        "lambda: (x := 1)",
        Rejected(r"assignment expressions \(:=\) are not allowed", (1, 10)),
    ),
    Attack(
        "walrus-in-comprehension",
        "lambda: [y := i for i in range(3)]",
        Rejected(r"assignment expressions \(:=\) are not allowed", (1, 10)),
    ),
    Attack("yield", "lambda: (yield 1)", Rejected(r"yield is not allowed", (1, 10))),
    Attack("yield-from", "lambda: (yield from [1])", Rejected(r"yield is not allowed", (1, 10))),
    Attack("await", "lambda **kw: await kw", Rejected(r"await is not allowed", (1, 14))),
    Attack(
        "async-comprehension",
        "lambda **kw: [i async for i in kw]",
        Rejected(r"async comprehensions are not allowed", (1, 14)),
    ),
    Attack(
        "starred-list",
        "lambda: [*range(10)]",
        Rejected(r"starred unpacking is not allowed", (1, 10)),
    ),
    Attack(
        "starred-call",
        "lambda: max(*range(10))",
        Rejected(r"starred unpacking is not allowed", (1, 13)),
    ),
    Attack(
        "dict-unpacking-literal",
        "lambda **kw: {**kw}",
        Rejected(r"dict unpacking \(\*\*\) is not allowed", (1, 17)),
    ),
    Attack(
        "dict-unpacking-call",
        "lambda **kw: max(**kw)",
        Rejected(r"dict unpacking \(\*\*\) is not allowed", (1, 20)),
    ),
    Attack("matmul-operator", "lambda: 1 @ 2", Rejected(r"the @ operator is not allowed", (1, 9))),
    Attack("bytes-literal", "lambda: b'abc'", Rejected(r"literals of type bytes", (1, 9))),
    Attack("complex-literal", "lambda: 1j", Rejected(r"literals of type complex", (1, 9))),
    Attack("ellipsis-literal", "lambda: ...", Rejected(r"literals of type ellipsis", (1, 9))),
    # -- unicode look-alikes (Python NFKC-normalises identifiers) ------------------------------
    Attack(
        "math-bold-eval",
        "lambda: 𝐞𝐯𝐚𝐥('1+1')",
        Rejected(r"'eval' is not a callable function", (1, 9)),
    ),
    Attack(
        "math-bold-exec-column-in-characters",
        "lambda s='𝐞': s + 𝐞𝐱𝐞𝐜(s)",
        Rejected(r"'exec' is not a callable function", (1, 19)),
    ),
    Attack(
        "fullwidth-OPEN",
        "lambda: ＯＰＥＮ('x')",
        Rejected(r"'OPEN' is not a callable function", (1, 9)),
    ),
    Attack(
        "fullwidth-open",
        "lambda: ｏｐｅｎ('/etc/passwd')",
        Rejected(r"'open' is not a callable function", (1, 9)),
    ),
    Attack(
        "fullwidth-underscore-import",
        "lambda: ＿＿import＿＿('os')",
        Rejected(r"syntax error: invalid character", (1, 9)),
    ),
    Attack(
        "math-bold-dunder-class",
        "lambda **kw: kw.__𝐜𝐥𝐚𝐬𝐬__",
        Rejected(r"attribute access is not allowed \(\.__class__\)", (1, 14)),
    ),
    # -- text that is not source ----------------------------------------------------------------
    Attack("null-byte", "lambda: 1\x00", Rejected(r"null bytes", "any")),
    Attack("lone-surrogate", "lambda: '\ud800'", Rejected(r"surrogates not allowed", None)),
    Attack(
        "control-character",
        "lambda: 1\x01",
        Rejected(r"invalid non-printable character", (1, 10)),
    ),
    # -- size and depth of the text --------------------------------------------------------------
    Attack(
        "parentheses-201-deep",
        "lambda: " + _nest("(", "1", ")", 201),
        Rejected(r"too many nested parentheses", (1, 209)),
    ),
    Attack(
        "negation-parentheses-100-deep",
        "lambda: " + _nest("-(", "1", ")", 100),
        Rejected(r"nested deeper than 40 levels", "set"),
    ),
    Attack(
        "unary-minus-chain-1980",
        "lambda: " + "-" * 1980 + "1",
        Rejected(r"nested deeper than 40 levels", "set"),
    ),
    Attack(
        "not-chain-400",
        "lambda: " + "not " * 400 + "1",
        Rejected(r"nested deeper than 40 levels", "set"),
    ),
    Attack(
        "addition-chain-200",
        "lambda: " + "+".join(["1"] * 200),
        Rejected(r"nested deeper than 40 levels|more than 300 syntax nodes", "set"),
    ),
    Attack(
        "flat-list-350-items",
        "lambda: [" + "1," * 350 + "]",
        Rejected(r"more than 300 syntax nodes", "set"),
    ),
    Attack(
        "nested-lists-60-deep",
        "lambda: " + _nest("[", "1", "]", 60),
        Rejected(r"nested deeper than 40 levels", "set"),
    ),
    Attack(
        "source-over-2000-chars",
        "lambda: '" + "a" * 2100 + "'",
        Rejected(r"2110 characters long; the limit is 2000", None),
    ),
    # -- integer bombs -----------------------------------------------------------------------
    Attack("power-tower-9-9-9", "lambda: 9**9**9", Limit("max_int_bits")),
    Attack("power-2-10-8", "lambda: 2**10**8", Limit("max_int_bits")),
    Attack("power-10-5000", "lambda: 10**5000", Limit("max_int_bits")),
    Attack("left-shift-100000", "lambda: 1 << 100000", Limit("max_int_bits")),
    Attack("str-of-10-4000", "lambda: str(10**4000)", Limit("max_int_bits")),
    Attack("int-of-4000-digits", "lambda: int('9' * 4000)", Limit("max_int_bits")),
    Attack("factorial-million", "lambda: factorial(10**6)", Limit("max_int_bits")),
    Attack("factorial-8192", "lambda: factorial(8192)", Limit("max_int_bits")),
    Attack("gcd-of-huge-ints", "lambda: gcd(10**5000, 10**4000)", Limit("max_int_bits")),
    Attack("int-grown-by-addition", "lambda: 2**4095 + 2**4095", Limit("max_int_bits")),
    # -- string and sequence bombs -------------------------------------------------------------
    Attack("str-repeat-10-10", "lambda: 'a' * 10**10", Limit("max_string_chars")),
    Attack("str-concat-2x99999", "lambda: 'x'*99999 + 'x'*99999", Limit("max_string_chars")),
    Attack("str-one-past-limit", "lambda: len('a'*100000 + 'a')", Limit("max_string_chars")),
    Attack(
        "str-of-bigint-ranges",
        "lambda: str([range(2**4095, 2**4095 + 1)] * 2500)",
        Limit("max_string_chars"),
    ),
    Attack("list-repeat-10-9", "lambda: [0] * 10**9", Limit("max_sequence_items")),
    Attack("list-doubling", "lambda: [0]*5000*2*2", Limit("max_sequence_items")),
    Attack("list-concat-doubling", "lambda: [0]*10000 + [0]*10000", Limit("max_sequence_items")),
    Attack("nested-repeat-30-cubed", "lambda: [[[0]*30]*30]*30", Limit("max_sequence_items")),
    Attack(
        "set-union-bomb",
        "lambda: {i for i in range(9000)} | {i for i in range(9000, 18000)}",
        Limit("max_sequence_items"),
    ),
    Attack("sorted-100000-chars", "lambda: sorted('a' * 100000)", Limit("max_sequence_items")),
    Attack(
        "dict-comprehension-wide",
        "lambda: {i: i for i in range(100000)}",
        Limit("max_sequence_items"),
    ),
    Attack(
        "matrix-comprehension",
        "lambda: [[0]*10000 for i in range(10000)]",
        Limit("max_retained_units"),
    ),
    Attack(
        "dict-comprehension-bomb",
        "lambda: {i: [0]*10000 for i in range(10000)}",
        Limit("max_retained_units"),
    ),
    Attack(
        "result-too-many-values",
        "lambda: [[0]*10000, [0]*10000]",
        Limit("max_result_values"),
    ),
    # -- CPU bombs -------------------------------------------------------------------------
    Attack(
        "nested-comprehension-product",
        "lambda: [i*j for i in range(10000) for j in range(10000)]",
        Limit("max_iterations"),
    ),
    Attack(
        "triple-nested-comprehension",
        "lambda: [1 for i in range(100) for j in range(100) for k in range(100)]",
        Limit("max_iterations"),
    ),
    Attack(
        "four-deep-comprehensions",
        "lambda: [[[[i for i in range(50)] for j in range(50)] for k in range(50)]"
        " for m in range(50)]",
        Limit("max_iterations"),
    ),
    Attack("sum-range-10-12", "lambda: sum(range(10**12))", Limit("max_iterations")),
    Attack("sorted-range-10-9", "lambda: sorted(range(10**9))", Limit("max_iterations")),
    Attack("min-range-10-9", "lambda: min(range(10**9))", Limit("max_iterations")),
    Attack("range-slice-10-18", "lambda: range(10**18)[::10**13]", Limit("max_iterations")),
    Attack(
        "hash-collision-set",
        "lambda: {i * (2**61 - 1) for i in range(50000)}",
        Limit("max_seconds"),
    ),
    Attack(
        "sorted-two-byte-strings-bomb",
        _UCS2_SORT_BOMB,
        Limit("max_comparison_units"),
    ),
    # -- ordinary failures -------------------------------------------------------------------------
    Attack("zero-division", "lambda: 1/0", Error("ZeroDivisionError")),
    Attack("str-plus-int", "lambda: 'a' + 1", Error("TypeError")),
    Attack("missing-key", "lambda **kw: kw['missing']", Error("KeyError")),
    Attack("missing-parameter", "lambda x: x", Error("MissingParameter")),
    Attack("int-of-non-number", "lambda: int('x')", Error("ValueError")),
    Attack("int-of-5000-digits", "lambda: int('9' * 5000)", Error("ValueError")),
    Attack("sqrt-of-negative", "lambda: sqrt(-1)", Error("ValueError")),
    Attack("complex-power", "lambda: (-8) ** 0.5", Error("ValueError")),
    Attack("float-power-overflow", "lambda: 2.0 ** 10000", Error("OverflowError")),
    Attack("exp-overflow", "lambda: exp(1000)", Error("OverflowError")),
    Attack("range-of-huge-int", "lambda: range(2**4000)", Error("OverflowError")),
    Attack("index-out-of-range", "lambda: [1][5]", Error("IndexError")),
    Attack("unhashable-subscript", "lambda: {'a': 1}[[1]]", Error("TypeError")),
    Attack("mixed-comparison", "lambda: 1 < 'a'", Error("TypeError")),
    Attack("range-result", "lambda: range(10)", Error("TypeError")),
    Attack("generator-result", "lambda: (i for i in range(10))", Error("TypeError")),
]

DEFUSED: list[Attack] = [
    Attack("round-float-to-minus-10-9", "lambda: round(1.5, -10**9)", Value(0.0)),
    Attack("round-int-to-minus-10-9", "lambda: round(7, -10**9)", Value(0)),
    Attack(
        "round-json-true-to-minus-10-9",
        "lambda **kw: round(kw.get('flag', 0), -10**9)",
        Value(0),
        params={"flag": True},
    ),
    Attack("parentheses-200-deep", "lambda: " + _nest("(", "1", ")", 200), Value(1)),
    Attack("math-bold-sqrt", "lambda: 𝐬𝐪𝐫𝐭(4)", Value(2.0)),
    Attack("dunder-as-string-key", "lambda **kw: kw.get('__class__', 1)", Value(1)),
    Attack("minus-one-to-10-18", "lambda: (-1) ** (10**18)", Value(1)),
    Attack("long-substring-search", "lambda: 'a'*50000 + 'b' in 'a'*100000", Value(False)),
    Attack("string-at-the-limit", "lambda: len('a' * 100000)", Value(100000)),
]


# -- observing one expression ---------------------------------------------------------------
def observe(source: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Compile and invoke ``source``; describe what happened as a JSON-able dict."""
    start = time.perf_counter()
    outcome = _outcome(source, params or {})
    outcome["seconds"] = time.perf_counter() - start
    return outcome


def _outcome(source: str, params: dict[str, Any]) -> dict[str, Any]:
    try:
        compiled = compile_expression("lambda", source)
    except ExpressionRejected as error:
        return {
            "phase": "compile",
            "kind": "rejected",
            "reason": error.reason,
            "line": error.line,
            "column": error.column,
        }
    except Exception as error:
        return _unexpected("compile", error)
    try:
        value = compiled.invoke(params)
    except EvaluationLimitExceeded as error:
        return {"phase": "invoke", "kind": "limit", "limit": error.limit, "detail": error.detail}
    except EvaluationError as error:
        return {"phase": "invoke", "kind": "error", "error_type": error.error_type}
    except Exception as error:
        return _unexpected("invoke", error)
    text = repr(value)
    return {
        "phase": "invoke",
        "kind": "value",
        "value": value if len(text) <= 200 else None,
        "value_repr": text[:200],
    }


def _unexpected(phase: str, error: Exception) -> dict[str, Any]:
    kind = "other-kernel-error" if isinstance(error, KernelError) else "crash"
    return {"phase": phase, "kind": kind, "type": type(error).__name__, "message": str(error)[:200]}


def check(attack: Attack, outcome: dict[str, Any]) -> None:
    """Assert that ``outcome`` is what ``attack.expect`` says."""
    expect = attack.expect
    where = f"{attack.id}: {attack.source[:80]!r} gave {outcome}"
    if isinstance(expect, Rejected):
        assert outcome["kind"] == "rejected", where
        assert re.search(expect.match, outcome["reason"]), where
        line, column = outcome["line"], outcome["column"]
        if isinstance(expect.at, tuple):
            assert (line, column) == expect.at, where
        elif expect.at == "set":
            lines = attack.source.splitlines()
            assert isinstance(line, int) and isinstance(column, int), where
            assert 1 <= line <= len(lines) and 1 <= column <= len(lines[line - 1]) + 1, where
        elif expect.at is None:
            assert (line, column) == (None, None), where
    elif isinstance(expect, Limit):
        assert outcome["kind"] == "limit", where
        assert expect.name in ("*", outcome["limit"]), where
    elif isinstance(expect, Error):
        assert outcome["kind"] == "error", where
        assert outcome["error_type"] == expect.error_type, where
    else:
        assert outcome["kind"] == "value", where
        assert type(outcome["value"]) is type(expect.value), where
        assert outcome["value"] == expect.value, where
    if outcome["kind"] == "rejected":
        assert outcome["phase"] == "compile", where
    else:
        assert outcome["phase"] == "invoke", where


# -- the child process ---------------------------------------------------------------------
_CHILD = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("attack_battery", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module
spec.loader.exec_module(module)
json.dump(module.child_main(json.load(sys.stdin)), sys.stdout)
"""

_SANITY_SOURCE = "lambda x, y=2, **kw: x * y + sum(i for i in range(x)) + len(sorted(kw))"


def child_main(request: dict[str, Any]) -> dict[str, Any]:
    """Run in the child: observe every entry, then check that the kernel is still sound."""
    # Warm up first, so lazy imports of the kernel itself are not counted as side effects.
    observe("lambda **kw: [i * 2 for i in range(3)] + [1/0]")
    reference = compile_expression("lambda", _SANITY_SOURCE)
    before = set(sys.modules)
    results = [observe(source, params) for source, params in request["entries"]]
    new_modules = sorted(set(sys.modules) - before)
    fresh = compile_expression("lambda", "lambda **kw: kw.get('x', 0) * kw.get('y', 0)")
    return {
        "results": results,
        "new_modules": new_modules,
        "reference": reference.invoke({"x": 5, "a": 1, "b": 2}),
        "fresh": fresh.invoke({"x": 5, "y": 7}),
    }


def run_in_child(attacks: list[Attack], timeout: float, cwd: Any = None) -> dict[str, Any] | None:
    """Observe ``attacks`` in a fresh interpreter; None if it did not finish in ``timeout``."""
    request = {"entries": [[attack.source, attack.params] for attack in attacks]}
    try:
        completed = subprocess.run(
            [sys.executable, "-c", _CHILD, __file__],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=cwd,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout)  # type: ignore[no-any-return]


def _observe_isolated(attack: Attack, timeout: float = 10.0) -> dict[str, Any]:
    report = run_in_child([attack], timeout)
    if report is None:
        pytest.fail(f"{attack.id}: no answer within {timeout} s: {attack.bug}")
    outcome = report["results"][0]
    assert outcome["seconds"] < MAX_SECONDS_PER_EXPRESSION, f"{attack.id} took {outcome}"
    return outcome  # type: ignore[no-any-return]


def _params(attacks: list[Attack]) -> list[Any]:
    return [
        pytest.param(
            attack,
            id=attack.id,
            marks=[pytest.mark.xfail(strict=True, reason=attack.bug)] if attack.bug else [],
        )
        for attack in attacks
    ]


def _healthy(attacks: list[Attack]) -> list[Attack]:
    return [attack for attack in attacks if attack.bug is None]


# -- the tests -----------------------------------------------------------------------------
def test_battery_is_large_and_well_formed() -> None:
    assert len(ATTACKS) >= 45
    ids = [attack.id for attack in ATTACKS + DEFUSED]
    assert len(ids) == len(set(ids)), "ids must be unique"
    assert all(not isinstance(attack.expect, Value) for attack in ATTACKS)
    assert all(isinstance(attack.expect, Value) for attack in DEFUSED)


@pytest.mark.parametrize("attack", _params(ATTACKS))
def test_attack_is_stopped_by_a_typed_error(attack: Attack) -> None:
    outcome = _observe_isolated(attack) if attack.bug else observe(attack.source, attack.params)
    check(attack, outcome)


@pytest.mark.parametrize("attack", _params(DEFUSED))
def test_defused_expression_answers_correctly(attack: Attack) -> None:
    outcome = _observe_isolated(attack) if attack.bug else observe(attack.source, attack.params)
    check(attack, outcome)


def test_every_expression_finishes_within_a_second(tmp_path: Any) -> None:
    """The whole battery, once, in a child process that times each expression."""
    attacks = _healthy(ATTACKS) + _healthy(DEFUSED)
    report = run_in_child(attacks, timeout=60, cwd=tmp_path)
    assert report is not None, "the battery did not finish within 60 s"
    results = report["results"]
    assert len(results) == len(attacks)
    slow = {
        attack.id: round(outcome["seconds"], 3)
        for attack, outcome in zip(attacks, results, strict=True)
        if outcome["seconds"] >= MAX_SECONDS_PER_EXPRESSION
    }
    assert not slow, f"expressions over {MAX_SECONDS_PER_EXPRESSION} s: {slow}"
    for attack, outcome in zip(attacks, results, strict=True):
        check(attack, outcome)  # the same typed errors in a fresh interpreter
    # nothing was imported or written as a side effect, and the kernel still works
    assert set(report["new_modules"]) <= PARSER_IMPORTS, report["new_modules"]
    assert list(tmp_path.iterdir()) == []
    assert report["reference"] == 5 * 2 + sum(range(5)) + 2
    assert report["fresh"] == 35


def _generated_function(compiled: CompiledExpression) -> types.FunctionType:
    """The function built by codegen (wrapped in a closure when the lambda has loops)."""
    function = compiled._function
    if isinstance(function, types.FunctionType) and function.__name__ == "substrate":
        return function
    cells = [cell.cell_contents for cell in function.__closure__ or ()]
    found = [c for c in cells if isinstance(c, types.FunctionType) and c.__name__ == "substrate"]
    assert len(found) == 1, cells
    return found[0]


@pytest.mark.parametrize(
    "source",
    [
        "lambda **kw: kw.get('x', 0) * kw.get('y', 0)",
        "lambda x, y=0: [i * x for i in range(y)]",
    ],
    ids=["plain", "with-comprehension"],
)
def test_compiled_lambdas_run_without_builtins(source: str) -> None:
    function = _generated_function(compile_expression("lambda", source))
    assert function.__globals__["__builtins__"] == {}
    assert function.__builtins__ == {}


def test_kernel_still_sound_after_the_battery() -> None:
    """Run the battery in this process, then check nothing shared was corrupted."""
    reference = compile_expression("lambda", _SANITY_SOURCE)
    namespace = _generated_function(reference).__globals__
    snapshot = dict(namespace)
    modules = set(sys.modules)
    for attack in _healthy(ATTACKS) + _healthy(DEFUSED):
        observe(attack.source, attack.params)
    assert set(namespace) == set(snapshot)
    assert all(namespace[name] is value for name, value in snapshot.items())
    assert namespace["__builtins__"] == {}
    assert set(sys.modules) - modules <= PARSER_IMPORTS
    assert reference.invoke({"x": 5, "a": 1, "b": 2}) == 5 * 2 + sum(range(5)) + 2
    assert reference.invoke({"x": 3, "y": 4}) == 3 * 4 + 3
    fresh = compile_expression("lambda", "lambda **kw: kw.get('x', 0) * kw.get('y', 0)")
    assert fresh.invoke({"x": 5, "y": 7}) == 35
    squares = compile_expression("lambda", "lambda n: {str(i): i * i for i in range(n)}")
    assert squares.invoke({"n": 4}) == {"0": 0, "1": 1, "2": 4, "3": 9}
    with pytest.raises(EvaluationLimitExceeded) as stopped:
        compile_expression("lambda", "lambda: 9**9**9").invoke({})
    assert stopped.value.limit == "max_int_bits"
