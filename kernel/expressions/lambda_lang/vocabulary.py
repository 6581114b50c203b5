"""The names a ``lambda`` expression may use: the function table and the constants."""

from __future__ import annotations

# Functions callable by name, with the keyword arguments each accepts.
FUNCTION_KEYWORDS: dict[str, frozenset[str]] = {
    "abs": frozenset(),
    "min": frozenset({"default"}),
    "max": frozenset({"default"}),
    "sum": frozenset({"start"}),
    "len": frozenset(),
    "round": frozenset({"ndigits"}),
    "int": frozenset({"base"}),
    "float": frozenset(),
    "bool": frozenset(),
    "str": frozenset(),
    "sorted": frozenset({"reverse"}),
    "range": frozenset(),
    "all": frozenset(),
    "any": frozenset(),
    "sqrt": frozenset(),
    "exp": frozenset(),
    "log": frozenset(),
    "log2": frozenset(),
    "log10": frozenset(),
    "sin": frozenset(),
    "cos": frozenset(),
    "tan": frozenset(),
    "asin": frozenset(),
    "acos": frozenset(),
    "atan": frozenset(),
    "atan2": frozenset(),
    "hypot": frozenset(),
    "floor": frozenset(),
    "ceil": frozenset(),
    "fabs": frozenset(),
    "gcd": frozenset(),
    "factorial": frozenset(),
    "isfinite": frozenset(),
}

FUNCTIONS = frozenset(FUNCTION_KEYWORDS)
CONSTANTS = frozenset({"pi", "e", "tau"})
RESERVED = FUNCTIONS | CONSTANTS
