"""The ASGI application the server runs, in this process or in each Hypercorn worker.

The ``http`` plugin makes the app (``butterflyfx_asgi_app``) and opens and closes the
context in its lifespan. :class:`Lifecycle` wraps it to log when the process is ready and
when it has stopped, and to keep the failure message Hypercorn would otherwise bury.

With ``--workers N`` Hypercorn spawns fresh interpreters that import this module and call
:func:`create_app`; the parent passes what the command line said through environment
variables (:data:`CONFIG_FILE_VARIABLE`, :data:`OPTIONS_VARIABLE`).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import multiprocessing
import os
import signal
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from butterflyfx.core.config import CONFIG_FILE_VARIABLE, LoadedConfig, read_config
from butterflyfx.core.context import ServerContext
from butterflyfx.core.plugins import PluginError

from .logs import LogFormat, configure_logging, install_access_log

OPTIONS_VARIABLE = "BUTTERFLYFX_SERVE_OPTIONS"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = structlog.get_logger("butterflyfx.server")


@dataclass
class ServeOptions:
    """What ``butterflyfx serve`` was told, in a form a worker process can rebuild."""

    config_file: Path | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    log_format: LogFormat = "auto"

    def load(self, env: Mapping[str, str]) -> LoadedConfig:
        return read_config(self.config_file, env, self.overrides)

    def to_environment(self) -> dict[str, str]:
        options = {
            "overrides": self.overrides,
            "log_format": self.log_format,
        }
        return {
            CONFIG_FILE_VARIABLE: str(self.config_file.resolve()) if self.config_file else "",
            OPTIONS_VARIABLE: json.dumps(options, default=str),
        }

    @classmethod
    def from_environment(cls, env: Mapping[str, str]) -> ServeOptions:
        options = json.loads(env.get(OPTIONS_VARIABLE) or "{}")
        config_file = env.get(CONFIG_FILE_VARIABLE) or None
        return cls(
            config_file=Path(config_file) if config_file else None,
            overrides=dict(options.get("overrides", {})),
            log_format=options.get("log_format", "auto"),
        )


def check_servable(ctx: ServerContext) -> None:
    """Refuse a plugin set that loads but could never serve: no HTTP app, or no store."""
    loaded = ", ".join(ctx.plugins.names) or "no plugins"
    for hook, what, example in (
        ("butterflyfx_asgi_app", "serves HTTP", "http"),
        ("butterflyfx_storage", "provides storage", "storage.sqlite"),
    ):
        if not getattr(ctx.plugins.hook, hook).get_hookimpls():
            raise PluginError(
                f"no loaded plugin {what} (none of {loaded} implements {hook}); "
                f"add one (e.g. {example}) to plugins"
            )


def application_for(ctx: ServerContext) -> ASGIApp:
    """The ASGI app the loaded plugins provide (the first non-None ``butterflyfx_asgi_app``)."""
    install_access_log(ctx, ctx.settings.access_log)  # before the app serves a request
    for implementation in ctx.plugins.hook.butterflyfx_asgi_app.get_hookimpls()[::-1]:
        wants_ctx = "ctx" in implementation.argnames
        app = implementation.function(ctx=ctx) if wants_ctx else implementation.function()
        if app is None:
            continue
        if inspect.isawaitable(app):
            if inspect.iscoroutine(app):
                app.close()
            raise PluginError(
                f"plugin {implementation.plugin_name!r}: butterflyfx_asgi_app must return "
                "the ASGI application itself, not an awaitable"
            )
        return app  # type: ignore[no-any-return]
    raise PluginError("no loaded plugin serves HTTP: every butterflyfx_asgi_app returned None")


class Lifecycle:
    """Watches the app's lifespan: logs readiness and shutdown, remembers a failure.

    A failed startup skips the app's own shutdown, so whatever the context opened before
    the failure (a store, its threads) stays open and would keep the process from exiting:
    ``clean_up`` (the context's ``stop``) runs then instead.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        clean_up: Callable[[], Awaitable[None]] | None = None,
        on_ready: Callable[[], None] | None = None,
        watch_parent: bool = False,
    ) -> None:
        self.app = app
        self.clean_up = clean_up
        self.on_ready = on_ready
        self.watch_parent = watch_parent
        self.ready = False
        self.stopped = False
        self.failure: str | None = None
        self.failed = asyncio.Event()
        self._watchdog: asyncio.Task[None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def watched_send(message: Message) -> None:
            kind = message["type"]
            if kind == "lifespan.startup.complete":
                self.ready = True
                log.info("worker_ready", pid=os.getpid())
                if self.on_ready is not None:
                    self.on_ready()
                if self.watch_parent:
                    self._watchdog = asyncio.create_task(_exit_when_parent_dies())
            elif kind == "lifespan.shutdown.complete":
                self.stopped = True
                log.info("worker_stopped", pid=os.getpid(), graceful=True)
            elif kind.endswith(".failed"):
                self.failure = str(message.get("message") or "no reason given")
                self.failed.set()
                stage = kind.split(".")[1]
                log.error(f"{stage}_failed", pid=os.getpid(), error=self.failure)
                if stage == "startup" and self.clean_up is not None:
                    await clean_up_after_failed_start(self.clean_up)
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        finally:
            if self._watchdog is not None:
                self._watchdog.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._watchdog


async def clean_up_after_failed_start(clean_up: Callable[[], Awaitable[None]]) -> None:
    try:
        await clean_up()
    except Exception:  # the startup failure is the error to report, not this one
        log.exception("clean_up_after_failed_start_failed", pid=os.getpid())


async def _exit_when_parent_dies() -> None:
    """A worker whose parent was killed outright must not keep the port: it exits.

    Every write it acknowledged is already durable (the storage contract), so the only
    loss is requests in flight, which an unclean parent death loses anyway.
    """
    parent = multiprocessing.parent_process()
    if parent is None:
        return
    while parent.is_alive():
        await asyncio.sleep(0.5)
    log.error("parent_process_gone", pid=os.getpid())
    os._exit(1)


def create_app() -> ASGIApp:
    """The app of one Hypercorn worker process, built from the parent's environment."""
    options = ServeOptions.from_environment(os.environ)
    config = options.load(os.environ)
    configure_logging(config.server.log_level, options.log_format, cache=True)
    # The parent owns shutdown: it tells every worker to stop and waits for them. A
    # SIGTERM sent to the whole process group (systemd, docker) must not cut a worker
    # short; Hypercorn already ignores SIGINT in workers for the same reason.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    ctx = ServerContext.build(config)
    return Lifecycle(application_for(ctx), clean_up=ctx.stop, watch_parent=True)
