"""The connection every part of the Redis store shares: opening, closing, running a
script, reading a page of a sorted set atomically, and health.

No call waits without bound: connecting takes at most ``connect_timeout`` seconds and a
command ``command_timeout``, retried once at once (a connection Redis dropped is opened
again). A Redis that is away raises :class:`~butterflyfx.core.store.StoreUnavailable`
from every method of the store (:func:`outage`); the client reconnects by itself once
Redis answers again.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from butterflyfx.core.store import StoreUnavailable

from .codec import MAX_IDENTITY, after_bound
from .scripts import SCRIPTS, script_text

DEFAULT_URL = "redis://127.0.0.1:6379/0"
SEARCH_BATCH = 256  # items read at a time when Python must filter them
HEALTH_TIMEOUT = 5.0  # seconds readiness waits for Redis before it reports it down
PLUGIN = "storage.redis"
# Redis away: refused, reset or timed-out sockets, still loading its data after a restart
# (BusyLoadingError is a ConnectionError), or a replica that a failover left read-only.
OUTAGES: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    ReadOnlyError,
    OSError,
    TimeoutError,
)


class RedisStoreError(Exception):
    """The Redis server cannot be used; the message names it and says why."""


def masked_url(url: str) -> str:
    """The URL with its password replaced by ``***``."""
    return re.sub(r"(//[^:/@]*:)[^@/]*@", r"\1***@", url)


def outage(store: RedisConnection, error: Exception) -> StoreUnavailable | None:
    """StoreUnavailable when ``error`` says Redis is away, else None (a bug stays a bug)."""
    if not isinstance(error, OUTAGES):
        return None
    said = masked_url(str(error)) or "no answer in time"
    return StoreUnavailable(PLUGIN, f"{store.where}: {type(error).__name__}: {said}")


def page_args(limit: int, after: int | None) -> tuple[int, str] | None:
    if limit <= 0 or (after is not None and after >= MAX_IDENTITY):
        return None
    return limit, after_bound(after)


class RedisConnection:
    """What the store's methods share: the client and its scripts."""

    name = "redis"

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        prefix: str = "butterflyfx",
        connect_timeout: float = 5.0,
        command_timeout: float = 10.0,
    ) -> None:
        self.url, self.prefix = url, prefix
        self.connect_timeout, self.command_timeout = connect_timeout, command_timeout
        self._client: aioredis.Redis | None = None
        self._scripts: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"RedisStore({self.where!r}, prefix={self.prefix!r})"

    @property
    def where(self) -> str:
        """host:port/db of the URL, password masked (for messages)."""
        try:
            parts = urlsplit(self.url)
            return f"{parts.hostname or 'localhost'}:{parts.port or 6379}{parts.path or ''}"
        except ValueError:
            return masked_url(self.url)

    # -- opening and closing ------------------------------------------------------
    async def open(self) -> None:
        """Connect and check that the server answers (there is no schema to create)."""
        if self._client is not None:
            return
        try:
            # One immediate retry, not redis-py's ten with backoff: a request learns within
            # about twice the timeouts that Redis is away.
            client = aioredis.Redis.from_url(
                self.url,
                socket_connect_timeout=self.connect_timeout,
                socket_timeout=self.command_timeout,
                retry=Retry(NoBackoff(), 1),
            )
        except (ValueError, RedisError) as error:
            raise self._cannot_open(error) from error
        try:
            await client.ping()
        except (OSError, TimeoutError, RedisError) as error:
            await client.aclose()
            raise self._cannot_open(error) from error
        self._scripts = {name: client.register_script(script_text(name)) for name in SCRIPTS}
        self._client = client

    def _cannot_open(self, error: BaseException) -> RedisStoreError:
        reason = masked_url(str(error)) or type(error).__name__
        return RedisStoreError(
            f"cannot open the Redis store at {self.where} ({masked_url(self.url)}), "
            f"prefix {self.prefix}: {type(error).__name__}: {reason}"
        )

    async def close(self) -> None:
        """Close the connections. Durability is the server's: see the plugin docs (AOF)."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def _redis(self) -> aioredis.Redis:
        if self._client is None:
            raise RuntimeError(f"the Redis store at {self.where} is not open")
        return self._client

    async def _run(self, script: str, base: str, *args: Any) -> Any:
        self._redis()
        return await self._scripts[script](args=[base, *args])

    async def _page(
        self, base: str, index: str, item: str, bound: str, limit: int, fields: Sequence[str]
    ) -> list[tuple[str, list[Any]]]:
        """Up to ``limit`` (hex, fields) from the sorted set ``index``, read atomically."""
        flat = await self._run("page", base, index, item, bound, limit, *fields)
        width = len(fields) + 1
        return [(flat[i].decode(), flat[i + 1 : i + width]) for i in range(0, len(flat), width)]

    # -- state --------------------------------------------------------------------------
    async def health(self) -> Mapping[str, Any]:
        """The server, prefix, Redis version and its persistence settings (AOF); raises
        within ``HEALTH_TIMEOUT`` seconds when Redis does not answer."""
        client = self._redis()
        async with asyncio.timeout(HEALTH_TIMEOUT):
            await client.ping()
            server = await client.info("server")
            persistence = await client.info("persistence")
            try:
                config = await client.config_get("appendfsync")
                appendfsync = _decoded(next(iter(config.values()), None))
            except ResponseError:  # CONFIG may be disabled (managed Redis)
                appendfsync = "unknown"
        return {
            "server": self.where,
            "prefix": self.prefix,
            "redis_version": _decoded(server.get("redis_version")),
            "appendonly": "yes" if int(persistence.get("aof_enabled", 0)) else "no",
            "appendfsync": appendfsync,
        }


def _decoded(value: Any) -> str:
    if value is None:
        return "unknown"
    return value.decode() if isinstance(value, bytes) else str(value)
