"""The baseline of the HTTP benchmark: a bare Quart app with our two hottest routes.

No plugins, no request validation, no middleware, no ETag, no invocation counting. It
still does the work any honest implementation must: it reads the substrate's row from the
same engine our server wrote it to, through our store's driver, and decodes it; it
compiles each expression once with the kernel, cached by identity, and invokes it; it
answers the same JSON fields with orjson (our server's JSON engine). So ours/bare measures
what our layers cost, not a different database, driver or parser.

``BENCH_BARE_ENGINE`` picks the engine, each read the way a plain app would read it:

- ``sqlite`` (default): ``BENCH_BARE_DATABASE`` names the file; aiosqlite, one read-only
  connection per worker.
- ``postgres``: ``BENCH_BARE_DSN`` and ``BENCH_BARE_SCHEMA``; an asyncpg pool per worker
  (1 to 10 connections, as ``storage.postgres`` keeps), one ``fetch`` per request.
- ``redis``: ``BENCH_BARE_REDIS_URL`` and ``BENCH_BARE_PREFIX``; redis-py's asyncio client,
  one HMGET of the substrate's hash (``{prefix}:{tenant}:s:{16 hex digits}``, the layout
  of ``storage.redis``) per request.

The tables and keys are written out here rather than imported from our plugins, so that
the baseline owes nothing to our code but the kernel; bench/http/test_harness.py checks
that it answers what our server answers on every engine.

Run by ``bench/http/run.py`` on Hypercorn.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Protocol

import orjson
from quart import Quart, Response, request

from butterflyfx.kernel import CompiledExpression, compile_expression

TENANT = "default"  # the tenant of the benchmark's API key
KEY_OFFSET = 2**63  # SQL stores keep identity - 2**63 as a signed BIGINT
REDIS_FIELDS = ("t", "c", "m", "ca", "ua", "v")  # storage.redis's hash: JSON text, times
_COLUMNS = "expression_type, expression_code, metadata, created_at, updated_at, version"
_NOT_FOUND = Response(b'{"status":404}', 404, content_type="application/json")

# expression type, code, metadata (JSON text), created at, updated at, version
Row = tuple[str, str, Any, str | None, str | None, int]


class Rows(Protocol):
    async def open(self) -> None: ...
    async def row(self, identity: int) -> Row | None: ...
    async def close(self) -> None: ...


class SqliteRows:
    async def open(self) -> None:
        import aiosqlite

        path = os.environ["BENCH_BARE_DATABASE"]
        self.db = await aiosqlite.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
        self.sql = f"SELECT {_COLUMNS} FROM substrates WHERE tenant = ? AND identity_key = ?"

    async def row(self, identity: int) -> Row | None:
        rows = list(await self.db.execute_fetchall(self.sql, (TENANT, identity - KEY_OFFSET)))
        return tuple(rows[0]) if rows else None  # type: ignore[return-value]

    async def close(self) -> None:
        await self.db.close()


class PostgresRows:
    async def open(self) -> None:
        import asyncpg

        self.pool = await asyncpg.create_pool(
            os.environ["BENCH_BARE_DSN"], min_size=1, max_size=10,
            server_settings={"search_path": os.environ["BENCH_BARE_SCHEMA"]},
        )  # fmt: skip
        self.sql = f"SELECT {_COLUMNS} FROM substrates WHERE tenant = $1 AND identity_key = $2"

    async def row(self, identity: int) -> Row | None:
        rows = await self.pool.fetch(self.sql, TENANT, identity - KEY_OFFSET)
        return tuple(rows[0]) if rows else None  # type: ignore[return-value]

    async def close(self) -> None:
        await self.pool.close()


class RedisRows:
    async def open(self) -> None:
        import redis.asyncio

        self.client = redis.asyncio.Redis.from_url(
            os.environ["BENCH_BARE_REDIS_URL"], socket_connect_timeout=5.0, socket_timeout=30.0
        )
        self.base = f"{os.environ['BENCH_BARE_PREFIX']}:{TENANT}:s:"

    async def row(self, identity: int) -> Row | None:
        kind, code, metadata, created, updated, version = await self.client.hmget(
            f"{self.base}{identity:016x}", REDIS_FIELDS
        )
        if kind is None:
            return None
        return (
            json.loads(kind),
            json.loads(code),
            metadata,
            created.decode() or None,
            updated.decode() or None,
            int(version),
        )

    async def close(self) -> None:
        await self.client.aclose()


ENGINES: dict[str, type[Rows]] = {
    "sqlite": SqliteRows,
    "postgres": PostgresRows,
    "redis": RedisRows,
}

app = Quart(__name__)
_rows: Rows | None = None
_compiled: dict[tuple[str, int], CompiledExpression] = {}


@app.before_serving
async def open_rows() -> None:
    global _rows
    _rows = ENGINES[os.environ.get("BENCH_BARE_ENGINE") or "sqlite"]()
    await _rows.open()


@app.after_serving
async def close_rows() -> None:
    if _rows is not None:
        await _rows.close()


async def _row(substrate_id: str) -> tuple[int, Row] | None:
    try:
        identity = int(substrate_id, 16)
    except ValueError:
        return None
    if not 0 <= identity < 2**64:
        return None
    assert _rows is not None
    found = await _rows.row(identity)
    return (identity, found) if found is not None else None


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
