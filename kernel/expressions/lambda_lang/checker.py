"""Parse a ``lambda`` expression and check it, node by node, against the whitelist.

Nothing here runs user code. The walk that measures size and depth is iterative, so a
deeply nested expression is refused by the limit, never by a RecursionError; the
whitelist walk is recursive but only ever sees trees already proven shallow.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

from ...errors import ExpressionRejected
from ..limits import Limits
from .vocabulary import CONSTANTS, FUNCTION_KEYWORDS, FUNCTIONS, RESERVED

# Singletons in the ast module (contexts and operators) are not counted as nodes.
_UNCOUNTED = (ast.expr_context, ast.operator, ast.boolop, ast.unaryop, ast.cmpop)

_ALLOWED_BINOPS = (
    ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow,
    ast.LShift, ast.RShift, ast.BitOr, ast.BitXor, ast.BitAnd,
)  # fmt: skip
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)
_FORBIDDEN_REASONS: dict[type, str] = {
    ast.JoinedStr: "f-strings are not allowed",
    ast.FormattedValue: "f-strings are not allowed",
    ast.NamedExpr: "assignment expressions (:=) are not allowed",
    ast.Lambda: "nested lambdas are not allowed",
    ast.Await: "await is not allowed",
    ast.Yield: "yield is not allowed",
    ast.YieldFrom: "yield is not allowed",
    ast.Starred: "starred unpacking is not allowed",
}


@dataclass(frozen=True)
class Parameter:
    """A named parameter of the lambda; ``default`` is None when the parameter is required."""

    name: str
    default: ast.expr | None

    @property
    def required(self) -> bool:
        return self.default is None


@dataclass
class CheckedLambda:
    """A lambda that passed every static check, with what the checks learned about it."""

    tree: ast.Lambda
    parameters: tuple[Parameter, ...]
    varkw: str | None
    reads: set[str] = field(default_factory=set)
    dynamic_reads: bool = False
    functions: set[str] = field(default_factory=set)
    has_comprehension: bool = False
    node_count: int = 0
    depth: int = 0


def _column(source_lines: list[str], node: Any) -> tuple[int | None, int | None]:
    line = getattr(node, "lineno", None)
    offset = getattr(node, "col_offset", None)
    if line is None or offset is None:
        return None, None
    text = source_lines[line - 1] if 0 < line <= len(source_lines) else ""
    return line, len(text.encode("utf-8")[:offset].decode("utf-8", "replace")) + 1


def parse_lambda(code: str, limits: Limits) -> CheckedLambda:
    """Parse ``code`` and check it; raise ``ExpressionRejected`` on the first offence.

    Whitespace around the expression is ignored; positions in errors still count from
    the start of the text as the user sent it.
    """
    if not isinstance(code, str):
        raise ExpressionRejected("expression_code must be a string")
    if len(code) > limits.max_source_chars:
        raise ExpressionRejected(
            f"expression is {len(code)} characters long; the limit is {limits.max_source_chars}"
        )
    body = code.lstrip()
    prefix = code[: len(code) - len(body)]
    try:
        return _parse_stripped(body, limits)
    except ExpressionRejected as error:
        if not prefix or error.line is None:
            raise
        lines_skipped = prefix.count("\n")
        columns_skipped = len(prefix) - (prefix.rfind("\n") + 1)
        column = error.column
        if error.line == 1 and column is not None:
            column += columns_skipped
        raise ExpressionRejected(error.reason, error.line + lines_skipped, column) from None


def _parse_stripped(code: str, limits: Limits) -> CheckedLambda:
    try:
        module = ast.parse(code, mode="eval")
    except SyntaxError as error:
        raise ExpressionRejected(f"syntax error: {error.msg}", error.lineno, error.offset) from None
    except (ValueError, RecursionError, MemoryError) as error:
        raise ExpressionRejected(f"syntax error: {error}") from None
    lines = code.splitlines() or [""]
    root = module.body
    if not isinstance(root, ast.Lambda):
        raise ExpressionRejected(
            "a lambda expression must start with 'lambda', e.g. lambda **kw: kw.get('x', 0)",
            *_column(lines, root),
        )
    node_count, depth = _measure(root, limits, lines)
    checker = _Checker(lines, limits)
    checked = checker.check_root(root)
    checked.node_count = node_count
    checked.depth = depth
    return checked


def _measure(root: ast.AST, limits: Limits, lines: list[str]) -> tuple[int, int]:
    count = 0
    deepest = 0
    stack: list[tuple[ast.AST, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, _UNCOUNTED):
            continue
        count += 1
        if count > limits.max_nodes:
            raise ExpressionRejected(
                f"expression has more than {limits.max_nodes} syntax nodes", *_column(lines, node)
            )
        if depth > limits.max_depth:
            raise ExpressionRejected(
                f"expression is nested deeper than {limits.max_depth} levels", *_column(lines, node)
            )
        if depth > deepest:
            deepest = depth
        depth += 1
        for name in node._fields:  # ast.iter_child_nodes, inlined: this runs on every create
            value = getattr(node, name)
            if type(value) is list:
                stack.extend((item, depth) for item in value if isinstance(item, ast.AST))
            elif isinstance(value, ast.AST):
                stack.append((value, depth))
    return count, deepest


class _Checker:
    def __init__(self, lines: list[str], limits: Limits) -> None:
        self.lines = lines
        self.limits = limits
        self.result: CheckedLambda | None = None

    def reject(self, reason: str, node: ast.AST) -> ExpressionRejected:
        return ExpressionRejected(reason, *_column(self.lines, node))

    # -- the lambda's own signature -------------------------------------------------
    def check_root(self, root: ast.Lambda) -> CheckedLambda:
        args = root.args
        if args.vararg is not None:
            raise self.reject("*args is not allowed; name the parameters or use **kw", args.vararg)
        positional = [*args.posonlyargs, *args.args]
        defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults))
        defaults.extend(args.defaults)
        pairs = [
            *zip(positional, defaults, strict=True),
            *zip(args.kwonlyargs, args.kw_defaults, strict=True),
        ]
        seen: set[str] = set()
        parameters = []
        for arg, default in pairs:
            self.check_binding(arg.arg, arg, seen)
            if arg.annotation is not None:
                raise self.reject("annotations are not allowed", arg.annotation)
            if default is not None:
                self.check_literal(default)
            parameters.append(Parameter(arg.arg, default))
        varkw = None
        if args.kwarg is not None:
            self.check_binding(args.kwarg.arg, args.kwarg, seen)
            varkw = args.kwarg.arg
        self.result = CheckedLambda(root, tuple(parameters), varkw)
        self.check(root.body, frozenset(seen))
        return self.result

    def check_binding(self, name: str, node: ast.AST, seen: set[str]) -> None:
        self.check_name_text(name, node)
        if name in RESERVED:
            raise self.reject(f"the name {name!r} is a built-in function or constant", node)
        if name in seen:
            raise self.reject(f"the name {name!r} is bound twice", node)
        seen.add(name)

    def check_name_text(self, name: str, node: ast.AST) -> None:
        if name.startswith("_"):
            raise self.reject(f"names starting with '_' are not allowed ({name!r})", node)

    def check_literal(self, node: ast.expr) -> None:
        if isinstance(node, ast.Constant):
            self.check_constant(node)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            if not (
                isinstance(node.operand, ast.Constant) and type(node.operand.value) in (int, float)
            ):
                raise self.reject("a default must be a literal value", node)
        elif isinstance(node, ast.List | ast.Tuple | ast.Set):
            for item in node.elts:
                self.check_literal(item)
                if isinstance(node, ast.Set):
                    self.check_hashable(item)
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if key is None:
                    raise self.reject("dict unpacking (**) is not allowed", value)
                self.check_literal(key)
                self.check_hashable(key)
                self.check_literal(value)
        else:
            raise self.reject("a default must be a literal value", node)

    def check_hashable(self, node: ast.expr) -> None:
        """Set items and dict keys in a default must be hashable: no lists, dicts or sets."""
        if isinstance(node, ast.List | ast.Dict | ast.Set):
            raise self.reject("a set item or dict key in a default cannot be a container", node)
        if isinstance(node, ast.Tuple):
            for item in node.elts:
                self.check_hashable(item)

    def check_constant(self, node: ast.Constant) -> None:
        if type(node.value) not in (int, float, str, bool, type(None)):
            kind = type(node.value).__name__
            raise self.reject(f"literals of type {kind} are not allowed", node)

    # -- the body -------------------------------------------------------------------
    def check(self, node: ast.AST, scope: frozenset[str]) -> None:
        result = self.result
        assert result is not None
        reason = _FORBIDDEN_REASONS.get(type(node))
        if reason is not None:
            raise self.reject(reason, node)
        if isinstance(node, ast.Constant):
            self.check_constant(node)
        elif isinstance(node, ast.Name):
            self.check_name(node, scope)
        elif isinstance(node, ast.BinOp):
            if not isinstance(node.op, _ALLOWED_BINOPS):
                raise self.reject("the @ operator is not allowed", node)
            if (
                isinstance(node.op, ast.Mod)
                and isinstance(node.left, ast.Constant)
                and isinstance(node.left.value, str)
            ):
                raise self.reject("%-formatting of strings is not allowed", node)
            self.check(node.left, scope)
            self.check(node.right, scope)
        elif isinstance(node, ast.BoolOp):
            for value in node.values:
                self.check(value, scope)
        elif isinstance(node, ast.UnaryOp):
            self.check(node.operand, scope)
        elif isinstance(node, ast.Compare):
            self.check(node.left, scope)
            for comparator in node.comparators:
                self.check(comparator, scope)
        elif isinstance(node, ast.IfExp):
            self.check(node.test, scope)
            self.check(node.body, scope)
            self.check(node.orelse, scope)
        elif isinstance(node, ast.List | ast.Tuple | ast.Set):
            for item in node.elts:
                self.check(item, scope)
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if key is None:
                    raise self.reject("dict unpacking (**) is not allowed", value)
                self.check(key, scope)
                self.check(value, scope)
        elif isinstance(node, ast.Subscript):
            self.check_subscript(node, scope)
        elif isinstance(node, ast.Slice):
            for part in (node.lower, node.upper, node.step):
                if part is not None:
                    self.check(part, scope)
        elif isinstance(node, ast.Call):
            self.check_call(node, scope)
        elif isinstance(node, _COMPREHENSIONS):
            self.check_comprehension(node, scope)
        elif isinstance(node, ast.Attribute):
            raise self.reject(
                f"attribute access is not allowed (.{node.attr}); only kw.get(name, default) is",
                node,
            )
        else:
            raise self.reject(f"{type(node).__name__} is not allowed in an expression", node)

    def check_name(self, node: ast.Name, scope: frozenset[str]) -> None:
        result = self.result
        assert result is not None
        self.check_name_text(node.id, node)
        if node.id in scope:
            if node.id == result.varkw:
                result.dynamic_reads = True  # kw used as a whole value
            elif any(p.name == node.id for p in result.parameters):
                result.reads.add(node.id)
            return
        if node.id in CONSTANTS:
            return
        if node.id in FUNCTIONS:
            raise self.reject(f"the function {node.id!r} can only be called", node)
        raise self.reject(f"unknown name {node.id!r}", node)

    def check_subscript(self, node: ast.Subscript, scope: frozenset[str]) -> None:
        result = self.result
        assert result is not None
        if isinstance(node.value, ast.Name) and node.value.id == result.varkw:
            self.check_name_text(node.value.id, node.value)
            key = node.slice
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                result.reads.add(key.value)
            else:
                result.dynamic_reads = True
        else:
            self.check(node.value, scope)
        self.check(node.slice, scope)

    def check_call(self, node: ast.Call, scope: frozenset[str]) -> None:
        result = self.result
        assert result is not None
        func = node.func
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise self.reject("starred unpacking is not allowed", arg)
        if (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and func.value.id == result.varkw
            and func.value.id in scope
        ):
            if func.attr != "get":
                raise self.reject(
                    f"attribute access is not allowed (.{func.attr}); only kw.get(name, default) is",  # noqa: E501
                    func,
                )
            if node.keywords or not 1 <= len(node.args) <= 2:
                raise self.reject(f"{result.varkw}.get takes a name and an optional default", node)
            key = node.args[0]
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                result.reads.add(key.value)
            else:
                result.dynamic_reads = True
            for arg in node.args:
                self.check(arg, scope)
            return
        if not isinstance(func, ast.Name):
            if isinstance(func, ast.Attribute):
                self.check(func, scope)  # raises with the attribute's name
            raise self.reject("only the built-in functions and kw.get can be called", node)
        self.check_name_text(func.id, func)
        if func.id not in FUNCTIONS:
            raise self.reject(
                f"{func.id!r} is not a callable function; allowed: {', '.join(sorted(FUNCTIONS))}",
                func,
            )
        allowed = FUNCTION_KEYWORDS[func.id]
        for keyword in node.keywords:
            if keyword.arg is None:
                raise self.reject("dict unpacking (**) is not allowed", keyword.value)
            if keyword.arg not in allowed:
                raise self.reject(f"{func.id}() takes no keyword argument {keyword.arg!r}", keyword)
            self.check(keyword.value, scope)
        result.functions.add(func.id)
        for arg in node.args:
            self.check(arg, scope)

    def check_comprehension(self, node: Any, scope: frozenset[str]) -> None:
        result = self.result
        assert result is not None
        result.has_comprehension = True
        inner = scope
        for generator in node.generators:
            if generator.is_async:
                raise self.reject("async comprehensions are not allowed", node)
            self.check(generator.iter, inner)
            bound: set[str] = set()
            self.check_target(generator.target, bound)
            inner = inner | bound
            for condition in generator.ifs:
                self.check(condition, inner)
        if isinstance(node, ast.DictComp):
            self.check(node.key, inner)
            self.check(node.value, inner)
        else:
            self.check(node.elt, inner)

    def check_target(self, target: ast.expr, bound: set[str]) -> None:
        result = self.result
        assert result is not None
        if isinstance(target, ast.Name):
            self.check_name_text(target.id, target)
            if target.id in RESERVED or target.id == result.varkw:
                raise self.reject(f"the loop variable {target.id!r} hides a name in use", target)
            bound.add(target.id)
        elif isinstance(target, ast.Tuple | ast.List):
            for item in target.elts:
                self.check_target(item, bound)
        else:
            raise self.reject("a loop variable must be a name or a tuple of names", target)
