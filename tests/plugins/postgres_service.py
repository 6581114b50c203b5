"""The PostgreSQL server tests reach (127.0.0.1:5432, database test, user postgres), and
a schema of a test's own there, dropped afterwards."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg

from butterflyfx.testing.services import missing

POSTGRES_DSN = (
    os.environ.get("BUTTERFLYFX_TEST_POSTGRES_DSN") or "postgresql://postgres@127.0.0.1:5432/test"
)


async def _run(sql: str) -> None:
    db = await asyncpg.connect(POSTGRES_DSN, timeout=3)
    try:
        await db.execute(sql)
    finally:
        await db.close()


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A new schema name on the test database; the schema is dropped afterwards."""
    try:
        asyncio.run(_run("SELECT 1"))
    except (OSError, TimeoutError, asyncpg.PostgresError) as error:
        missing(f"no PostgreSQL answers at {POSTGRES_DSN} ({error})")
    schema = f"bfx_test_{uuid.uuid4().hex[:12]}"
    try:
        yield schema
    finally:
        asyncio.run(_run(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
