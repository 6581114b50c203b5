"""Turn a checked lambda into a Python function that runs only through the guards.

The user's text is never handed to ``eval`` or ``exec``. The checked syntax tree is
rewritten (operators that can grow values become guard calls, loops are charged to the
budget), wrapped in a function definition of our own making, compiled, and the
function object is built from its code object with ``types.FunctionType`` over a
namespace that has no builtins.
"""

from __future__ import annotations

import ast
import copy
import types
from collections.abc import Callable
from typing import Any

from ..limits import Limits
from .checker import CheckedLambda
from .runtime import BUDGETED_FUNCTIONS, build_namespace

_GUARDED_OPS: dict[type, str] = {
    ast.Mult: "_g_mul",
    ast.Add: "_g_add",
    ast.Pow: "_g_pow",
    ast.LShift: "_g_lshift",
    ast.Mod: "_g_mod",
    ast.BitOr: "_g_bitor",
    ast.BitXor: "_g_bitxor",
}
_PARAMS = "_p"
_BUDGET = "_b"


_LOAD = ast.Load()
_STORE = ast.Store()


def _load(name: str) -> ast.Name:
    return ast.Name(id=name, ctx=_LOAD)


def _call(name: str, *args: ast.expr) -> ast.Call:
    return ast.Call(func=_load(name), args=list(args), keywords=[])


def _at(new: ast.expr, where: ast.AST) -> ast.expr:
    """Give a node we made, and its callee, the source position of the node it replaces."""
    for node in (new, getattr(new, "func", None)):
        if node is not None:
            node.lineno = where.lineno  # type: ignore[attr-defined]
            node.col_offset = where.col_offset  # type: ignore[attr-defined]
            node.end_lineno = where.end_lineno  # type: ignore[attr-defined]
            node.end_col_offset = where.end_col_offset  # type: ignore[attr-defined]
    return new


def _retain(node: ast.expr) -> ast.expr:
    retain = ast.Attribute(value=_at(_load(_BUDGET), node), attr="retain", ctx=_LOAD)
    return _at(ast.Call(func=retain, args=[node], keywords=[]), node)


def _guard_binop(node: Any) -> ast.AST:
    guard = _GUARDED_OPS.get(type(node.op))
    return node if guard is None else _at(_call(guard, node.left, node.right), node)


def _guard_call(node: ast.Call) -> ast.AST:
    if isinstance(node.func, ast.Name) and node.func.id in BUDGETED_FUNCTIONS:
        node.args.insert(0, _at(_load(_BUDGET), node))
    return node


def _guard_comprehension(node: ast.comprehension) -> ast.AST:
    node.iter = _at(_call("_g_iter", _at(_load(_BUDGET), node.iter), node.iter), node.iter)
    return node


def _guard_collection(node: Any) -> ast.AST:
    node.elt = _retain(node.elt)
    return _at(_call("_g_coll", node), node)


def _guard_dict_comprehension(node: Any) -> ast.AST:
    node.value = _retain(node.value)
    return _at(_call("_g_coll", node), node)


def _guard_generator(node: ast.GeneratorExp) -> ast.AST:
    node.elt = _retain(node.elt)
    return node


_GUARDS: dict[type, Callable[[Any], ast.AST]] = {
    ast.BinOp: _guard_binop,
    ast.Call: _guard_call,
    ast.comprehension: _guard_comprehension,
    ast.ListComp: _guard_collection,
    ast.SetComp: _guard_collection,
    ast.DictComp: _guard_dict_comprehension,
    ast.GeneratorExp: _guard_generator,
}


def _guard(node: ast.AST) -> ast.AST:
    """Rewrite a checked tree bottom-up, in place: growth goes through guards, loops
    through the budget. (A hand-rolled walk: ``ast.NodeTransformer`` costs several
    times more, and creating substrates should be cheap.)"""
    for name in node._fields:
        value = getattr(node, name)
        if type(value) is list:
            value[:] = [_guard(item) if isinstance(item, ast.AST) else item for item in value]
        elif isinstance(value, ast.AST):
            setattr(node, name, _guard(value))
    rewrite = _GUARDS.get(type(node))
    return node if rewrite is None else rewrite(node)


_LINE_ONE = {"lineno": 1, "col_offset": 0, "end_lineno": 1, "end_col_offset": 0}


def _place(tree: ast.AST) -> None:
    """Put every node of a small tree of our own making on line 1."""
    for node in ast.walk(tree):
        if "lineno" in node._attributes:
            node.__dict__.update(_LINE_ONE)


def build_function(checked: CheckedLambda, limits: Limits) -> Callable[..., Any]:
    """Return ``f(parameters, budget)`` computing the lambda's value for a parameters dict.

    The checked tree is rewritten in place: take the canonical form before calling this.
    """
    body: list[ast.stmt] = []
    named = checked.parameters
    if checked.varkw is not None and not named:
        source = checked.varkw  # the caller's dict is kw itself: nothing can mutate it
    else:
        source = _PARAMS
    for parameter in named:
        key = ast.Constant(parameter.name)
        if parameter.default is None:
            missing = ast.Compare(left=key, ops=[ast.NotIn()], comparators=[_load(source)])
            body.append(ast.If(test=missing, body=[ast.Expr(_call("_g_missing", key))], orelse=[]))
            value: ast.expr = ast.Subscript(value=_load(source), slice=key, ctx=ast.Load())
        else:
            getter = ast.Attribute(value=_load(source), attr="get", ctx=ast.Load())
            value = ast.Call(func=getter, args=[key, copy.copy(parameter.default)], keywords=[])
        body.append(ast.Assign(targets=[ast.Name(id=parameter.name, ctx=ast.Store())], value=value))
    if checked.varkw is not None and named:
        # kw holds only the parameters not named, as in Python itself
        names = ast.Tuple(elts=[ast.Constant(p.name) for p in named], ctx=ast.Load())
        rest = ast.DictComp(
            key=_load("_k"),
            value=_load("_v"),
            generators=[
                ast.comprehension(
                    target=ast.Tuple(
                        elts=[
                            ast.Name(id="_k", ctx=ast.Store()),
                            ast.Name(id="_v", ctx=ast.Store()),
                        ],
                        ctx=ast.Store(),
                    ),
                    iter=ast.Call(
                        func=ast.Attribute(value=_load(_PARAMS), attr="items", ctx=ast.Load()),
                        args=[],
                        keywords=[],
                    ),
                    ifs=[ast.Compare(left=_load("_k"), ops=[ast.NotIn()], comparators=[names])],
                    is_async=0,
                )
            ],
        )
        body.append(ast.Assign(targets=[ast.Name(id=checked.varkw, ctx=ast.Store())], value=rest))
    for statement in body:  # the prologue is ours: it sits on line 1
        _place(statement)
    expression = _guard(checked.tree.body)
    assert isinstance(expression, ast.expr)
    body.append(ast.Return(value=expression, **_LINE_ONE))
    function = ast.FunctionDef(
        name="substrate",
        args=ast.arguments(
            posonlyargs=[],
            args=[ast.arg(arg=source), ast.arg(arg=_BUDGET)],
            vararg=None,
            kwonlyargs=[],
            kw_defaults=[],
            kwarg=None,
            defaults=[ast.Constant(None)],
        ),
        body=body,
        decorator_list=[],
        returns=None,
        type_comment=None,
        **_LINE_ONE,
    )
    _place(function.args)
    module = ast.Module(body=[function], type_ignores=[])
    code = compile(module, "<substrate>", "exec", dont_inherit=True)
    function_code = next(c for c in code.co_consts if isinstance(c, types.CodeType))
    return types.FunctionType(function_code, build_namespace(limits), "substrate", (None,))
