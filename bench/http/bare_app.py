"""The baseline of the HTTP benchmark: a bare Quart app with our two hottest routes.

No plugins, no request validation, no middleware, no ETag, no invocation counting. It
still does the work any honest implementation must: it reads the substrate row from the
same SQLite file our server wrote, through aiosqlite (our store's driver), one read-only
connection per worker; it compiles each expression once with the kernel, cached by
identity, and invokes it; it answers the same JSON fields with orjson (our server's JSON
engine). So ours/bare measures what our layers cost, not a different database or parser.

Run by ``bench/http/run.py`` on Hypercorn; ``BENCH_BARE_DATABASE`` names the SQLite file.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import aiosqlite
import orjson
from quart import Quart, Response, request

from butterflyfx.kernel import CompiledExpression, compile_expression

DATABASE_VARIABLE = "BENCH_BARE_DATABASE"
TENANT = "default"  # every request acts for it until an auth plugin supplies principals
KEY_OFFSET = 2**63  # the store keeps identity - 2**63 as a signed BIGINT
_SELECT = (
    "SELECT expression_type, expression_code, metadata, created_at, updated_at, version "
    "FROM substrates WHERE tenant = ? AND identity_key = ?"
)
_NOT_FOUND = Response(b'{"status":404}', 404, content_type="application/json")

app = Quart(__name__)
_database: aiosqlite.Connection | None = None
_compiled: dict[tuple[str, int], CompiledExpression] = {}


@app.before_serving
async def open_database() -> None:
    global _database
    path = os.environ[DATABASE_VARIABLE]
    _database = await aiosqlite.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)


@app.after_serving
async def close_database() -> None:
    if _database is not None:
        await _database.close()


async def _row(substrate_id: str) -> tuple[int, Any] | None:
    try:
        identity = int(substrate_id, 16)
    except ValueError:
        return None
    assert _database is not None
    rows = list(await _database.execute_fetchall(_SELECT, (TENANT, identity - KEY_OFFSET)))
    return (identity, rows[0]) if rows else None


def _json(body: dict[str, Any]) -> Response:
    return Response(orjson.dumps(body), 200, content_type="application/json")


@app.get("/api/v1/substrates/<substrate_id>")
async def get_substrate(substrate_id: str) -> Response:
    found = await _row(substrate_id)
    if found is None:
        return _NOT_FOUND
    identity, (expression_type, code, metadata, created_at, updated_at, version) = found
    return _json(
        {
            "substrate_id": f"0x{identity:016X}",
            "identity": identity,
            "created_at": created_at,
            "expression_type": expression_type,
            "expression_code": code,
            "metadata": json.loads(metadata),
            "updated_at": updated_at,
            "version": version,
        }
    )


@app.post("/api/v1/substrates/<substrate_id>/invoke")
async def invoke_substrate(substrate_id: str) -> Response:
    body = orjson.loads(await request.get_data())
    found = await _row(substrate_id)
    if found is None:
        return _NOT_FOUND
    identity, (expression_type, code, *_) = found
    compiled = _compiled.get((expression_type, identity))
    if compiled is None:
        compiled = _compiled[(expression_type, identity)] = compile_expression(
            expression_type, code
        )
    started = time.perf_counter()
    result = compiled.invoke(body.get("parameters") or {})
    elapsed_ms = (time.perf_counter() - started) * 1000
    return _json(
        {
            "substrate_id": f"0x{identity:016X}",
            "result": result,
            "invocation_time_ms": round(elapsed_ms, 6),
        }
    )
