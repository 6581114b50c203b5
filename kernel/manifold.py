"""Manifold points, as evaluated by ``/api/manifold/evaluate``."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from .json_values import JSONValue

MAX_SPIRAL = 1000
MAX_LEVEL = 6
MAX_POSITION = 1e6


@dataclass(frozen=True)
class ManifoldPoint:
    """A point on the helix: ``theta = level * 2*pi/7``, ``r = spiral + 1``."""

    spiral: int
    level: int
    position: float
    theta: float
    radius: float
    x: float
    y: float
    z: float

    def to_dict(self) -> dict[str, JSONValue]:
        return asdict(self)


def _whole(name: str, value: object, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer from 0 to {high}")
    if not 0 <= value <= high:
        raise ValueError(f"{name} must be from 0 to {high}, not {value}")
    return value


def manifold_point(spiral: int, level: int, position: float) -> ManifoldPoint:
    """x = r cos theta, y = position / 2, z = r sin theta; ``ValueError`` names a broken bound."""
    spiral = _whole("spiral", spiral, MAX_SPIRAL)
    level = _whole("level", level, MAX_LEVEL)
    if (
        isinstance(position, bool)
        or not isinstance(position, int | float)
        or not math.isfinite(position)
    ):
        raise ValueError(f"position must be a finite number within ±{MAX_POSITION:g}")
    if abs(position) > MAX_POSITION:
        raise ValueError(f"position must be within ±{MAX_POSITION:g}, not {position}")
    theta = level * 2 * math.pi / 7
    radius = float(spiral + 1)
    return ManifoldPoint(
        spiral,
        level,
        float(position),
        theta,
        radius,
        radius * math.cos(theta),
        0.5 * float(position),
        radius * math.sin(theta),
    )
