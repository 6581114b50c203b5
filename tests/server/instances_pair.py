"""Two real ``butterflyfx serve`` instances, A and B, on their own ports and data folders,
over one PostgreSQL schema and one Redis (rate-limit counters and the events channel) of
the test's own. Where PostgreSQL or Redis does not answer the test skips, or fails under
BUTTERFLYFX_REQUIRE_SERVICES=1; the schema and the Redis keys are removed afterwards.

API keys live in that PostgreSQL schema too (``[auth.apikey] database``): the instances
share no file at all, as they would on different machines.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from server_process import Butterflyfx, Server

from butterflyfx.testing import services

sys.path.append(str(Path(__file__).parents[1] / "plugins"))  # where postgres_service is
from postgres_service import POSTGRES_DSN, postgres_schema

REDIS_URL = services.REDIS_URL
KEY = re.compile(r"sk-butterflyfx-[A-Za-z0-9_-]{43}")
FREE_LIMIT = 20  # [ratelimit] tiers.free, per minute, per tenant, across both instances


def config_text(schema: str, prefix: str) -> str:
    return (
        'plugins = ["storage.postgres", "graph.sql", "http", "auth.apikey", "ratelimit", '
        '"events"]\n\n'
        f'[storage.postgres]\ndsn = "{POSTGRES_DSN}"\nschema = "{schema}"\n\n'
        f'[ratelimit]\nstorage = "{REDIS_URL}"\nkey_prefix = "{prefix}"\n'
        f'tiers = {{ free = "{FREE_LIMIT}/minute" }}\n\n'
        f'[events]\nredis = "{REDIS_URL}"\nchannel = "{prefix}:events"\n\n'
        # Keys in the shared database, no bootstrap: they come from the CLI.
        f'[auth.apikey]\ndatabase = "{POSTGRES_DSN}"\nschema = "{schema}"\nbootstrap = false\n'
    )


def create_key(cli: Butterflyfx, config: Path, tenant: str, tier: str) -> str:
    """A new API key made with ``butterflyfx keys create``, as an operator would."""
    made = cli.run("keys", "create", "--config", str(config), "--tenant", tenant, "--tier", tier)
    assert made.returncode == 0, made.stderr
    last = made.stdout.splitlines()[-1]
    assert KEY.fullmatch(last), made.stdout
    return last


@dataclass
class Pair:
    """Instances ``a`` and ``b`` of one configuration, and a key of tenant ``acme``."""

    a: Server
    b: Server
    key: str


@contextmanager
def two_instances(cli: Butterflyfx, folder: Path, tier: str) -> Iterator[Pair]:
    """Make a key of ``tier`` for tenant acme, then start A and B at once (they boot in
    parallel) and wait until both are healthy."""
    services.redis_client(REDIS_URL).close()  # skips, or fails under REQUIRE_SERVICES
    with postgres_schema() as schema, services.redis_prefix(REDIS_URL) as prefix:
        config = folder / "butterflyfx.toml"
        config.write_text(config_text(schema, prefix))
        key = create_key(cli, config, "acme", tier)  # made first, as an operator would
        a = cli.start("--config", str(config), "--data-dir", str(folder / "a"))
        b = cli.start("--config", str(config), "--data-dir", str(folder / "b"))
        try:
            yield Pair(a.wait_ready(), b.wait_ready(), key)
        finally:
            # Stopped before the schema is dropped, so no pooled connection holds it.
            a.destroy()
            b.destroy()


def has_open(pid: int, path: Path) -> bool:
    """Whether process ``pid`` has ``path`` open (Linux: its /proc/PID/fd links)."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == str(path):
                return True
        except OSError:
            continue  # closed meanwhile
    return False
