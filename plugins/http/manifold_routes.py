"""``GET /api/manifold/evaluate?spiral=&level=&position=``: the kernel's manifold point.

A parameter that is not a number is a 400 naming it; a number outside its bound is a 422
naming the parameter and the bound (``minimum``, ``maximum``).
"""

from __future__ import annotations

import math
import re

from quart import Blueprint, Response, request
from quart_schema import document_querystring, document_response, tag_blueprint
from werkzeug.datastructures import MultiDict

from butterflyfx.core.auth import requires
from butterflyfx.core.context import ServerContext
from butterflyfx.core.problems import invalid
from butterflyfx.interface.machine.runtime import ManifoldPointBody, ManifoldQuery
from butterflyfx.kernel import manifold_point
from butterflyfx.kernel.manifold import MAX_LEVEL, MAX_POSITION, MAX_SPIRAL

from .json import json_response
from .querystring import MAX_DIGITS, refuse_unknown, required
from .runtime_routes import WORKER_HEADER
from .substrates import problems

PARAMETERS = ("spiral", "level", "position")
_INTEGER = re.compile(rf"[+-]?\d{{1,{MAX_DIGITS}}}")
_LONGEST_NUMBER = 64  # characters; past it a position is refused without parsing it


def whole(args: MultiDict[str, str], name: str, high: int) -> int:
    raw = required(args, name)
    if not _INTEGER.fullmatch(raw):
        raise invalid(name, f"{name} must be a whole number, not {raw[:32]!r}", status=400)
    value = int(raw)
    if not 0 <= value <= high:
        raise invalid(
            name, f"{name} must be from 0 to {high}, not {value}", minimum=0, maximum=high
        )
    return value


def position_of(args: MultiDict[str, str]) -> float:
    raw = required(args, "position")
    try:
        if len(raw) > _LONGEST_NUMBER or "_" in raw:
            raise ValueError(raw)
        value = float(raw)
    except ValueError:
        raise invalid(
            "position", f"position must be a number, not {raw[:32]!r}", status=400
        ) from None
    if not math.isfinite(value) or abs(value) > MAX_POSITION:
        raise invalid(
            "position", f"position must be within ±{MAX_POSITION:g}, not {raw[:32]}",
            minimum=-MAX_POSITION, maximum=MAX_POSITION,
        )  # fmt: skip
    return value


class ManifoldRoutes:
    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx

    def blueprint(self) -> Blueprint:
        bp = Blueprint("manifold", __name__, url_prefix="/api/manifold")
        tag_blueprint(bp, ["manifold"])
        bp.add_url_rule("/evaluate", view_func=self.evaluate_manifold, methods=["GET"])
        return bp

    @document_querystring(ManifoldQuery)
    @document_response(ManifoldPointBody, 200)
    @problems(400, 401, 403, 422)
    @requires("read")
    async def evaluate_manifold(self) -> Response:
        """The point at ``spiral`` (0 to 1000), ``level`` (0 to 6) and ``position``
        (within ±1e6) on the helix: ``theta = level * 2 pi / 7``, ``radius = spiral + 1``,
        ``x = radius cos theta``, ``y = position / 2``, ``z = radius sin theta``."""
        args = request.args
        refuse_unknown(args, PARAMETERS)
        point = manifold_point(
            whole(args, "spiral", MAX_SPIRAL), whole(args, "level", MAX_LEVEL), position_of(args)
        )
        return json_response(point.to_dict(), headers={WORKER_HEADER: self.ctx.worker_id})
