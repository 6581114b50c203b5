"""The real services tests reach: Redis (and PostgreSQL, for the stores that use it) on
this machine. Where one does not answer, a test skips saying why; under
``BUTTERFLYFX_REQUIRE_SERVICES=1`` (CI) a missing service is a failure instead."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import pytest
import redis

REDIS_URL = os.environ.get("BUTTERFLYFX_TEST_REDIS_URL") or "redis://127.0.0.1:6379/0"


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
