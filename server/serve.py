"""Running the app on Hypercorn: in this process, or in N worker processes on one port.

How the settings map onto Hypercorn (0.18):

- ``backlog`` (unset: ``max_connections``) -> ``backlog``: how many connections the
  kernel queues before the server accepts them.
- ``max_connections`` is not Hypercorn's (it has no cap on connections it accepted): the
  HTTP plugin enforces it per worker at the ASGI edge, answering the first request of a
  connection beyond it with 503 and ``Connection: close`` (``core/runtime``).
- ``timeout`` -> ``keep_alive_timeout``: seconds an idle keep-alive connection is kept.
  The connection tracker's idle sweep uses the same value, since Hypercorn does not tell
  the app when it closes one.
- ``keep_alive_max_requests`` is fixed at ``KEEP_ALIVE_MAX_REQUESTS`` so the tracker knows
  which response closes an HTTP/1 connection.
- ``graceful_timeout`` -> ``graceful_timeout``: on SIGTERM or SIGINT the server stops
  accepting, lets requests in flight finish for up to this long, then runs the app's
  shutdown (which closes the stores).

The listening socket is bound here, before Hypercorn starts, so a port of 0 gets a real
port for the startup line, and every worker shares that one socket.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import structlog
from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config
from hypercorn.run import run as hypercorn_run

from butterflyfx.core.config import ServerSettings
from butterflyfx.core.context import RUN_ID_VARIABLE, ServerContext
from butterflyfx.core.runtime import KEEP_ALIVE_MAX_REQUESTS

from .asgi import (
    ASGIApp,
    Lifecycle,
    ServeOptions,
    application_for,
    check_servable,
    clean_up_after_failed_start,
)
from .logs import ServerLog

WORKER_APPLICATION = "butterflyfx.server.asgi:create_app()"

log = structlog.get_logger("butterflyfx.server")


class ServeError(Exception):
    """The server could not start or stop cleanly; the message says why."""


class StartupFailed(ServeError):
    """A plugin failed while the app started (the store would not open, ...)."""


@dataclass(frozen=True)
class Listener:
    """A bound, listening socket, as the file descriptor Hypercorn takes over."""

    fd: int
    url: str


def listen(settings: ServerSettings) -> Listener:
    """Bind and listen on the configured address; the queue holds the backlog."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            settings.host or None, settings.port, type=socket.SOCK_STREAM,
            flags=socket.AI_PASSIVE,
        )[0]  # fmt: skip
    except socket.gaierror as error:
        raise ServeError(f"cannot listen on {settings.host!r}: {error.strerror}") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(listen_backlog(settings))
    except OSError as error:
        sock.close()
        where = f"{settings.host}:{settings.port}"
        raise ServeError(f"cannot listen on {where}: {error.strerror or error}") from None
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return Listener(sock.detach(), f"http://{shown}:{port}")


def listen_backlog(settings: ServerSettings) -> int:
    """``backlog``, else ``max_connections``: the kernel queues as many as a worker serves."""
    return settings.backlog if settings.backlog is not None else settings.max_connections


def hypercorn_config(settings: ServerSettings, listener: Listener) -> Config:
    """Hypercorn's config from ours (see the module docstring for the mapping)."""
    config = Config()
    config.bind = [f"fd://{listener.fd}"]
    config.workers = settings.workers
    config.backlog = listen_backlog(settings)
    config.keep_alive_timeout = settings.timeout
    config.keep_alive_max_requests = KEEP_ALIVE_MAX_REQUESTS
    config.graceful_timeout = settings.graceful_timeout
    config.logger_class = ServerLog
    config.errorlog = logging.getLogger("hypercorn.error")
    config.application_path = WORKER_APPLICATION
    return config


def serve_in_process(
    ctx: ServerContext, app: ASGIApp, config: Config, on_ready: Callable[[], None]
) -> None:
    """Serve until SIGTERM or SIGINT; a second signal exits at once."""
    lifecycle = Lifecycle(app, clean_up=ctx.stop, on_ready=on_ready)
    try:
        asyncio.run(_serve(lifecycle, config))
    except Exception as error:
        if lifecycle.failure is not None and not lifecycle.ready:
            raise StartupFailed(lifecycle.failure) from None
        if lifecycle.failure is not None:
            raise ServeError(f"shutdown failed: {lifecycle.failure}") from None
        raise ServeError(f"the server stopped: {type(error).__name__}: {error}") from error
    if lifecycle.failure is not None:
        raise StartupFailed(lifecycle.failure)
    if not lifecycle.stopped:
        raise ServeError("the app did not finish its shutdown")


async def _serve(app: Lifecycle, config: Config) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_signal(signum: int) -> None:
        name = signal.Signals(signum).name
        if stop.is_set():
            log.warning("forced_exit", signal=name)
            os._exit(1)
        log.info("shutdown_requested", signal=name, graceful_timeout=config.graceful_timeout)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)

    async def shutdown_trigger() -> None:
        # A failed startup ends serving too, should Hypercorn carry on without lifespan.
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(app.failed.wait())]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    await hypercorn_serve(app, config, shutdown_trigger=shutdown_trigger)  # type: ignore[arg-type]


def serve_in_workers(options: ServeOptions, config: Config, on_ready: Callable[[], None]) -> int:
    """Run N Hypercorn workers on the one socket; returns Hypercorn's exit code.

    Each worker rebuilds the context from the environment set here (see ``asgi.py``).
    """
    os.environ.update(options.to_environment())
    on_ready()
    return hypercorn_run(config)


def preflight(ctx: ServerContext) -> None:
    """Start and stop the context once, before any worker exists.

    The schema is created or migrated once rather than by N workers at the same moment,
    and a store that will not open is one clear error instead of N worker tracebacks.
    """

    async def start_and_stop() -> None:
        try:
            await ctx.start()
        except Exception:
            await clean_up_after_failed_start(ctx.stop)
            raise
        await ctx.stop()

    try:
        asyncio.run(start_and_stop())
    except Exception as error:
        raise StartupFailed(str(error)) from None


def serve(ctx: ServerContext, options: ServeOptions) -> int:
    """Serve ``ctx`` as its settings say until a signal stops it; 0 when it stopped cleanly."""
    settings = ctx.settings
    # Workers inherit the environment: every process of this run shares one run id.
    os.environ[RUN_ID_VARIABLE] = ctx.run_id = f"{os.getpid()}-{int(time.time())}"
    check_servable(ctx)  # before anything binds
    app = application_for(ctx)
    listener = listen(settings)
    config = hypercorn_config(settings, listener)
    log.info(
        "server_starting", url=listener.url, workers=settings.workers,
        plugins=ctx.plugins.names, config=ctx.config.source, data_dir=str(settings.data_dir),
        backlog=config.backlog, max_connections=settings.max_connections,
        keep_alive_timeout=config.keep_alive_timeout,
        graceful_timeout=config.graceful_timeout,
    )  # fmt: skip
    if ctx.guard.open:
        log.warning(
            "no_authentication",
            detail="no plugin authenticates requests: every request acts for tenant "
            "'default' with every scope; load auth.apikey or auth.jwt to require credentials",
        )
    announce = partial(print, startup_line(ctx, listener), flush=True)
    code = 0
    if settings.workers == 1:
        serve_in_process(ctx, app, config, announce)
    else:
        preflight(ctx)
        code = serve_in_workers(options, config, announce)
    log.info("server_stopped", exit_code=code)
    if code != 0:
        raise ServeError(f"a worker process exited with code {code}; the log above says why")
    return code


def startup_line(ctx: ServerContext, listener: Listener) -> str:
    """The one line on stdout saying where the server answers."""
    workers = ctx.settings.workers
    return (
        f"ButterflyFX Server listening on {listener.url} "
        f"({workers} worker{'s' if workers > 1 else ''}; "
        f"plugins: {', '.join(ctx.plugins.names)}; config: {ctx.config.source})"
    )
