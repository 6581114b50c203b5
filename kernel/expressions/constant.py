"""The built-in ``constant`` expression language: a JSON literal that is its own value."""

from __future__ import annotations

import json
from typing import Any

from ..errors import EvaluationLimitExceeded, ExpressionRejected
from ..identity import identity_from_canonical
from ..json_values import to_json_value
from .compiled import CompiledExpression, ExpressionInfo
from .limits import Limits


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


class ConstantLanguage:
    """``expression_code`` is JSON text, e.g. ``42`` or ``{"a": [1, 2]}``; invoking returns it."""

    name = "constant"

    def canonicalize(self, code: str, limits: Limits) -> str:
        if not isinstance(code, str):
            raise ExpressionRejected("expression_code must be a string")
        if len(code) > limits.max_source_chars:
            raise ExpressionRejected(
                f"expression is {len(code)} characters long; the limit is {limits.max_source_chars}"
            )
        try:
            value = json.loads(code, parse_constant=_refuse_constant)
        except json.JSONDecodeError as error:
            raise ExpressionRejected(
                f"invalid JSON: {error.msg}", error.lineno, error.colno
            ) from None
        except (ValueError, RecursionError) as error:
            raise ExpressionRejected(f"invalid JSON: {error}") from None
        try:
            to_json_value(value, limits.max_result_values, limits.max_int_bits)
        except EvaluationLimitExceeded as error:
            raise ExpressionRejected(f"the constant cannot be a result: {error.detail}") from None
        try:
            return json.dumps(
                value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
            )
        except ValueError:
            raise ExpressionRejected("invalid JSON: a number is out of range") from None

    def compile(self, code: str, limits: Limits) -> CompiledExpression:
        canonical = self.canonicalize(code, limits)

        def value(parameters: dict[str, Any]) -> Any:
            return json.loads(canonical)  # a fresh copy: callers may change what they get

        return CompiledExpression(
            self.name,
            canonical,
            identity_from_canonical(self.name, canonical),
            value,
            ExpressionInfo(details={"json": canonical}),
            limits,
        )
