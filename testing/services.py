"""The real services tests reach: Redis (and PostgreSQL, for the stores that use it) on
this machine. Where one does not answer, a test skips saying why; under
``BUTTERFLYFX_REQUIRE_SERVICES=1`` (CI) a missing service is a failure instead.

Each test gets a place of its own on the shared server, removed afterwards: a key prefix
on Redis (:func:`redis_prefix`), a schema on PostgreSQL (:func:`postgres_schema`). The
addresses come from ``BUTTERFLYFX_TEST_REDIS_URL`` and ``BUTTERFLYFX_TEST_POSTGRES_DSN``,
else the local defaults. The pytest plugin (:mod:`butterflyfx.testing.pytest_plugin`)
offers both as fixtures.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import asyncpg
import pytest
import redis

REDIS_URL = os.environ.get("BUTTERFLYFX_TEST_REDIS_URL") or "redis://127.0.0.1:6379/0"
POSTGRES_DSN = (
    os.environ.get("BUTTERFLYFX_TEST_POSTGRES_DSN") or "postgresql://postgres@127.0.0.1:5432/test"
)


def missing(reason: str) -> NoReturn:
    """Skip, or fail when the environment requires the services."""
    if os.environ.get("BUTTERFLYFX_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason}, and BUTTERFLYFX_REQUIRE_SERVICES=1 requires it")
    pytest.skip(reason)


def redis_client(url: str = REDIS_URL) -> redis.Redis:
    """A client of the Redis at ``url``, which answered PING; the caller closes it."""
    client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
    try:
        client.ping()
    except redis.RedisError as error:
        client.close()
        missing(f"no Redis answers at {url} ({error})")
    return client


@contextmanager
def redis_prefix(url: str = REDIS_URL) -> Iterator[str]:
    """A key prefix of the caller's own on that Redis; its keys are deleted afterwards."""
    client = redis_client(url)
    prefix = f"butterflyfx-test-{uuid.uuid4().hex[:12]}"
    try:
        yield prefix
    finally:
        for key in client.scan_iter(match=f"{prefix}:*"):
            client.delete(key)
        client.close()


async def _postgres_execute(dsn: str, sql: str) -> None:
    db = await asyncpg.connect(dsn, timeout=3)
    try:
        await db.execute(sql)
    finally:
        await db.close()


@contextmanager
def postgres_schema(dsn: str = POSTGRES_DSN) -> Iterator[str]:
    """A new schema name of the caller's own on the database at ``dsn`` (which answered);
    the schema, and whatever a store created in it, is dropped afterwards."""
    try:
        asyncio.run(_postgres_execute(dsn, "SELECT 1"))
    except (OSError, TimeoutError, asyncpg.PostgresError) as error:
        missing(f"no PostgreSQL answers at {dsn} ({error})")
    schema = f"bfx_test_{uuid.uuid4().hex[:12]}"
    try:
        yield schema
    finally:
        asyncio.run(_postgres_execute(dsn, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
