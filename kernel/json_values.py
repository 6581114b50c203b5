"""Turning evaluation results into JSON values that are always valid on the wire.

Treatment (documented in docs/kernel.md):
- NaN, +infinity and -infinity become the strings ``"NaN"``, ``"Infinity"`` and
  ``"-Infinity"`` (the protobuf JSON mapping's spelling), never bare tokens that
  strict JSON parsers refuse.
- tuples become lists; sets become sorted lists (mixed types: by type name, then value).
- dict keys that are ints, floats, bools or None become strings as ``json`` writes them;
  any other key type is an error.
- anything else (a range, a generator, a complex number) is an ``EvaluationError``.
"""

from __future__ import annotations

import math
from typing import Any, TypeAlias

from .errors import EvaluationError, EvaluationLimitExceeded

JSONValue: TypeAlias = None | bool | int | float | str | list["JSONValue"] | dict[str, "JSONValue"]

_SCALARS = frozenset({str, bool, type(None)})
_NON_FINITE = {math.inf: "Infinity", -math.inf: "-Infinity"}


def _float(value: float) -> float | str:
    if value != value:
        return "NaN"
    return _NON_FINITE.get(value, value)


def _key(key: Any) -> str:
    kind = type(key)
    if kind is str:
        return key  # type: ignore[no-any-return]
    if kind is bool or key is None:
        return {True: "true", False: "false", None: "null"}[key]
    if kind is int:
        return str(key)
    if kind is float:
        converted = _float(key)
        return converted if isinstance(converted, str) else repr(converted)
    raise EvaluationError("TypeError", f"dict key of type {kind.__name__} is not a JSON key")


def to_json_value(value: Any, max_values: int, max_int_bits: int) -> JSONValue:
    """Convert ``value`` to a JSON value, counting at most ``max_values`` values."""
    kind = type(value)
    if kind in _SCALARS:
        return value  # type: ignore[no-any-return]
    if kind is int:
        if value.bit_length() > max_int_bits:
            raise EvaluationLimitExceeded(
                "max_int_bits", max_int_bits, "the result is an integer too large"
            )
        return value  # type: ignore[no-any-return]
    if kind is float:
        return _float(value)
    counter = [0]
    return _convert(value, counter, max_values, max_int_bits, 0)


def _count(counter: list[int], max_values: int) -> None:
    counter[0] += 1
    if counter[0] > max_values:
        raise EvaluationLimitExceeded(
            "max_result_values", max_values, "the result holds too many values"
        )


def _convert(
    value: Any, counter: list[int], max_values: int, max_bits: int, depth: int
) -> JSONValue:
    _count(counter, max_values)
    kind = type(value)
    if kind in _SCALARS:
        return value  # type: ignore[no-any-return]
    if kind is int:
        if value.bit_length() > max_bits:
            raise EvaluationLimitExceeded(
                "max_int_bits", max_bits, "the result holds an integer too large"
            )
        return value  # type: ignore[no-any-return]
    if kind is float:
        return _float(value)
    if depth > 100:
        raise EvaluationLimitExceeded("max_result_depth", 100, "the result is nested too deeply")
    if kind is list or kind is tuple:
        return [_convert(item, counter, max_values, max_bits, depth + 1) for item in value]
    if kind is set or kind is frozenset:
        items = [_convert(item, counter, max_values, max_bits, depth + 1) for item in value]
        try:
            items.sort()
        except TypeError:
            # mixed types: order by type, then value, never by the process's hash seed
            items.sort(key=lambda item: (type(item).__name__, repr(item)))
        return items
    if kind is dict:
        return {
            _key(key): _convert(item, counter, max_values, max_bits, depth + 1)
            for key, item in value.items()
        }
    raise EvaluationError("TypeError", f"a value of type {kind.__name__} is not a JSON value")
