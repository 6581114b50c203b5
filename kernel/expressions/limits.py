"""The static and runtime limits every expression is held to."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Limits:
    """Bounds that turn every abusive expression into a typed error.

    Static limits are checked when an expression is compiled; runtime limits while it
    runs. The defaults are the documented ones (docs/kernel.md); a deployment may
    tighten or loosen them.
    """

    # static
    max_source_chars: int = 2_000
    max_nodes: int = 300
    max_depth: int = 40
    # runtime
    max_int_bits: int = 4_096
    max_string_chars: int = 100_000
    max_sequence_items: int = 10_000
    max_iterations: int = 100_000
    max_result_values: int = 10_000
    # Everything comprehensions keep (characters of strings, items of sequences),
    # summed over one invocation: bounds the memory a loop can hold on to.
    max_retained_units: int = 10_000_000
    # Characters and items that sorted/min/max may compare in one invocation: comparing
    # long strings is where a short expression can hide seconds of work.
    max_comparison_units: int = 20_000_000
    max_seconds: float = 0.5
    clock: Callable[[], float] = field(default=time.perf_counter, compare=False, repr=False)


DEFAULT_LIMITS = Limits()
