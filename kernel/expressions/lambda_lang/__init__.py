"""The built-in ``lambda`` expression language: a small, safe subset of Python."""

from __future__ import annotations

import ast
from typing import Any

from ...identity import identity_from_canonical
from ..compiled import CompiledExpression, ExpressionInfo, ParameterInfo
from ..limits import Limits
from .canonical import canonical_text
from .checker import CheckedLambda, parse_lambda
from .codegen import build_function
from .runtime import BUDGETED_FUNCTIONS, Budget


class LambdaLanguage:
    """``lambda **kw: ...`` and ``lambda x, y=0: ...`` over JSON parameters."""

    name = "lambda"

    def canonicalize(self, code: str, limits: Limits) -> str:
        return canonical_text(parse_lambda(code, limits).tree)

    def compile(self, code: str, limits: Limits) -> CompiledExpression:
        checked = parse_lambda(code, limits)
        canonical = canonical_text(checked.tree)
        function = build_function(checked, limits)
        entry: Any
        # loops and the functions that consume sequences run against a per-call budget
        if checked.has_comprehension or checked.functions & BUDGETED_FUNCTIONS:

            def entry(parameters: dict[str, Any]) -> Any:
                return function(parameters, Budget(limits))
        else:
            entry = function
        return CompiledExpression(
            self.name,
            canonical,
            identity_from_canonical(self.name, canonical),
            entry,
            _info(checked),
            limits,
        )


def _info(checked: CheckedLambda) -> ExpressionInfo:
    parameters = tuple(
        ParameterInfo(
            p.name,
            p.required,
            None if p.default is None else ast.literal_eval(p.default),
        )
        for p in checked.parameters
    )
    reads = set(checked.reads) | {p.name for p in checked.parameters}
    return ExpressionInfo(
        parameters=parameters,
        reads=tuple(sorted(reads)),
        accepts_any=checked.varkw is not None,
        functions=tuple(sorted(checked.functions)),
        node_count=checked.node_count,
        depth=checked.depth,
        loops=checked.has_comprehension,
        details={"dynamic_reads": checked.dynamic_reads, "varkw": checked.varkw},
    )
