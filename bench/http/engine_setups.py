"""The engines a benchmark row runs on, the services each needs, and each row's own space.

A row's servers, ours and bare, work on the same rows: one SQLite file, one PostgreSQL
schema or one Redis key prefix, made for the row and removed after it (the schema is
dropped, the keys under the prefix deleted; rate-limit counters and events use the same
prefix, so they go too). Where PostgreSQL or Redis does not answer, the row is skipped and
the reason printed: ``missing_service``.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import redis

POSTGRES_DSN = os.environ.get("BENCH_POSTGRES_DSN") or "postgresql://postgres@127.0.0.1:5432/test"
REDIS_URL = os.environ.get("BENCH_REDIS_URL") or "redis://127.0.0.1:6379/0"
# Besides the store and the graph: API keys on every request, counted per tenant in Redis.
DEFAULT_PLUGINS = "http,auth.apikey,ratelimit"
REDIS_PLUGINS = ("ratelimit", "events")  # configured here to keep their state in Redis
SERVICE_TIMEOUT = 3.0


@dataclass(frozen=True)
class Engine:
    """Where substrates live: our store plugin, the graph plugin that goes with it (none
    for Redis: graph.sql needs SQL and graph.memory one worker) and the services it needs."""

    name: str
    storage: str
    graph: str | None
    services: tuple[str, ...]
    bare_waits_for_ours: bool = False  # the bare app opens a file our server makes


ENGINES = {
    "sqlite": Engine("sqlite", "storage.sqlite", "graph.sql", (), bare_waits_for_ours=True),
    "postgres": Engine("postgres", "storage.postgres", "graph.sql", ("postgres",)),
    "redis": Engine("redis", "storage.redis", None, ("redis",)),
}


def our_plugins(engine: Engine) -> list[str]:
    """The engine's store and graph, then BENCH_PLUGINS (default: http, auth.apikey,
    ratelimit) less any store or graph named there: each engine brings its own."""
    chosen = (os.environ.get("BENCH_PLUGINS") or DEFAULT_PLUGINS).replace(" ", "").split(",")
    rest = [name for name in chosen if name and not name.startswith(("storage.", "graph."))]
    return [engine.storage, *([engine.graph] if engine.graph else []), *dict.fromkeys(rest)]


def services_needed(engine: Engine, plugins: list[str]) -> tuple[str, ...]:
    needed = list(engine.services)
    if "redis" not in needed and any(name in plugins for name in REDIS_PLUGINS):
        needed.append("redis")
    return tuple(needed)


async def _ping_postgres(dsn: str) -> None:
    db = await asyncpg.connect(dsn, timeout=SERVICE_TIMEOUT)
    try:
        await db.execute("SELECT 1")
    finally:
        await db.close()


def missing_service(service: str) -> str | None:
    """Why ``service`` (postgres or redis) cannot be used; None when it answers."""
    try:
        if service == "postgres":
            asyncio.run(_ping_postgres(POSTGRES_DSN))
        else:
            with redis_client() as client:
                client.ping()
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, redis.RedisError) as error:
        where = POSTGRES_DSN if service == "postgres" else REDIS_URL
        label = "PostgreSQL" if service == "postgres" else "Redis"
        return f"no {label} answers at {where} ({type(error).__name__}: {error})"
    return None


def redis_client() -> redis.Redis:
    return redis.Redis.from_url(
        REDIS_URL, socket_connect_timeout=SERVICE_TIMEOUT, socket_timeout=SERVICE_TIMEOUT
    )


def _toml(value: str) -> str:
    return json.dumps(value)  # a TOML basic string


@dataclass
class Scratch:
    """One row's space: its folder, Redis key prefix and PostgreSQL schema name."""

    engine: Engine
    plugins: list[str]
    folder: Path
    prefix: str
    schema: str

    @property
    def database(self) -> Path:
        return self.folder / "substrates.sqlite3"

    @property
    def keys(self) -> Path:
        """The API key file, one for every instance of the row (they run on one machine)."""
        return self.folder / "keys.sqlite3"

    def config(self) -> Path:
        """Our servers' config file: the row's plugins, each kept in the row's space."""
        sections = {
            "storage.sqlite": f"[storage.sqlite]\npath = {_toml(str(self.database))}\n",
            "storage.postgres": f"[storage.postgres]\ndsn = {_toml(POSTGRES_DSN)}\n"
            f"schema = {_toml(self.schema)}\n",
            "storage.redis": f"[storage.redis]\nurl = {_toml(REDIS_URL)}\n"
            f"prefix = {_toml(self.prefix)}\n",
            "auth.apikey": f"[auth.apikey]\npath = {_toml(str(self.keys))}\nbootstrap = false\n",
            # The tier's limit is out of reach: the benchmark measures the counting, never
            # a refusal.
            "ratelimit": f"[ratelimit]\nstorage = {_toml(REDIS_URL)}\n"
            f'key_prefix = {_toml(self.prefix)}\ntiers = {{ pro = "100000000/hour" }}\n',
            "events": f"[events]\nredis = {_toml(REDIS_URL)}\n"
            f"channel = {_toml(self.prefix + ':events')}\n",
        }
        path = self.folder / "butterflyfx.toml"
        path.write_text(
            f"plugins = {json.dumps(self.plugins)}\n\n"
            + "\n".join(text for name, text in sections.items() if name in self.plugins)
        )
        return path

    def bare_environment(self) -> dict[str, str]:
        """What tells the bare app (bare_app.py) its engine and where the rows are."""
        where = {
            "sqlite": {"BENCH_BARE_DATABASE": str(self.database)},
            "postgres": {"BENCH_BARE_DSN": POSTGRES_DSN, "BENCH_BARE_SCHEMA": self.schema},
            "redis": {"BENCH_BARE_REDIS_URL": REDIS_URL, "BENCH_BARE_PREFIX": self.prefix},
        }[self.engine.name]
        return {"BENCH_BARE_ENGINE": self.engine.name, **where}


@contextmanager
def scratch(engine: Engine, plugins: list[str], folder: Path) -> Iterator[Scratch]:
    """The row's space; its schema is dropped and its Redis keys deleted afterwards (stop
    the servers first, so that no pooled connection holds the schema)."""
    token = uuid.uuid4().hex[:12]
    folder.mkdir(parents=True, exist_ok=True)
    made = Scratch(engine, plugins, folder, f"bench-http-{token}", f"bench_http_{token}")
    try:
        yield made
    finally:
        services = services_needed(engine, plugins)
        if "postgres" in services:
            asyncio.run(_drop_schema(made.schema))
        if "redis" in services:
            with redis_client() as client:
                for key in client.scan_iter(match=f"{made.prefix}:*", count=1000):
                    client.delete(key)


async def _drop_schema(schema: str) -> None:
    db = await asyncpg.connect(POSTGRES_DSN, timeout=SERVICE_TIMEOUT)
    try:
        await db.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await db.close()
