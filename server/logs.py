"""One log stream: structlog events and stdlib records (Hypercorn's too) rendered alike.

Logs go to stderr as JSON lines, or as coloured console lines when stderr is a terminal
(``--log-format`` chooses). The single startup line with the URL goes to stdout instead.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal

import structlog
from hypercorn.logging import Logger as HypercornLogger

from butterflyfx.core.config import ConfigError
from butterflyfx.core.plugins import PluginError

LogFormat = Literal["auto", "json", "console"]
ACCESS_LOGGER = "butterflyfx.access"

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


def configure_logging(level: str = "info", log_format: LogFormat = "auto") -> None:
    """Route structlog and the standard library through one handler on stderr at ``level``."""
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
        cache_logger_on_first_use=True,
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
    """Hypercorn's logger, speaking structlog: errors as events, access lines as fields.

    Hypercorn builds it in every worker from the (pickled) config, so it keeps no state
    beyond standard-library loggers, which pickle by name.
    """

    def __init__(self, config: Any) -> None:
        self.access_log_format = config.access_log_format
        self.access_logger = (
            config.accesslog if isinstance(config.accesslog, logging.Logger) else None
        )
        self.error_logger = logging.getLogger("hypercorn.error")

    async def access(self, request: Any, response: Any, request_time: float) -> None:
        if self.access_logger is None or not self.access_logger.isEnabledFor(logging.INFO):
            return
        client = request.get("client")
        query = request.get("query_string", b"").decode("latin-1")
        structlog.get_logger(self.access_logger.name).info(
            "request",
            method=request.get("method", "GET"),
            path=request["path"] + (f"?{query}" if query else ""),
            status=response["status"] if response is not None else None,
            duration_ms=round(request_time * 1000, 3),
            client=f"{client[0]}:{client[1]}" if client and len(client) == 2 else None,
            http_version=request.get("http_version", "ws"),
        )
