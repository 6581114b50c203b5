"""One log stream: structlog events and stdlib records (Hypercorn's too) rendered alike.

Logs go to stderr as JSON lines, or as coloured console lines when stderr is a terminal
(``--log-format`` chooses). The single startup line with the URL goes to stdout instead.

The access log is :class:`AccessLog`, the server's own ``butterflyfx_on_request``
listener: one ``request`` event per request, from the record the HTTP plugin reports.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any, Literal

import structlog
from hypercorn.logging import Logger as HypercornLogger

from butterflyfx.core.config import ConfigError
from butterflyfx.core.hookspecs import hookimpl
from butterflyfx.core.observe import RequestRecord
from butterflyfx.core.plugins import PluginError

if TYPE_CHECKING:
    from butterflyfx.core.context import ServerContext

LogFormat = Literal["auto", "json", "console"]
ACCESS_LOGGER = "butterflyfx.access"
ACCESS_LOG_PLUGIN = "server.access_log"  # its name in the plugin host and in hook traces

_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]

# Tracebacks as data, without each frame's local variables: those can hold secrets.
_JSON_TRACEBACKS = structlog.processors.ExceptionRenderer(
    structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
)


def configure_logging(
    level: str = "info", log_format: LogFormat = "auto", *, cache: bool = False
) -> None:
    """Route structlog and the standard library through one handler on stderr at ``level``.

    ``cache`` (for a server process) lets each logger keep this configuration from its first
    use on, which saves work per line; a command run in-process (tests, docs) leaves it off
    so a later configuration still reaches every logger."""
    console = log_format == "console" or (log_format == "auto" and sys.stderr.isatty())
    renderer: list[Any] = (
        # Plain tracebacks: rich's, if installed, would print every frame's locals.
        [
            structlog.dev.ConsoleRenderer(
                colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback
            )
        ]
        if console
        else [_JSON_TRACEBACKS, structlog.processors.JSONRenderer()]
    )
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_SHARED,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=cache,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_explained_errors_without_traceback)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=_SHARED,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderer],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    # aiosqlite logs every statement with its parameters at debug: user data, and a flood.
    logging.getLogger("aiosqlite").setLevel(max(root.level, logging.INFO))
    # Hypercorn's own loggers would otherwise add their handlers beside ours.
    for name in ("hypercorn.error", "hypercorn.access", ACCESS_LOGGER):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True


def _explained_errors_without_traceback(record: logging.LogRecord) -> bool:
    """A config or plugin error's message already says what failed and why (Quart logs a
    failed startup with its traceback); its traceback is kept for ``--log-level debug``."""
    error = record.exc_info[1] if record.exc_info else None
    if (
        isinstance(error, ConfigError | PluginError)
        and not isinstance(record.msg, dict)
        and not logging.getLogger().isEnabledFor(logging.DEBUG)
    ):
        record.msg, record.args = f"{record.getMessage()}: {error}", None
        record.exc_info, record.exc_text = None, None
    return True


class ServerLog(HypercornLogger):
    """Hypercorn's logger, speaking structlog: its errors become events.

    Hypercorn builds it in every worker from the (pickled) config, so it keeps no state
    beyond standard-library loggers, which pickle by name.
    """

    def __init__(self, config: Any) -> None:
        self.access_log_format = config.access_log_format
        self.access_logger = None
        self.error_logger = logging.getLogger("hypercorn.error")

    async def access(self, request: Any, response: Any, request_time: float) -> None:
        """Nothing: :class:`AccessLog` writes the access line, with what Hypercorn cannot
        know (request id, tenant, route) and without the query string."""


class AccessLog:
    """One ``request`` event per request served, on logger ``butterflyfx.access``.

    Its fields come from the :class:`RequestRecord` alone: method, the path without its
    query string, route template, status, duration, request id, tenant, subject (a key id
    or user name), client address, connection pool and worker. No header is read, so neither the
    ``Authorization`` header nor a token in a query string can reach the log.
    """

    def __init__(self) -> None:
        self.log = structlog.get_logger(ACCESS_LOGGER)

    @hookimpl
    def butterflyfx_on_request(self, record: RequestRecord) -> None:
        self.log.info(
            "request",
            method=record.method,
            path=record.path,
            route=record.route,
            status=record.status,
            duration_ms=round(record.duration_ms, 3),
            request_id=record.request_id,
            tenant=record.tenant,
            subject=record.subject,
            client=record.client,
            pool=record.pool,
            worker=record.worker,
        )


def install_access_log(ctx: ServerContext, enabled: bool) -> None:
    """Register :class:`AccessLog` with the context's plugins, before it serves a request."""
    manager = ctx.plugins.manager
    if enabled and manager.get_plugin(ACCESS_LOG_PLUGIN) is None:
        manager.register(AccessLog(), name=ACCESS_LOG_PLUGIN)
