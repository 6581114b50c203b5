"""A compiled expression: what every expression language hands back to the kernel."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import EvaluationError, EvaluationLimitExceeded, KernelError
from ..json_values import JSONValue, to_json_value
from .limits import Limits

_FAST = frozenset({str, bool, type(None)})


@dataclass(frozen=True)
class ParameterInfo:
    """A named parameter: its name, whether it must be given, and its default."""

    name: str
    required: bool
    default: JSONValue = None


@dataclass(frozen=True)
class ExpressionInfo:
    """What static analysis learned about an expression (used by divide's dimensions)."""

    parameters: tuple[ParameterInfo, ...] = ()
    reads: tuple[str, ...] = ()
    accepts_any: bool = False
    functions: tuple[str, ...] = ()
    node_count: int = 0
    depth: int = 0
    loops: bool = False
    details: Mapping[str, JSONValue] = field(default_factory=dict)


class CompiledExpression:
    """An expression checked and compiled once, ready to be invoked many times.

    ``invoke`` never lets anything but a JSON value out, and never lets anything but a
    ``KernelError`` (``EvaluationError`` or ``EvaluationLimitExceeded``) be raised.
    """

    __slots__ = ("expression_type", "canonical", "identity", "info", "limits", "_function")

    def __init__(
        self,
        expression_type: str,
        canonical: str,
        identity: int,
        function: Callable[[dict[str, Any]], Any],
        info: ExpressionInfo,
        limits: Limits,
    ) -> None:
        self.expression_type = expression_type
        self.canonical = canonical
        self.identity = identity
        self.info = info
        self.limits = limits
        self._function = function

    def invoke(self, parameters: Mapping[str, Any] | None = None) -> JSONValue:
        """Evaluate with ``parameters`` (a mapping of names to JSON values)."""
        if type(parameters) is not dict:
            parameters = _as_parameters(parameters)
        try:
            result = self._function(parameters)
        except KernelError:
            raise
        except RecursionError:
            raise EvaluationLimitExceeded(
                "max_depth", self.limits.max_depth, "the values are nested too deeply to evaluate"
            ) from None
        except MemoryError:
            raise EvaluationLimitExceeded(
                "max_retained_units",
                self.limits.max_retained_units,
                "the evaluation ran out of memory",
            ) from None
        except Exception as error:  # every other failure is the expression's, not ours
            raise EvaluationError(type(error).__name__, str(error)) from None
        kind = type(result)
        if kind in _FAST:
            return result  # type: ignore[no-any-return]
        if kind is int and result.bit_length() <= self.limits.max_int_bits:
            return result  # type: ignore[no-any-return]
        return to_json_value(result, self.limits.max_result_values, self.limits.max_int_bits)

    def __repr__(self) -> str:
        return f"<CompiledExpression {self.expression_type} 0x{self.identity:016X}>"


def _as_parameters(parameters: Mapping[str, Any] | None) -> dict[str, Any]:
    if parameters is None:
        return {}
    if not isinstance(parameters, Mapping):
        raise EvaluationError("TypeError", "parameters must be an object of names to values")
    result = dict(parameters)
    for key in result:
        if type(key) is not str:
            raise EvaluationError("TypeError", "parameter names must be strings")
    return result
