"""The canonical text of a checked lambda, from which its identity is hashed.

It is a structural encoding of the syntax tree with an explicit field list for every
allowed node, not ``ast.unparse`` or ``ast.dump``: both have changed their output between
Python releases, and an identity must never change with the interpreter. Whitespace,
comments, parentheses and quote style leave no trace in it.
"""

from __future__ import annotations

import ast
import json
from typing import Any

# The fields that carry meaning, per node type, in a fixed order.
_FIELDS: dict[type, tuple[str, ...]] = {
    ast.Lambda: ("args", "body"),
    ast.arguments: (
        "posonlyargs",
        "args",
        "vararg",
        "kwonlyargs",
        "kw_defaults",
        "kwarg",
        "defaults",
    ),
    ast.arg: ("arg",),
    ast.BoolOp: ("op", "values"),
    ast.BinOp: ("left", "op", "right"),
    ast.UnaryOp: ("op", "operand"),
    ast.IfExp: ("test", "body", "orelse"),
    ast.Dict: ("keys", "values"),
    ast.Set: ("elts",),
    ast.List: ("elts",),
    ast.Tuple: ("elts",),
    ast.ListComp: ("elt", "generators"),
    ast.SetComp: ("elt", "generators"),
    ast.GeneratorExp: ("elt", "generators"),
    ast.DictComp: ("key", "value", "generators"),
    ast.comprehension: ("target", "iter", "ifs"),
    ast.Compare: ("left", "ops", "comparators"),
    ast.Call: ("func", "args", "keywords"),
    ast.keyword: ("arg", "value"),
    ast.Attribute: ("value", "attr"),
    ast.Subscript: ("value", "slice"),
    ast.Slice: ("lower", "upper", "step"),
    ast.Name: ("id",),
}


def canonical_text(tree: ast.Lambda) -> str:
    """Return the canonical encoding of a lambda that has passed the checker."""
    out: list[str] = []
    _encode(tree, out)
    return "".join(out)


def _encode(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("~")
    elif isinstance(value, str):
        out.append(json.dumps(value))
    elif isinstance(value, list):
        out.append("[")
        for item in value:
            _encode(item, out)
            out.append(",")
        out.append("]")
    elif isinstance(value, ast.Constant):
        out.append(_constant(value.value))
    elif isinstance(value, ast.AST):
        fields = _FIELDS.get(type(value))
        out.append(type(value).__name__)
        if fields is None:  # operators and comparison operators carry no fields
            return
        out.append("(")
        for name in fields:
            _encode(getattr(value, name), out)
            out.append(";")
        out.append(")")
    else:  # pragma: no cover - the checker admits nothing else
        raise TypeError(f"cannot encode {type(value).__name__}")


def _constant(value: Any) -> str:
    kind = type(value)
    if kind is bool or value is None:
        return f"K{value!r}"
    if kind is int:
        return f"I{value}"
    if kind is float:
        return f"F{value!r}"
    return f"S{json.dumps(value)}"
