"""What a compiled lambda runs with: guarded operators, the function table, the budget.

Compiled code has no builtins. Every operator that can build a large value from small
ones is replaced by a guard that checks the size *before* the value is built; every
comprehension step is charged to a per-invocation ``Budget`` that also enforces the
wall-clock deadline. Nothing here can reach the interpreter beyond the values given.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Callable, Iterator
from typing import Any

from ...errors import EvaluationError, EvaluationLimitExceeded
from ..limits import Limits

_SIZED = (str, list, tuple, set, frozenset, dict, range)


class Budget:
    """What one invocation may still spend: loop iterations, retained values, time."""

    __slots__ = ("limits", "iterations", "retained", "compared", "deadline")

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.iterations = 0
        self.retained = 0
        self.compared = 0
        self.deadline = limits.clock() + limits.max_seconds

    def compare(self, units: int, what: str) -> None:
        """Charge the comparisons a sort or a min/max is about to make."""
        self.compared += units
        if self.compared > self.limits.max_comparison_units:
            raise EvaluationLimitExceeded(
                "max_comparison_units",
                self.limits.max_comparison_units,
                f"{what} would compare too much data",
            )
        if self.limits.clock() > self.deadline:
            raise EvaluationLimitExceeded(
                "max_seconds", self.limits.max_seconds, "the evaluation took too long"
            )

    def step(self, count: int = 1) -> None:
        self.iterations += count
        if self.iterations > self.limits.max_iterations:
            raise EvaluationLimitExceeded(
                "max_iterations", self.limits.max_iterations, "too many loop iterations"
            )
        if self.limits.clock() > self.deadline:
            raise EvaluationLimitExceeded(
                "max_seconds", self.limits.max_seconds, "the evaluation took too long"
            )

    def retain(self, value: Any) -> Any:
        if isinstance(value, _SIZED):
            self.retained += len(value) + 1
        else:
            self.retained += 1
        if self.retained > self.limits.max_retained_units:
            raise EvaluationLimitExceeded(
                "max_retained_units",
                self.limits.max_retained_units,
                "comprehensions kept too many values",
            )
        return value


class Guards:
    """The operator guards and safe functions for one set of limits."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.max_bits = limits.max_int_bits
        self.max_chars = limits.max_string_chars
        self.max_items = limits.max_sequence_items

    # -- size checks ----------------------------------------------------------------
    def too_big_int(self, what: str) -> EvaluationLimitExceeded:
        return EvaluationLimitExceeded(
            "max_int_bits", self.max_bits, f"{what} would exceed the integer size limit"
        )

    def check_size(self, kind: type, size: int, what: str) -> None:
        if kind is str:
            if size > self.max_chars:
                raise EvaluationLimitExceeded(
                    "max_string_chars",
                    self.max_chars,
                    f"{what} would build a string of {size} characters",
                )
        elif size > self.max_items:
            raise EvaluationLimitExceeded(
                "max_sequence_items",
                self.max_items,
                f"{what} would build a sequence of {size} items",
            )

    def check_weight(self, value: Any, what: str) -> Any:
        """Refuse a container whose items, counted through every level of nesting, pass the limit.

        Counting nested items closes the gap that shared structure opens: ``[[0]*10000]*10000``
        is short at the top but ten million items deep, and comparing or sorting it would
        take that long.
        """
        if weight(value, self.max_items) > self.max_items:
            raise EvaluationLimitExceeded(
                "max_sequence_items",
                self.max_items,
                f"{what} would build a value of more than {self.max_items} items",
            )
        return value

    def check_int(self, value: Any, what: str) -> Any:
        if type(value) is int and value.bit_length() > self.max_bits:
            raise self.too_big_int(what)
        return value

    # -- operators ------------------------------------------------------------------
    def mul(self, a: Any, b: Any) -> Any:
        ta, tb = type(a), type(b)
        if ta is int and tb is int:
            if a.bit_length() + b.bit_length() - 1 > self.max_bits:
                raise self.too_big_int("multiplication")
            result = a * b
            if result.bit_length() > self.max_bits:
                raise self.too_big_int("multiplication")
            return result
        if ta is float or tb is float:
            return a * b
        if isinstance(a, _SIZED) and isinstance(b, int):
            return self.repeat(a, b)
        if isinstance(b, _SIZED) and isinstance(a, int):
            return self.repeat(b, a)
        return self.check_int(a * b, "multiplication")

    def repeat(self, sequence: Any, times: int) -> Any:
        kind = type(sequence)
        times = max(int(times), 0)
        if kind is str:
            self.check_size(str, len(sequence) * times, "repetition")
        elif kind in (list, tuple):
            self.check_size(list, weight(sequence, self.max_items) * times, "repetition")
        return sequence * times

    def add(self, a: Any, b: Any) -> Any:
        ta = type(a)
        if ta is str and type(b) is str:
            self.check_size(str, len(a) + len(b), "concatenation")
        elif ta in (list, tuple) and type(b) is ta:
            self.check_size(
                list, weight(a, self.max_items) + weight(b, self.max_items), "concatenation"
            )
        return a + b

    def pow(self, a: Any, b: Any) -> Any:
        if isinstance(a, int) and isinstance(b, int) and b > 0:
            bits = abs(int(a)).bit_length()
            if bits > 1 and (bits - 1) * b > self.max_bits:
                raise self.too_big_int("exponentiation")
        result = a**b
        if type(result) is complex:
            raise EvaluationError("ValueError", "the power has a complex result")
        return self.check_int(result, "exponentiation")

    def lshift(self, a: Any, b: Any) -> Any:
        if isinstance(a, int) and isinstance(b, int) and b > 0:
            if abs(int(a)).bit_length() + b > self.max_bits:
                raise self.too_big_int("left shift")
        return a << b

    def mod(self, a: Any, b: Any) -> Any:
        if isinstance(a, str | bytes):
            raise EvaluationError("TypeError", "%-formatting of strings is not allowed")
        return a % b

    def bitor(self, a: Any, b: Any) -> Any:
        return self._union(a, b, operator.or_)

    def bitxor(self, a: Any, b: Any) -> Any:
        return self._union(a, b, operator.xor)

    def _union(self, a: Any, b: Any, op: Callable[[Any, Any], Any]) -> Any:
        if isinstance(a, set | frozenset | dict) and isinstance(b, set | frozenset | dict):
            return self.check_weight(op(a, b), "union")
        return op(a, b)

    # -- iteration ------------------------------------------------------------------
    def iterate(self, budget: Budget, iterable: Any) -> Iterator[Any]:
        """The iterator of a comprehension's ``for``: every step is charged."""
        for item in iterable:
            budget.step()
            yield item

    def bounded_list(self, budget: Budget | None, iterable: Any, what: str) -> list[Any]:
        """Materialise what a function consumes, refusing more than the limits allow."""
        if isinstance(iterable, _SIZED):
            size = len(iterable)
            if size > self.limits.max_iterations:
                raise EvaluationLimitExceeded(
                    "max_iterations",
                    self.limits.max_iterations,
                    f"{what} would iterate {size} times",
                )
            if budget is not None:
                budget.step(size)
            return list(iterable)
        if not isinstance(iterable, Iterator):
            raise EvaluationError(
                "TypeError", f"{what} needs an iterable, not {type(iterable).__name__}"
            )
        items = []
        for item in iterable:
            items.append(item)
            if len(items) > self.limits.max_iterations:
                raise EvaluationLimitExceeded(
                    "max_iterations", self.limits.max_iterations, f"{what} iterated too many times"
                )
        return items

    def collection(self, value: Any) -> Any:
        """The result of a list, set or dict comprehension, held to the size limit."""
        return self.check_weight(value, "a comprehension")


@functools.lru_cache(maxsize=8)
def build_namespace(limits: Limits) -> dict[str, Any]:
    """The globals a compiled lambda runs in: guards, functions, constants, no builtins.

    Shared by every lambda compiled under the same limits: compiled code only reads it.
    """
    guards = Guards(limits)
    max_iter = limits.max_iterations

    def _items(budget: Budget | None, args: tuple[Any, ...], what: str) -> list[Any]:
        if len(args) == 1:
            return guards.bounded_list(budget, args[0], what)
        return list(args)

    def _range(*args: Any) -> range:
        for arg in args:
            if not isinstance(arg, int):
                raise EvaluationError(
                    "TypeError", f"range() needs integers, not {type(arg).__name__}"
                )
        result = range(*args)
        if len(result) > max_iter:
            raise EvaluationLimitExceeded(
                "max_iterations", max_iter, f"range of {len(result)} items"
            )
        return result

    def _sum(budget: Budget | None, iterable: Any, start: Any = 0) -> Any:
        total = start
        for item in guards.bounded_list(budget, iterable, "sum()"):
            if type(item) not in (int, float, bool):
                raise EvaluationError("TypeError", f"sum() adds numbers, not {type(item).__name__}")
            total = total + item
        if type(total) not in (int, float, bool):
            raise EvaluationError("TypeError", "sum() adds numbers only")
        return guards.check_int(total, "sum()")

    def _charge(budget: Budget | None, items: list[Any], rounds: int, what: str) -> None:
        units = len(items) * rounds * comparison_size(items, limits.max_comparison_units)
        if budget is not None:
            budget.compare(units, what)
        elif units > limits.max_comparison_units:
            raise EvaluationLimitExceeded(
                "max_comparison_units", limits.max_comparison_units,
                f"{what} would compare too much data",
            )  # fmt: skip

    def _min(budget: Budget | None, *args: Any, **kwargs: Any) -> Any:
        items = _items(budget, args, "min()")
        _charge(budget, items, 1, "min()")
        return min(items, **kwargs)

    def _max(budget: Budget | None, *args: Any, **kwargs: Any) -> Any:
        items = _items(budget, args, "max()")
        _charge(budget, items, 1, "max()")
        return max(items, **kwargs)

    def _sorted(budget: Budget | None, iterable: Any, reverse: bool = False) -> list[Any]:
        items = guards.check_weight(guards.bounded_list(budget, iterable, "sorted()"), "sorted()")
        _charge(budget, items, max(1, len(items).bit_length()), "sorted()")
        return sorted(items, reverse=bool(reverse))

    def _all(budget: Budget | None, iterable: Any) -> bool:
        return all(guards.bounded_list(budget, iterable, "all()"))

    def _any(budget: Budget | None, iterable: Any) -> bool:
        return any(guards.bounded_list(budget, iterable, "any()"))

    def _len(value: Any) -> int:
        if isinstance(value, Iterator):
            raise EvaluationError("TypeError", "len() of a generator")
        return len(value)

    def _str(value: Any = "") -> str:
        if type(value) is str:
            return value
        if isinstance(value, Iterator):
            raise EvaluationError("TypeError", "str() of a generator")
        if _estimate_text(value, guards.max_chars) > guards.max_chars:
            raise EvaluationLimitExceeded(
                "max_string_chars", guards.max_chars, "str() would build a string too long"
            )
        text = str(value)
        guards.check_size(str, len(text), "str()")
        return text

    def _int(value: Any = 0, base: Any = None) -> int:
        result = int(value) if base is None else int(value, base)
        return guards.check_int(result, "int()")  # type: ignore[no-any-return]

    def _round(value: Any, ndigits: Any = None) -> Any:
        if ndigits is None:
            return round(value)
        if (
            type(value) in (int, bool)
            and isinstance(ndigits, int)
            and ndigits < -(guards.max_bits // 3 + 2)
        ):
            return 0  # CPython would build 10**-ndigits first; the answer is known to be 0
        return round(value, ndigits)

    def _factorial(value: Any) -> int:
        if isinstance(value, int) and value > 2 * guards.max_bits:
            raise guards.too_big_int("factorial()")
        return guards.check_int(math.factorial(value), "factorial()")  # type: ignore[no-any-return]

    def _gcd(*args: Any) -> int:
        return math.gcd(*args)

    namespace: dict[str, Any] = {
        "__builtins__": {},
        "_g_mul": guards.mul,
        "_g_add": guards.add,
        "_g_pow": guards.pow,
        "_g_lshift": guards.lshift,
        "_g_mod": guards.mod,
        "_g_bitor": guards.bitor,
        "_g_bitxor": guards.bitxor,
        "_g_iter": guards.iterate,
        "_g_coll": guards.collection,
        "_g_missing": _missing,
        # functions that consume an iterable take the budget as a first, hidden argument
        "sum": _sum,
        "min": _min,
        "max": _max,
        "sorted": _sorted,
        "all": _all,
        "any": _any,
        # the rest are called as written
        "abs": abs,
        "len": _len,
        "round": _round,
        "int": _int,
        "float": float,
        "bool": bool,
        "str": _str,
        "range": _range,
        "sqrt": math.sqrt,
        "exp": math.exp,
        "log": math.log,
        "log2": math.log2,
        "log10": math.log10,
        "sin": math.sin,
        "cos": math.cos,
        "tan": math.tan,
        "asin": math.asin,
        "acos": math.acos,
        "atan": math.atan,
        "atan2": math.atan2,
        "hypot": math.hypot,
        "floor": math.floor,
        "ceil": math.ceil,
        "fabs": math.fabs,
        "gcd": _gcd,
        "factorial": _factorial,
        "isfinite": math.isfinite,
        "pi": math.pi,
        "e": math.e,
        "tau": math.tau,
    }
    return namespace


BUDGETED_FUNCTIONS = frozenset({"sum", "min", "max", "sorted", "all", "any"})


def _missing(name: str) -> None:
    raise EvaluationError("MissingParameter", f"missing parameter {name!r}")


def _estimate_text(value: Any, ceiling: int) -> int:
    """An upper estimate of len(str(value)), stopping as soon as it passes ``ceiling``."""
    total = 0
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str:
            total += len(item) * 4 + 2  # escapes widen most characters to at most \\xNN
        elif kind is int:
            total += item.bit_length() // 3 + 2
        elif kind in (list, tuple, set, frozenset):
            total += 2 + 2 * len(item)
            stack.extend(item)
        elif kind is dict:
            total += 2 + 4 * len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        else:
            total += 32
        if total > ceiling:
            return total
    return total


def weight(value: Any, ceiling: int) -> int:
    """Items in ``value`` counted through every level of nesting, stopping past ``ceiling``."""
    if type(value) not in _CONTAINERS:
        return 1
    total = 0
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        total += len(item)
        if total > ceiling:
            break
        nested = item.values() if type(item) is dict else item
        stack.extend(entry for entry in nested if type(entry) in _CONTAINERS)
    return total


_CONTAINERS = frozenset({list, tuple, set, frozenset, dict})


def comparison_size(items: list[Any], ceiling: int) -> int:
    """The most characters and items one comparison between two of ``items`` can touch."""
    largest = 1
    for item in items:
        kind = type(item)
        if kind is str:
            size = len(item)
        elif kind in _CONTAINERS:
            size = 0
            stack: list[Any] = [item]
            while stack and size <= ceiling:
                value = stack.pop()
                if type(value) is str:
                    size += len(value)
                elif type(value) in _CONTAINERS:
                    size += len(value)
                    stack.extend(value.values() if type(value) is dict else value)
        else:
            continue
        if size > largest:
            largest = size
    return largest
