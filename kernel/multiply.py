"""``multiply``: one verb for both ways substrates multiply."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .dimensions import Dimension, Division, rebuild
from .expressions import DEFAULT_LIMITS, ExpressionLanguage, Limits
from .product import compose_product
from .substrate import Substrate


def multiply(
    *items: Division | Sequence[Dimension | Mapping[str, Any]] | Substrate,
    limits: Limits = DEFAULT_LIMITS,
    languages: Mapping[str, ExpressionLanguage] | None = None,
) -> Substrate:
    """``multiply(division)`` rebuilds the substrate divided; ``multiply(a, b, ...)`` composes a·b·…

    Rebuilding raises ``InconsistentDimensions`` for tampered dimensions; composing raises
    ``ExpressionRejected`` when the product would pass the static limits.
    """
    if items and all(isinstance(item, Substrate) for item in items):
        if len(items) == 1:
            return items[0]  # type: ignore[return-value]
        return compose_product(list(items), limits=limits, languages=languages)  # type: ignore[arg-type]
    if len(items) != 1:
        raise TypeError("multiply takes one set of dimensions, or two or more substrates")
    return rebuild(items[0], limits=limits, languages=languages)  # type: ignore[arg-type]
