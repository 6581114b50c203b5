"""The product of substrates: z = x·y as a new ``lambda **kw`` substrate.

Each factor's body is inlined with its parameters read from the product's ``kw``
(``x`` becomes ``kw['x']``, ``y=0`` becomes ``kw.get('y', 0)``), so the product's value
for any parameters is the product of the factors' values, computed with the same
guarded ``*``. A product, like any lambda, must stay within the static limits.
"""

from __future__ import annotations

import ast
import copy
import json
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import ExpressionRejected
from .expressions import DEFAULT_LIMITS, ExpressionLanguage, Limits, canonical_form
from .expressions.lambda_lang.checker import CheckedLambda, parse_lambda
from .json_values import JSONValue
from .substrate import Substrate


def compose_product(
    factors: Sequence[Substrate],
    *,
    limits: Limits = DEFAULT_LIMITS,
    languages: Mapping[str, ExpressionLanguage] | None = None,
) -> Substrate:
    """A substrate whose value is the product of the factors' values, in the order given."""
    if len(factors) < 2:
        raise ExpressionRejected("a product needs at least two substrates")
    checked: list[CheckedLambda | Any] = []
    used: set[str] = set()
    for factor in factors:
        if factor.expression_type == "lambda":
            lam = parse_lambda(factor.expression_code, limits)
            # parameter names are all replaced; only loop variables stay to clash with kw
            bound = {p.name for p in lam.parameters} | {lam.varkw}
            used |= {n.id for n in ast.walk(lam.tree) if isinstance(n, ast.Name)} - bound
            checked.append(lam)
        elif factor.expression_type == "constant":
            # inline the canonical value, so the factor's key order cannot change the product
            checked.append(json.loads(canonical_form("constant", factor.expression_code, limits)))
        else:
            raise ExpressionRejected(
                "a product can be composed of lambda and constant substrates, "
                f"not {factor.expression_type!r}"
            )
    kw = next(name for name in ("kw", *(f"kw{i}" for i in range(1, 1000))) if name not in used)
    bodies = [
        _inline(item, kw) if isinstance(item, CheckedLambda) else _literal(item) for item in checked
    ]
    body = bodies[0]
    for other in bodies[1:]:
        body = ast.BinOp(left=body, op=ast.Mult(), right=other)
    tree = ast.Lambda(
        args=ast.arguments(
            posonlyargs=[], args=[], vararg=None, kwonlyargs=[], kw_defaults=[],
            kwarg=ast.arg(arg=kw), defaults=[],
        ),
        body=body,
    )  # fmt: skip
    code = ast.unparse(ast.fix_missing_locations(tree))
    metadata: dict[str, JSONValue] = {"product_of": [f.substrate_id for f in factors]}
    return Substrate.create("lambda", code, metadata, limits=limits, languages=languages)


def _literal(value: Any) -> ast.expr:
    if isinstance(value, dict):
        return ast.Dict(
            keys=[ast.Constant(k) for k in value], values=[_literal(v) for v in value.values()]
        )
    if isinstance(value, list):
        return ast.List(elts=[_literal(v) for v in value], ctx=ast.Load())
    return ast.Constant(value)


def _inline(checked: CheckedLambda, kw: str) -> ast.expr:
    named = {p.name: p for p in checked.parameters}
    if checked.varkw is not None and named and checked.dynamic_reads:
        raise ExpressionRejected(
            "a factor that mixes named parameters with **kw used as a whole cannot be inlined"
        )
    body: ast.expr = _Inliner(named, checked.varkw, kw).visit(copy.deepcopy(checked.tree.body))
    unread = [p.name for p in checked.parameters if p.required]
    if unread:
        # every required parameter is demanded up front, as calling the factor would: the body
        # may read it only on a branch not taken, or not at all
        demands: list[ast.expr] = [
            ast.Subscript(value=ast.Name(id=kw, ctx=ast.Load()), slice=ast.Constant(name),
                          ctx=ast.Load())
            for name in unread
        ]  # fmt: skip
        body = ast.Subscript(
            value=ast.Tuple(elts=[*demands, body], ctx=ast.Load()),
            slice=ast.UnaryOp(op=ast.USub(), operand=ast.Constant(1)),
            ctx=ast.Load(),
        )
    return body


class _Inliner(ast.NodeTransformer):
    """Replace parameter names with reads from the product's kw, respecting loop scopes."""

    def __init__(self, named: Mapping[str, Any], varkw: str | None, kw: str) -> None:
        self.named = named
        self.varkw = varkw
        self.kw = kw
        self.shadowed: list[set[str]] = []

    def _is_free(self, name: str) -> bool:
        return not any(name in scope for scope in self.shadowed)

    def visit_Name(self, node: ast.Name) -> ast.expr:
        if not self._is_free(node.id):
            return node
        if node.id == self.varkw:
            return ast.copy_location(ast.Name(id=self.kw, ctx=ast.Load()), node)
        parameter = self.named.get(node.id)
        if parameter is None:
            return node
        key = ast.Constant(node.id)
        source = ast.Name(id=self.kw, ctx=ast.Load())
        if parameter.required:
            return ast.copy_location(ast.Subscript(value=source, slice=key, ctx=ast.Load()), node)
        getter = ast.Attribute(value=source, attr="get", ctx=ast.Load())
        default = copy.deepcopy(parameter.default)
        return ast.copy_location(ast.Call(func=getter, args=[key, default], keywords=[]), node)

    def visit_Call(self, node: ast.Call) -> ast.expr:
        # kw.get('x') on a factor with a named x reads what Python would: nothing
        if (
            isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == self.varkw
            and self._is_free(self.varkw)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and node.args[0].value in self.named
        ):
            fallback = node.args[1] if len(node.args) > 1 else ast.Constant(None)
            return self.visit(fallback)  # type: ignore[no-any-return]
        self.generic_visit(node)
        return node

    def visit_Subscript(self, node: ast.Subscript) -> ast.expr:
        if (
            isinstance(node.value, ast.Name)
            and node.value.id == self.varkw
            and self._is_free(self.varkw)
            and isinstance(node.slice, ast.Constant)
            and node.slice.value in self.named
        ):
            raise ExpressionRejected(
                f"{self.varkw}[{node.slice.value!r}] reads a named parameter "
                f"through **{self.varkw}; "
                "such a factor cannot be inlined"
            )
        self.generic_visit(node)
        return node

    def _comprehension(self, node: Any, parts: Sequence[str]) -> Any:
        pushed = 0
        for generator in node.generators:
            generator.iter = self.visit(generator.iter)
            self.shadowed.append(
                {n.id for n in ast.walk(generator.target) if isinstance(n, ast.Name)}
            )
            pushed += 1
            generator.ifs = [self.visit(condition) for condition in generator.ifs]
        for part in parts:
            setattr(node, part, self.visit(getattr(node, part)))
        del self.shadowed[len(self.shadowed) - pushed :]
        return node

    def visit_ListComp(self, node: ast.ListComp) -> Any:
        return self._comprehension(node, ("elt",))

    def visit_SetComp(self, node: ast.SetComp) -> Any:
        return self._comprehension(node, ("elt",))

    def visit_GeneratorExp(self, node: ast.GeneratorExp) -> Any:
        return self._comprehension(node, ("elt",))

    def visit_DictComp(self, node: ast.DictComp) -> Any:
        return self._comprehension(node, ("key", "value"))
