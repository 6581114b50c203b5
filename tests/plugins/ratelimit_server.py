"""Servers for the rate limit stories: real apps over real contexts, in this process.

Principals come from :class:`FixedTokens`, a real authentication plugin registered in
process that knows a few bearer tokens; it stands in for ``auth.apikey`` because the
component under test is the rate limiter, not how keys are checked.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from butterflyfx.core.auth import ACTIONS, Caller, Principal
from butterflyfx.core.config import read_config
from butterflyfx.core.context import ServerContext
from butterflyfx.core.hookspecs import hookimpl
from butterflyfx.plugins.http.app import create_app

TOKENS_PLUGIN = "test.tokens"
PLUGINS = ["storage.memory", "http", "ratelimit", TOKENS_PLUGIN]
EVERY_SCOPE = frozenset(ACTIONS)


def principal(tenant: str, tier: str) -> Principal:
    return Principal(tenant, f"{tenant}-key", tier, EVERY_SCOPE, TOKENS_PLUGIN)


PRINCIPALS = {
    "free-token": principal("acme", "free"),
    "other-free-token": principal("globex", "free"),
    "pro-token": principal("initech", "pro"),
    "enterprise-token": principal("umbrella", "enterprise"),
    "gold-token": principal("hooli", "gold"),  # a tier the config does not name
}


class FixedTokens:
    """Authenticates the bearer tokens of :data:`PRINCIPALS`; any other token is not its."""

    @hookimpl
    def butterflyfx_authenticate(self, caller: Caller) -> Principal | None:
        return PRINCIPALS.get(caller.token or "")


def toml_value(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)


def config_file(folder: Path, ratelimit: Mapping[str, Any], **server: Any) -> Path:
    """A config file as an operator writes it: the plugins, ``[server]``, ``[ratelimit]``."""
    lines = [f"plugins = {json.dumps(PLUGINS)}", "", "[server]"]
    lines += [f"{key} = {toml_value(value)}" for key, value in server.items()]
    lines += ["", "[ratelimit]"]
    lines += [f"{key} = {toml_value(value)}" for key, value in ratelimit.items()]
    path = folder / "butterflyfx.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def build_context(folder: Path, ratelimit: Mapping[str, Any], **server: Any) -> ServerContext:
    config = read_config(
        config_file(folder, ratelimit, **server), overrides={"data_dir": folder / "data"}
    )
    return ServerContext.build(config, extra={TOKENS_PLUGIN: FixedTokens()})


@contextlib.asynccontextmanager
async def running_client(ctx: ServerContext) -> AsyncIterator[Any]:
    """Quart's test client over the app of ``ctx``, started and stopped around the block."""
    app = create_app(ctx)
    async with app.test_app() as running:
        yield running.test_client()


def serve(
    folder: Path, ratelimit: Mapping[str, Any], scenario: Callable[[Any], Awaitable[Any]]
) -> Any:
    """Run ``scenario(client)`` against one server life configured with ``ratelimit``."""

    async def main() -> Any:
        async with running_client(build_context(folder, ratelimit)) as client:
            return await scenario(client)

    return asyncio.run(main())


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def rate_headers(response: Any) -> dict[str, str]:
    """The response's ``X-RateLimit-*`` and ``Retry-After`` headers, lower-cased names."""
    return {
        name.lower(): value
        for name, value in response.headers.items()
        if name.lower().startswith("x-ratelimit-") or name.lower() == "retry-after"
    }
