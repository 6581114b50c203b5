"""Property tests for the kernel: the promises a user of ButterflyFX relies on.

1. An expression's identity does not depend on how it was typed.
2. Different expressions never share an identity.
3. Dividing a substrate into its nine dimensions and multiplying them back is lossless,
   and dimensions that were tampered with are refused.
4. The product of substrates has the product of their values, and a stable identity.
5. Invoking any accepted expression gives a JSON value or a typed error, nothing else.
6. Substrate ids are written and read back without loss.

Expressions are generated as small syntax trees (plain tuples, see ``Node``) and written
out by ``Renderer``: once in a plain style, and again with random spacing, line breaks,
comments, redundant parentheses and quote styles.
"""

from __future__ import annotations

import ast
import copy
import json
import math
import operator
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import reduce
from typing import Any, NamedTuple

import pytest
from hypothesis import HealthCheck, assume, event, example, given, reject, settings
from hypothesis import strategies as st

from butterflyfx.kernel import (
    EvaluationError,
    EvaluationLimitExceeded,
    ExpressionRejected,
    InconsistentDimensions,
    InvalidSubstrateId,
    KernelError,
    Substrate,
    canonical_form,
    compile_expression,
    divide,
    format_id,
    multiply,
    parse_id,
    substrate_identity,
)
from butterflyfx.kernel.expressions.lambda_lang.vocabulary import FUNCTION_KEYWORDS

# ---------------------------------------------------------------------------------------
# Expression trees
#
# A node is a tuple whose first item names its kind:
#   ("num", value)                      a non-negative int or float literal
#   ("str", text)                       a string literal
#   ("const", True | False | None)
#   ("name", ident)                     a named parameter, a loop variable, or kw itself
#   ("get", kw, key, default | None)    kw.get('key', default)
#   ("sub", kw, key)                    kw['key']
#   ("bin", op, left, right)            + - * / // % ** << >> & | ^
#   ("cmp", op, left, right)            < <= == != > >= in, not in
#   ("bool", "and" | "or", left, right)
#   ("not", operand)
#   ("unary", "-" | "+" | "~", operand)
#   ("if", test, body, orelse)          body if test else orelse
#   ("call", function, args, keywords)  keywords: ((name, node), ...)
#   ("list" | "tuple" | "set", items)
#   ("dict", ((key, value), ...))
#   ("comp", "list" | "set" | "gen" | "dict", elt, generators)
#        elt is (key, value) for "dict"; generators: ((var, iterable, conditions), ...)
#   ("index", value, index)             value[index]
#   ("slice", value, lower | None, upper | None)
# ---------------------------------------------------------------------------------------

Node = tuple[Any, ...]

NAMES = ("x", "y", "z", "n")
VARKW_NAMES = ("kw", "params", "p")
LOOP_NAMES = ("i", "j", "x")  # "x" can shadow a parameter of the same name
LEAF_SHAPES = ("sub", "whole_kw", "const")  # shapes that only ever appear as leaves


class Signature(NamedTuple):
    """The lambda's parameters: (name, default literal or None if required), and **kw."""

    params: tuple[tuple[str, Node | None], ...]
    varkw: str | None


class Lam(NamedTuple):
    signature: Signature
    body: Node


@dataclass(frozen=True)
class Grammar:
    """Which nodes a generated expression may contain."""

    numbers: st.SearchStrategy[int | float]
    keys: st.SearchStrategy[str]
    shapes: tuple[str, ...]
    binops: tuple[str, ...] = ()
    compares: tuple[str, ...] = ()
    unary: tuple[str, ...] = ("-",)
    functions: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    strings: st.SearchStrategy[str] | None = None
    optional_get_default: bool = False
    extra_leaves: tuple[Node, ...] = ()


_identity_numbers = st.one_of(
    st.integers(0, 10**6),
    st.integers(0, 2**80),
    st.floats(0, 1e300, allow_nan=False, allow_infinity=False),
)

#: Property 1 and 2: arithmetic over kw.get, named parameters and literals.
IDENTITY = Grammar(
    numbers=_identity_numbers,
    keys=st.one_of(st.sampled_from(NAMES), st.text(max_size=6)),
    shapes=("bin", "bin", "cmp", "if", "call", "unary", "bool", "not"),
    binops=("+", "-", "*", "/", "//", "%"),
    compares=("<", "<=", "==", "!=", ">", ">="),
    functions={"min": (2, 3), "max": (2, 3), "abs": (1, 1)},
    strings=st.text(max_size=6),
    optional_get_default=True,
)

#: Property 4: numeric factors whose products stay far from every limit. Floats are
#: multiples of 1/1000, so no division by a tiny float overflows to infinity.
_product_numbers = st.one_of(st.integers(0, 1000), st.integers(0, 10**6).map(lambda n: n / 1000))
PRODUCT = Grammar(
    numbers=_product_numbers,
    keys=st.sampled_from(NAMES),
    shapes=("bin", "bin", "cmp", "if", "bool", "call", "unary", "sum_range"),
    binops=("+", "-", "*", "/", "//", "%"),
    compares=("<", "<=", "==", "!=", ">", ">="),
    functions={"min": (2, 3), "max": (2, 3), "abs": (1, 1)},
)

#: Property 5: everything the language admits, and values chosen to hit every limit.
_SPECIAL_LEAVES: tuple[Node, ...] = (
    ("call", "float", (("str", "nan"),), ()),
    ("call", "float", (("str", "inf"),), ()),
    ("call", "float", (("str", "-inf"),), ()),
    ("bin", "*", ("num", 1e308), ("num", 10)),
    ("call", "sqrt", (("unary", "-", ("num", 1)),), ()),
    ("bin", "**", ("num", 10), ("num", 400)),
    ("bin", "**", ("num", 2), ("num", 5000)),
    ("bin", "/", ("num", 1), ("num", 0)),
    ("call", "range", (("num", 100_000),), ()),
    ("bin", "*", ("str", "ab"), ("num", 60_000)),
    ("bin", "*", ("list", (("num", 0),)), ("num", 10_000)),
)
BROAD = Grammar(
    numbers=st.one_of(
        st.integers(0, 12),
        st.integers(0, 2**70),
        st.sampled_from([10**5, 1e308, 1e-308, 5e-324, 0.1, 2.5, 4096]),
        st.floats(0, allow_nan=False, allow_infinity=False),
    ),
    keys=st.one_of(st.sampled_from(NAMES), st.text(max_size=3)),
    shapes=tuple(
        "bin bin cmp if call call unary bool not list tuple set dict comp index slice"
        " sub whole_kw const".split()
    ),
    binops=("+", "-", "*", "/", "//", "%", "**", "<<", ">>", "&", "|", "^"),
    compares=("<", "<=", "==", "!=", ">", ">=", "in", "not in"),
    unary=("-", "+", "~"),
    functions={name: (0, 3) for name in FUNCTION_KEYWORDS},
    strings=st.one_of(
        st.text(max_size=5), st.sampled_from(["nan", "inf", "-inf", "1e5", "12", "0x1F"])
    ),
    optional_get_default=True,
    extra_leaves=_SPECIAL_LEAVES,
)


def _literals(grammar: Grammar) -> st.SearchStrategy[Node]:
    """Literal nodes usable as a parameter default or a kw.get default."""
    numbers = grammar.numbers.map(lambda v: ("num", v))
    options = [numbers, numbers.map(lambda node: ("unary", "-", node))]
    if grammar.strings is not None:
        options.append(grammar.strings.map(lambda s: ("str", s)))
    return st.one_of(options)


def _leaves(
    grammar: Grammar, sig: Signature, loop_vars: tuple[str, ...]
) -> st.SearchStrategy[Node]:
    options: list[st.SearchStrategy[Node]] = [grammar.numbers.map(lambda v: ("num", v))]
    names = tuple(dict.fromkeys([name for name, _ in sig.params] + list(loop_vars)))
    if names:
        options.append(st.sampled_from(names).map(lambda name: ("name", name)))
    if sig.varkw is not None:
        varkw = sig.varkw
        defaults = _literals(grammar)
        if grammar.optional_get_default:
            defaults = st.one_of(st.none(), defaults)
        options.append(
            st.tuples(st.just("get"), st.just(varkw), grammar.keys, defaults),
        )
        if "sub" in grammar.shapes:
            options.append(st.tuples(st.just("sub"), st.just(varkw), grammar.keys))
        if "whole_kw" in grammar.shapes:
            options.append(st.just(("name", varkw)))
    if grammar.strings is not None:
        options.append(grammar.strings.map(lambda s: ("str", s)))
    if "const" in grammar.shapes:
        options.append(st.sampled_from([True, False, None]).map(lambda v: ("const", v)))
    if grammar.extra_leaves:
        options.append(st.sampled_from(grammar.extra_leaves))
    return st.one_of(options)


@st.composite
def trees(
    draw: st.DrawFn,
    grammar: Grammar,
    sig: Signature,
    depth: int,
    loop_vars: tuple[str, ...] = (),
) -> Node:
    """A random expression tree of at most ``depth`` levels of operators."""
    kinds = ["leaf"] + ([k for k in grammar.shapes if k not in LEAF_SHAPES] if depth else [])
    kind = draw(st.sampled_from(kinds))

    def sub(extra: tuple[str, ...] = ()) -> Node:
        return draw(trees(grammar, sig, depth - 1, loop_vars + extra))

    if kind == "leaf":
        return draw(_leaves(grammar, sig, loop_vars))
    if kind == "bin":
        op, left = draw(st.sampled_from(grammar.binops)), sub()
        if op == "%" and left[0] == "str":
            op = "+"  # 'text' % ... is refused: %-formatting of strings is not allowed
        return ("bin", op, left, sub())
    if kind == "cmp":
        return ("cmp", draw(st.sampled_from(grammar.compares)), sub(), sub())
    if kind == "bool":
        return ("bool", draw(st.sampled_from(["and", "or"])), sub(), sub())
    if kind == "not":
        return ("not", sub())
    if kind == "unary":
        return ("unary", draw(st.sampled_from(grammar.unary)), sub())
    if kind == "if":
        return ("if", sub(), sub(), sub())
    if kind == "call":
        name = draw(st.sampled_from(sorted(grammar.functions)))
        low, high = grammar.functions[name]
        args = tuple(sub() for _ in range(draw(st.integers(low, high))))
        keywords: tuple[tuple[str, Node], ...] = ()
        if grammar is BROAD and FUNCTION_KEYWORDS[name] and draw(st.booleans()):
            keywords = ((draw(st.sampled_from(sorted(FUNCTION_KEYWORDS[name]))), sub()),)
        return ("call", name, args, keywords)
    if kind == "sum_range":
        # sum(<elt> for <var> in range(k)): a loop whose variable may shadow a parameter
        var = draw(st.sampled_from(LOOP_NAMES))
        iterable = ("call", "range", (("num", draw(st.integers(0, 4))),), ())
        return ("call", "sum", (("comp", "gen", sub((var,)), ((var, iterable, ()),)),), ())
    if kind in ("list", "tuple"):
        return (kind, tuple(sub() for _ in range(draw(st.integers(0, 3)))))
    if kind == "set":
        return ("set", tuple(sub() for _ in range(draw(st.integers(1, 3)))))
    if kind == "dict":
        return ("dict", tuple((sub(), sub()) for _ in range(draw(st.integers(0, 3)))))
    if kind == "comp":
        comp = draw(st.sampled_from(["list", "set", "gen", "dict"]))
        generators = []
        bound: tuple[str, ...] = ()
        for _ in range(draw(st.integers(1, 2))):
            var = draw(st.sampled_from(LOOP_NAMES))
            iterable = draw(
                st.one_of(
                    st.integers(0, 300).map(lambda k: ("call", "range", (("num", k),), ())),
                    st.just(None),
                )
            )
            if iterable is None:
                iterable = sub(bound)
            bound += (var,)
            conditions = tuple(sub(bound) for _ in range(draw(st.integers(0, 1))))
            generators.append((var, iterable, conditions))
        elt = (sub(bound), sub(bound)) if comp == "dict" else sub(bound)
        return ("comp", comp, elt, tuple(generators))
    if kind == "index":
        return ("index", sub(), sub())
    if kind == "slice":
        parts = [draw(st.one_of(st.none(), st.just(0))) for _ in range(2)]
        lower, upper = (None if part is None else sub() for part in parts)
        return ("slice", sub(), lower, upper)
    raise AssertionError(kind)  # pragma: no cover


@st.composite
def signatures(
    draw: st.DrawFn, defaults: st.SearchStrategy[Node], forms: tuple[str, ...]
) -> Signature:
    """``lambda **kw`` ("varkw"), ``lambda x, y=0`` ("named"), ``lambda x, **kw`` ("mixed")."""
    form = draw(st.sampled_from(forms))
    if form == "varkw":
        return Signature((), draw(st.sampled_from(VARKW_NAMES)))
    names = draw(
        st.lists(
            st.sampled_from(NAMES), unique=True, min_size=1 if form == "mixed" else 0, max_size=3
        )
    )
    required = draw(st.integers(0, len(names)))
    params = []
    for position, name in enumerate(names):
        params.append((name, None if position < required else draw(defaults)))
    varkw = draw(st.sampled_from(VARKW_NAMES)) if form == "mixed" else None
    return Signature(tuple(params), varkw)


@st.composite
def lambdas(
    draw: st.DrawFn,
    grammar: Grammar,
    depth: int = 3,
    forms: tuple[str, ...] = ("varkw", "named", "mixed"),
) -> Lam:
    sig = draw(signatures(_literals(grammar), forms))
    return Lam(sig, draw(trees(grammar, sig, depth)))


# ---------------------------------------------------------------------------------------
# Writing trees out as source text
# ---------------------------------------------------------------------------------------

_PRECEDENCE = {
    "if": 1, "or": 2, "and": 3, "not": 4, "cmp": 5, "|": 6, "^": 7, "&": 8, "<<": 9, ">>": 9,
    "+": 10, "-": 10, "*": 11, "/": 11, "//": 11, "%": 11, "unary": 12, "**": 13,
}  # fmt: skip
_ATOM = 15
_COMMENTS = ("", "note", "x + 1", "')( \" ]", "λ café ☕", "# again", "lambda: 0", "trailing \\")


def _precedence(node: Node) -> int:
    kind = node[0]
    if kind in ("bin", "bool"):
        return _PRECEDENCE[node[1]]
    if kind in ("cmp", "not", "unary", "if"):
        return _PRECEDENCE[kind]
    return _ATOM


class Renderer:
    """Writes a tree as Python source: plainly (``rnd is None``) or in a random surface style.

    Every styled choice leaves the syntax tree unchanged: whitespace and tabs between
    tokens, line breaks and ``# comments`` inside brackets, backslash continuations,
    redundant parentheses, single/double/triple quotes, ``\\x`` escapes, and string
    literals split into adjacent pieces.
    """

    def __init__(self, rnd: random.Random | None = None) -> None:
        self.rnd = rnd

    # Hypothesis shrinks a Random towards 0.0 and the first choice: both mean "plain".
    def maybe(self, probability: float) -> bool:
        return self.rnd is not None and self.rnd.random() > 1 - probability

    def gap(self, depth: int, plain: str = "", *, required: bool = False) -> str:
        """Whitespace between two tokens; ``depth`` > 0 means inside brackets."""
        rnd = self.rnd
        if rnd is None:
            return " " if required else plain
        roll = rnd.random()
        if depth > 0 and roll > 0.85:
            comment = rnd.choice(_COMMENTS)
            return rnd.choice(
                ["\n", "\n    ", "\n\t", "\n\n  ", f"  # {comment}\n", f"\t#{comment}\n   "]
            )
        if roll > 0.82:
            return " \\\n  "
        if required:
            return rnd.choice([" ", "  ", "\t", " \t"])
        return rnd.choice([plain, "", " ", "  ", "\t"])

    # -- literals -----------------------------------------------------------------------
    def quote(self, text: str) -> str:
        rnd = self.rnd
        q = "'" if rnd is None else rnd.choice(["'", '"', "'''", '"""'])
        out = []
        for ch in text:
            if ch == "\\" or ch == q[0]:
                out.append("\\" + ch)
            elif ch == "\n":
                out.append("\\n")
            elif not ch.isprintable():
                code = ord(ch)
                out.append(
                    f"\\x{code:02x}" if code < 0x100 else
                    f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
                )  # fmt: skip
            elif ch.isascii() and ch.isalnum() and self.maybe(0.1):
                out.append(f"\\x{ord(ch):02x}")
            else:
                out.append(ch)
        return q + "".join(out) + q

    def string(self, text: str, depth: int) -> str:
        if len(text) >= 2 and self.maybe(0.2):  # 'ab' 'c' is one literal 'abc'
            assert self.rnd is not None
            cut = self.rnd.randint(1, len(text) - 1)
            return self.quote(text[:cut]) + self.gap(depth, " ") + self.quote(text[cut:])
        return self.quote(text)

    @staticmethod
    def number(value: int | float) -> str:
        return repr(value)

    # -- expressions --------------------------------------------------------------------
    def expr(self, node: Node, depth: int, need: int = 0, extra: int = 2) -> str:
        """``node`` as text, parenthesized if its precedence is below ``need``, and with up to
        ``extra`` redundant pairs of parentheses at random."""
        redundant = extra > 0 and self.maybe(0.15)
        if _precedence(node) >= need and not redundant:
            return self.bare(node, depth)
        inner = depth + 1
        body = self.expr(node, inner, 0, extra - redundant)
        return "(" + self.gap(inner) + body + self.gap(inner) + ")"

    def items(self, nodes: list[str], depth: int, trailing: bool = False) -> str:
        text = ("," + self.gap(depth, " ")).join(nodes)
        if trailing or (nodes and self.maybe(0.2)):
            text += ","
        return self.gap(depth) + text + self.gap(depth)

    def bare(self, node: Node, depth: int) -> str:
        kind = node[0]
        gap, req = self.gap, (lambda: self.gap(depth, required=True))
        inner = depth + 1
        if kind == "num":
            return self.number(node[1])
        if kind == "str":
            return self.string(node[1], depth)
        if kind == "const":
            return repr(node[1])
        if kind == "name":
            return str(node[1])
        if kind == "get":
            _, varkw, key, default = node
            args = [self.string(key, inner)]
            if default is not None:
                args.append(self.expr(default, inner))
            return f"{varkw}.get" + gap(depth) + "(" + self.items(args, inner) + ")"
        if kind == "sub":
            _, varkw, key = node
            return (
                varkw + gap(depth) + "[" + gap(inner) + self.string(key, inner) + gap(inner) + "]"
            )
        if kind == "bin":
            _, op, left, right = node
            level = _PRECEDENCE[op]
            left_need, right_need = (
                (_ATOM - 1, _PRECEDENCE["unary"]) if op == "**" else (level, level + 1)
            )
            return (
                self.expr(left, depth, left_need) + gap(depth, " ") + op + gap(depth, " ")
                + self.expr(right, depth, right_need)
            )  # fmt: skip
        if kind == "cmp":
            _, op, left, right = node
            spaced = op[0].isalpha()
            before = req() if spaced else gap(depth, " ")
            after = req() if spaced else gap(depth, " ")
            word = op if op != "not in" else "not" + req() + "in"
            return self.expr(left, depth, 6) + before + word + after + self.expr(right, depth, 6)
        if kind == "bool":
            _, op, left, right = node
            level = _PRECEDENCE[op] + 1
            return (
                self.expr(left, depth, level) + req() + op + req() + self.expr(right, depth, level)
            )
        if kind == "not":
            return "not" + req() + self.expr(node[1], depth, _PRECEDENCE["not"])
        if kind == "unary":
            return node[1] + gap(depth) + self.expr(node[2], depth, _PRECEDENCE["unary"])
        if kind == "if":
            _, test, body, orelse = node
            return (
                self.expr(body, depth, 2) + req() + "if" + req() + self.expr(test, depth, 2)
                + req() + "else" + req() + self.expr(orelse, depth, 1)
            )  # fmt: skip
        if kind == "call":
            _, name, args, keywords = node
            parts = [self.expr(arg, inner) for arg in args]
            parts += [k + gap(inner) + "=" + gap(inner) + self.expr(v, inner) for k, v in keywords]
            return name + gap(depth) + "(" + self.items(parts, inner) + ")"
        if kind == "list":
            return "[" + self.items([self.expr(item, inner) for item in node[1]], inner) + "]"
        if kind == "tuple":
            items = [self.expr(item, inner) for item in node[1]]
            return "(" + self.items(items, inner, trailing=len(items) == 1) + ")"
        if kind == "set":
            return "{" + self.items([self.expr(item, inner) for item in node[1]], inner) + "}"
        if kind == "dict":
            pairs = [
                self.expr(k, inner, 2) + gap(inner) + ":" + gap(inner, " ") + self.expr(v, inner)
                for k, v in node[1]
            ]
            return "{" + self.items(pairs, inner) + "}"
        if kind == "comp":
            _, comp, elt, generators = node
            opening, closing = {"list": "[]", "set": "{}", "gen": "()", "dict": "{}"}[comp]
            if comp == "dict":
                head = self.expr(elt[0], inner, 2) + gap(inner) + ":" + gap(inner, " ")
                head += self.expr(elt[1], inner, 2)
            else:
                head = self.expr(elt, inner, 2)
            text = gap(inner) + head
            for var, iterable, conditions in generators:
                reqi = self.gap(inner, required=True)
                text += reqi + "for" + reqi + var + reqi + "in" + reqi
                text += self.expr(iterable, inner, 2)
                for condition in conditions:
                    text += reqi + "if" + reqi + self.expr(condition, inner, 2)
            return opening + text + gap(inner) + closing
        if kind == "index":
            _, value, index = node
            return (
                self.expr(value, depth, _ATOM) + gap(depth) + "[" + gap(inner)
                + self.expr(index, inner) + gap(inner) + "]"
            )  # fmt: skip
        if kind == "slice":
            _, value, lower, upper = node
            bounds = [
                "" if part is None else gap(inner) + self.expr(part, inner) + gap(inner)
                for part in (lower, upper)
            ]
            return self.expr(value, depth, _ATOM) + gap(depth) + "[" + ":".join(bounds) + "]"
        raise AssertionError(kind)  # pragma: no cover

    def lambda_(self, lam: Lam) -> str:
        wrapped = self.maybe(0.3)
        depth = 1 if wrapped else 0
        gap = self.gap
        params = []
        for name, default in lam.signature.params:
            if default is None:
                params.append(name)
            else:
                params.append(name + gap(depth) + "=" + gap(depth) + self.expr(default, depth))
        if lam.signature.varkw is not None:
            params.append("**" + gap(depth) + lam.signature.varkw)
        head = "lambda"
        if params:
            head += gap(depth, required=True) + ("," + gap(depth, " ")).join(params)
        text = head + gap(depth) + ":" + gap(depth, " ") + self.expr(lam.body, depth)
        if wrapped:
            text = "(" + gap(depth) + text + gap(depth) + ")"
        if self.maybe(0.2):
            text = self.rnd.choice(["\n", "# a comment line\n", "\n\n"]) + text  # type: ignore[union-attr]
        if self.maybe(0.2):
            text += self.rnd.choice(["\n", "  # done", "\t# done\n", " \n"])  # type: ignore[union-attr]
        return text


def render(lam: Lam, rnd: random.Random | None = None) -> str:
    return Renderer(rnd).lambda_(lam)


# ---------------------------------------------------------------------------------------
# JSON values, constants and substrates
# ---------------------------------------------------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
metadata_dicts = st.dictionaries(st.text(max_size=10), json_values, max_size=5)


def reordered(value: Any, rnd: random.Random) -> Any:
    """The same JSON value with every object's keys in a random order."""
    if isinstance(value, dict):
        items = list(value.items())
        rnd.shuffle(items)
        return {key: reordered(item, rnd) for key, item in items}
    if isinstance(value, list):
        return [reordered(item, rnd) for item in value]
    return value


def render_json(value: Any, rnd: random.Random) -> str:
    """``value`` as JSON text with random key order, indentation, separators and escapes."""
    text = json.dumps(
        reordered(value, rnd),
        indent=rnd.choice([None, 0, 2, "\t"]),
        separators=rnd.choice([(",", ":"), (", ", ": "), (" ,", " : "), (",\n", ":\t")]),
        ensure_ascii=rnd.random() < 0.5,
    )
    return rnd.choice(["", " ", "\n", "\t", "\r\n"]) + text + rnd.choice(["", " ", "\n", "\t "])


# Timestamps are kept to the second, as the API writes them; any year a datetime can hold
# (years before 1000 once broke the round trip: test_early_timestamps_survive_the_round_trip).
timestamps = st.none() | st.datetimes(
    min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.just(UTC)
).map(lambda moment: moment.replace(microsecond=0))


@st.composite
def substrates(draw: st.DrawFn) -> Substrate:
    """A lambda or constant substrate, typed in a random style, with random metadata."""
    rnd = draw(st.randoms(use_true_random=False))
    if draw(st.booleans()):
        expression_type, code = "lambda", render(draw(lambdas(IDENTITY)), rnd)
    else:
        expression_type, code = "constant", render_json(draw(json_values), rnd)
    return Substrate.create(
        expression_type,
        code,
        draw(metadata_dicts),
        created_at=draw(timestamps),
        updated_at=draw(timestamps),
        version=draw(st.integers(1, 10**6)),
    )


def structure(expression_type: str, code: str) -> str:
    """What an expression *is*, independently of the kernel: its syntax tree or JSON value."""
    if expression_type == "lambda":
        return ast.dump(ast.parse(code, mode="eval").body)

    def tagged(value: Any) -> Any:
        if isinstance(value, dict):
            return ("dict", sorted((key, tagged(item)) for key, item in value.items()))
        if isinstance(value, list):
            return ("list", [tagged(item) for item in value])
        return (type(value).__name__, repr(value))

    return repr(tagged(json.loads(code)))


# ---------------------------------------------------------------------------------------
# 1. Identity is stable under re-formatting
# ---------------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(lam=lambdas(IDENTITY), rnd=st.randoms(use_true_random=False))
def test_identity_ignores_how_a_lambda_is_typed(lam: Lam, rnd: random.Random) -> None:
    """Spacing, tabs, line breaks and comments inside brackets, redundant parentheses and
    quote style are typing, not meaning: the substrate keeps the same id."""
    plain = render(lam)
    styled = render(lam, rnd)
    # the generator's own promise: both texts are the same Python expression
    assert structure("lambda", styled) == structure("lambda", plain), (plain, styled)
    assert canonical_form("lambda", styled) == canonical_form("lambda", plain)
    assert substrate_identity("lambda", styled) == substrate_identity("lambda", plain)
    assert (
        Substrate.create("lambda", styled).substrate_id
        == Substrate.create("lambda", plain).substrate_id
    )


@settings(max_examples=150, deadline=None)
@given(value=json_values, rnd=st.randoms(use_true_random=False))
def test_identity_ignores_json_key_order_and_whitespace(value: Any, rnd: random.Random) -> None:
    """A constant is its JSON value: key order, whitespace and escapes do not change its id,
    and invoking it gives the value back."""
    plain = json.dumps(value)
    styled = render_json(value, rnd)
    assert substrate_identity("constant", styled) == substrate_identity("constant", plain)
    assert compile_expression("constant", styled).invoke({}) == value


# ---------------------------------------------------------------------------------------
# 2. Distinct expressions have distinct ids
# ---------------------------------------------------------------------------------------


@st.composite
def expression_sources(draw: st.DrawFn) -> tuple[str, str]:
    rnd = draw(st.randoms(use_true_random=False))
    if draw(st.integers(0, 3)):
        return "lambda", render(draw(lambdas(IDENTITY, depth=2)), rnd)
    return "constant", render_json(draw(json_values), rnd)


class Corpus:
    """Every expression the next test has seen, kept across its examples, so that a few
    hundred of them are compared with each other, not only the few in one example."""

    def __init__(self) -> None:
        self.canonical_of: dict[tuple[str, str], tuple[str, str]] = {}  # structure -> canonical
        self.structure_of: dict[tuple[str, str], tuple[str, str, str]] = {}  # and back
        self.identity_of: dict[int, tuple[str, str]] = {}  # identity -> canonical

    def add(self, expression_type: str, code: str) -> None:
        key = (expression_type, structure(expression_type, code))
        canonical = (expression_type, canonical_form(expression_type, code))
        first_canonical = self.canonical_of.setdefault(key, canonical)
        assert first_canonical == canonical, f"one expression, two canonical forms: {code!r}"
        first = self.structure_of.setdefault(canonical, (*key, code))
        assert first[:2] == key, f"{first[2]!r} and {code!r} differ but share a canonical form"
        identity = substrate_identity(expression_type, code)
        seen = self.identity_of.setdefault(identity, canonical)
        assert seen == canonical, f"{format_id(identity)} is the id of both {seen} and {canonical}"


CORPUS = Corpus()


@settings(max_examples=200, deadline=None)
@given(batch=st.lists(expression_sources(), min_size=1, max_size=10))
def test_different_expressions_get_different_ids(batch: list[tuple[str, str]]) -> None:
    """Two different formulas (or JSON values) never share a canonical form, and two different
    canonical forms never share an id, over a corpus of several hundred expressions."""
    for expression_type, code in batch:
        CORPUS.add(expression_type, code)


# ---------------------------------------------------------------------------------------
# 3. divide / multiply round trip
# ---------------------------------------------------------------------------------------

#: The dimensions that follow from the substrate itself; Area and Frequency are facts.
CHECKED_DIMENSIONS = ("Void", "Identity", "Domain", "Length", "Volume", "System", "Complete")


def _assert_same_substrate(rebuilt: Substrate, original: Substrate) -> None:
    assert rebuilt.identity == original.identity
    assert rebuilt.expression_type == original.expression_type
    assert rebuilt.expression_code == original.expression_code
    assert canonical_form(rebuilt.expression_type, rebuilt.expression_code) == canonical_form(
        original.expression_type, original.expression_code
    )
    assert dict(rebuilt.metadata) == dict(original.metadata)
    assert rebuilt.created_at == original.created_at
    assert rebuilt.updated_at == original.updated_at
    assert rebuilt.version == original.version


@settings(max_examples=150, deadline=None)
@given(substrate=substrates())
def test_multiply_rebuilds_what_divide_took_apart(substrate: Substrate) -> None:
    """multiply(divide(s)) is s again, whether the dimensions are passed as objects or sent
    as JSON (as over HTTP) and posted back."""
    division = divide(substrate)
    assert len(division.dimensions) == 9
    _assert_same_substrate(multiply(division), substrate)
    posted = json.loads(json.dumps(division.to_dict(), allow_nan=False))
    _assert_same_substrate(multiply(posted["dimensions"]), substrate)


@example(year=999)
@settings(max_examples=20, deadline=None)
@given(year=st.integers(1, 999))
def test_early_timestamps_survive_the_round_trip(year: int) -> None:
    """A substrate created (or updated) in any year a datetime can hold divides and multiplies
    back to itself."""
    substrate = Substrate.create("constant", "1", created_at=datetime(year, 1, 1, tzinfo=UTC))
    _assert_same_substrate(multiply(divide(substrate)), substrate)


def _changed(value: Any, rnd: random.Random) -> Any:
    """A value like ``value`` but different: a nudged number, a longer string, one more item."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + rnd.choice([-1, 1, 2**32])
    if isinstance(value, float):
        return value + 1.0 if abs(value) < 2**52 else -value if value else 1.0
    if isinstance(value, str):
        return value + rnd.choice(["0", "x", " ", "Z"]) if value else "0x0"
    if isinstance(value, list):
        if value and rnd.random() < 0.5:
            position = rnd.randrange(len(value))
            return value[:position] + [_changed(value[position], rnd)] + value[position + 1 :]
        return [*value, 0]
    if isinstance(value, dict):
        if value and rnd.random() < 0.5:
            key = rnd.choice(sorted(value))
            return {**value, key: _changed(value[key], rnd)}
        return {**value, "tampered": True}
    return 0  # None


@settings(max_examples=150, deadline=None)
@given(
    substrate=substrates(),
    dimension=st.sampled_from(CHECKED_DIMENSIONS),
    how=st.sampled_from(["nudge", "replace", "drop", "add"]),
    replacement=json_values,
    rnd=st.randoms(use_true_random=False),
)
def test_multiply_refuses_tampered_dimensions(
    substrate: Substrate, dimension: str, how: str, replacement: Any, rnd: random.Random
) -> None:
    """Change any value in a dimension that follows from the substrate and multiply refuses
    it with InconsistentDimensions. (Complete *is* the substrate: its metadata values are the
    substrate's own and have no witness in the other dimensions, so they are not tampered
    with here; see the next test.)"""
    dimensions = copy.deepcopy(divide(substrate).to_dict()["dimensions"])
    content = next(d for d in dimensions if d["name"] == dimension)["content"]
    keys = sorted(k for k in content if not (dimension == "Complete" and k == "metadata"))
    key = rnd.choice(keys)
    if how == "drop":
        del content[key]
    elif how == "add":
        content["tampered"] = replacement
    else:
        old = content[key]
        new = _changed(old, rnd) if how == "nudge" else replacement
        assume(new != old)  # 1 == 1.0 == True in Python, and so in the kernel's comparison
        if dimension == "Complete" and key == "expression_code" and isinstance(new, str):
            try:  # a new spelling of the same expression is not tampering
                same = canonical_form(substrate.expression_type, new) == canonical_form(
                    substrate.expression_type, substrate.expression_code
                )
            except ExpressionRejected:
                same = False
            assume(not same)
        content[key] = new
    with pytest.raises(InconsistentDimensions):
        multiply(dimensions)


@settings(max_examples=100, deadline=None)
@given(
    substrate=substrates(),
    metadata=metadata_dicts,
    area=json_values,
    frequency=json_values,
)
def test_facts_and_metadata_values_are_not_witnessed(
    substrate: Substrate, metadata: dict[str, Any], area: Any, frequency: Any
) -> None:
    """Area and Frequency come from the store, not the substrate, so multiply takes them as
    given; metadata values live only in Complete, so changing them (same keys) changes the
    rebuilt substrate's metadata and nothing else."""
    dimensions = copy.deepcopy(divide(substrate).to_dict()["dimensions"])
    by_name = {d["name"]: d for d in dimensions}
    by_name["Area"]["content"] = {"available": True, "whatever": area}
    by_name["Frequency"]["content"] = {"available": True, "whatever": frequency}
    new_metadata = {key: metadata.get(key, 0) for key in substrate.metadata}
    by_name["Complete"]["content"]["metadata"] = new_metadata
    rebuilt = multiply(dimensions)
    assert rebuilt.identity == substrate.identity
    assert rebuilt.metadata == new_metadata


# ---------------------------------------------------------------------------------------
# 4. Products
# ---------------------------------------------------------------------------------------

_constant_numbers = st.one_of(
    st.integers(-1000, 1000), st.integers(-(10**6), 10**6).map(lambda n: n / 1000)
)


class Factor(NamedTuple):
    """A factor before it is typed: a lambda tree, or a constant's JSON value."""

    lam: Lam | None
    value: Any = None

    def substrate(self, rnd: random.Random | None = None) -> Substrate:
        if self.lam is not None:
            return Substrate.create("lambda", render(self.lam, rnd))
        text = json.dumps(self.value) if rnd is None else render_json(self.value, rnd)
        return Substrate.create("constant", text)


def factors(constants: st.SearchStrategy[Any] = _constant_numbers) -> st.SearchStrategy[Factor]:
    """``lambda **kw`` forms, named parameters with defaults (and with **kw), and constants."""
    return st.one_of(
        lambdas(PRODUCT, depth=2, forms=("varkw",)).map(Factor),
        lambdas(PRODUCT, depth=2, forms=("named", "mixed")).map(Factor),
        constants.map(lambda value: Factor(None, value)),
    )


_parameter_values = st.one_of(
    st.integers(-(10**6), 10**6), st.integers(-(10**9), 10**9).map(lambda n: n / 1000)
)


@st.composite
def parameters(draw: st.DrawFn, min_missing: int = 0) -> dict[str, Any]:
    """Values for every name, less a few of them: mostly what the factors need."""
    values = draw(st.fixed_dictionaries({name: _parameter_values for name in (*NAMES, "other")}))
    missing = draw(st.sets(st.sampled_from(NAMES), min_size=min_missing, max_size=2))
    return {name: value for name, value in values.items() if name not in missing}


_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _raw(value: Any) -> Any:
    """Undo invoke's spelling of non-finite floats (numeric factors return no other strings)."""
    return _NON_FINITE.get(value, value) if isinstance(value, str) else value


def _same_number(actual: Any, expected: Any) -> bool:
    if isinstance(expected, float):
        if math.isnan(expected):
            return actual == "NaN"
        if math.isinf(expected):
            return actual == ("Infinity" if expected > 0 else "-Infinity")
        return isinstance(actual, float) and math.isclose(actual, expected, rel_tol=1e-12)
    return type(actual) is type(expected) and actual == expected


def _compose(factors_: list[Substrate]) -> Substrate:
    try:
        return multiply(*factors_)
    except ExpressionRejected as error:  # a product must stay within the static limits
        assert "syntax nodes" in error.reason or "nested deeper" in error.reason, error
        reject()


def _invoke(substrate: Substrate, params: dict[str, Any]) -> Any:
    """The substrate's value for ``params``, or the KernelError invoking it raised."""
    compiled = compile_expression(substrate.expression_type, substrate.expression_code)
    try:
        return compiled.invoke(params)
    except KernelError as error:
        return error


@settings(max_examples=200, deadline=None)
@given(specs=st.lists(factors(), min_size=2, max_size=4), params=parameters())
def test_product_value_is_the_product_of_factor_values(
    specs: list[Factor], params: dict[str, Any]
) -> None:
    """multiply(f1, f2, ...) is a lambda whose value, for parameters every factor accepts, is
    f1·f2·… of the factors' values (computed the same way, so equal up to float rounding).
    Composing the same factors again gives the same substrate id."""
    factors_ = [spec.substrate() for spec in specs]
    product = _compose(factors_)
    assert product.expression_type == "lambda"
    assert multiply(*factors_).identity == product.identity
    assert product.identity == substrate_identity("lambda", product.expression_code)
    assert product.metadata["product_of"] == [f.substrate_id for f in factors_]

    outcomes = [_invoke(factor, params) for factor in factors_]
    if any(isinstance(outcome, KernelError) for outcome in outcomes):
        event("a factor failed: see test_product_fails_where_a_factor_fails")
        return
    values = [_raw(outcome) for outcome in outcomes]
    actual = _invoke(product, params)
    try:
        expected = reduce(operator.mul, values)
    except (TypeError, ValueError, ArithmeticError):
        assert isinstance(actual, EvaluationError), (product.expression_code, params, values)
        return
    assert _same_number(actual, expected), (product.expression_code, params, values, actual)


_UNREAD_REQUIRED_PARAMETER = [  # (lambda **kw: 0)·(lambda x: 0) with {}: x is never read
    Factor(Lam(Signature((), "kw"), ("num", 0))),
    Factor(Lam(Signature((("x", None),), None), ("num", 0))),
]
_BRANCH_NOT_TAKEN = [  # (lambda x, y: x if x > 0 else y)·3 with {"x": 1}: y is not needed
    Factor(
        Lam(
            Signature((("x", None), ("y", None)), None),
            ("if", ("cmp", ">", ("name", "x"), ("num", 0)), ("name", "x"), ("name", "y")),
        )
    ),
    Factor(None, 3),
]


@example(specs=_UNREAD_REQUIRED_PARAMETER, params={})  # fixed: the product demands kw['x']
@example(specs=_BRANCH_NOT_TAKEN, params={"x": 1})
@settings(max_examples=100, deadline=None)
@given(specs=st.lists(factors(), min_size=2, max_size=4), params=parameters(min_missing=1))
def test_product_fails_where_a_factor_fails(specs: list[Factor], params: dict[str, Any]) -> None:
    """A product has no value where one of its factors has none: if a factor raises a typed
    error for some parameters, the product raises a typed KernelError too."""
    factors_ = [spec.substrate() for spec in specs]
    product = _compose(factors_)
    failures = [
        (f.expression_code, e) for f in factors_ if isinstance(e := _invoke(f, params), KernelError)
    ]
    if failures:
        outcome = _invoke(product, params)
        if not isinstance(outcome, KernelError):
            raise AssertionError(
                f"{failures} but the product {product.expression_code!r} returned {outcome!r}"
            )


def _check_product_identity(
    specs: list[Factor], rnd_a: random.Random, rnd_b: random.Random
) -> None:
    first = [spec.substrate(rnd_a) for spec in specs]
    second = [spec.substrate(rnd_b) for spec in specs]
    assert [f.identity for f in first] == [f.identity for f in second]
    product = _compose(first)
    assert multiply(*second).identity == product.identity, (
        [f.expression_code for f in first],
        [f.expression_code for f in second],
    )


@settings(max_examples=100, deadline=None)
@given(
    specs=st.lists(factors(constants=json_scalars), min_size=2, max_size=3),
    rnd_a=st.randoms(use_true_random=False),
    rnd_b=st.randoms(use_true_random=False),
)
def test_product_identity_depends_only_on_factor_identities(
    specs: list[Factor], rnd_a: random.Random, rnd_b: random.Random
) -> None:
    """Lambda and scalar-constant factors typed differently, but with the same ids, compose to
    the same product id: the product is a function of what the factors are."""
    _check_product_identity(specs, rnd_a, rnd_b)


@example(
    specs=[Factor(None, 2), Factor(None, {"a": 1, "b": 2, "c": 3, "d": 4})],
    rnd_a=random.Random(1),
    rnd_b=random.Random(2),
)
@settings(max_examples=100, deadline=None)
@given(
    specs=st.lists(factors(constants=json_values), min_size=2, max_size=3),
    rnd_a=st.randoms(use_true_random=False),
    rnd_b=st.randoms(use_true_random=False),
)
def test_product_identity_ignores_key_order_of_constant_factors(
    specs: list[Factor], rnd_a: random.Random, rnd_b: random.Random
) -> None:
    """The same, with JSON object and array constants among the factors."""
    _check_product_identity(specs, rnd_a, rnd_b)


# ---------------------------------------------------------------------------------------
# 5. Invocation gives a JSON value or a typed error
# ---------------------------------------------------------------------------------------


def is_json_value(value: Any) -> bool:
    """Strictly JSON: dict with str keys, list, str, finite float, int, bool, None."""
    kind = type(value)
    if value is None or kind in (bool, int, str):
        return True
    if kind is float:
        return math.isfinite(value)
    if kind is list:
        return all(is_json_value(item) for item in value)
    if kind is dict:
        return all(type(k) is str and is_json_value(item) for k, item in value.items())
    return False


_broad_values = st.one_of(st.integers(-100, 100), st.floats(-1e6, 1e6), json_values)
broad_parameters = st.one_of(
    st.fixed_dictionaries({name: _broad_values for name in NAMES}),  # every named parameter
    st.dictionaries(
        st.one_of(st.sampled_from((*NAMES, *VARKW_NAMES)), st.text(max_size=3)),
        _broad_values,
        max_size=4,
    ),
)


@pytest.mark.filterwarnings("ignore::SyntaxWarning")  # e.g. "'int' object is not subscriptable"
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(lam=lambdas(BROAD, depth=3), rnd=st.randoms(use_true_random=False), params=broad_parameters)
def test_invoke_returns_json_or_a_typed_error(
    lam: Lam, rnd: random.Random, params: dict[str, Any]
) -> None:
    """Whatever an accepted expression does (strings, lists, comprehensions, huge powers,
    division by zero, NaN and infinities), invoking it returns a strict JSON value or raises
    EvaluationError / EvaluationLimitExceeded, and never any other exception."""
    code = render(lam, rnd)
    try:
        compiled = compile_expression("lambda", code)
    except ExpressionRejected:
        reject()
    try:
        result = compiled.invoke(params)
    except EvaluationError as error:
        event(f"EvaluationError {error.error_type}")
        return
    except EvaluationLimitExceeded as error:
        event(f"EvaluationLimitExceeded {error.limit}")
        return
    event(f"returned {type(result).__name__}")
    json.dumps(result, allow_nan=False)
    assert is_json_value(result), (code, params, result)


# ---------------------------------------------------------------------------------------
# 6. Substrate ids
# ---------------------------------------------------------------------------------------

identities = st.integers(0, 2**64 - 1)


@settings(max_examples=200, deadline=None)
@given(n=identities)
def test_ids_are_written_and_read_back(n: int) -> None:
    """format_id writes 0x + 16 upper-case hex digits; parse_id reads that back, and also any
    case, with or without 0x, with or without leading zeros."""
    text = format_id(n)
    assert re.fullmatch(r"0x[0-9A-F]{16}", text)
    assert parse_id(text) == n
    assert parse_id(text.lower()) == n
    assert parse_id(text[2:].lower()) == n
    assert parse_id(text[2:]) == n
    assert parse_id("0X" + text[2:]) == n
    assert parse_id(f"{n:x}") == n
    assert parse_id(hex(n)) == n


@settings(max_examples=100, deadline=None)
@given(
    n=st.one_of(st.integers(max_value=-1), st.integers(min_value=2**64)),
    text=st.one_of(
        st.text(max_size=20).filter(lambda t: not re.fullmatch(r"(0[xX])?[0-9a-fA-F]{1,16}", t)),
        st.integers(2**64, 2**80).map(hex),
    ),
)
def test_out_of_range_ids_are_refused(n: int, text: str) -> None:
    """Numbers outside 64 bits and strings that are not ids raise InvalidSubstrateId."""
    with pytest.raises(InvalidSubstrateId):
        format_id(n)
    with pytest.raises(InvalidSubstrateId):
        parse_id(text)
