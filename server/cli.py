"""The ``butterflyfx`` command: ``serve``, ``config check``, ``plugins``, ``copy``; the client
commands that talk to a running server (``substrate``, ``rel``, ``query``, ``graph``,
``import``, ``export``: :mod:`butterflyfx.interface.human`; ``mcp``:
:mod:`butterflyfx.interface.ai`); and the commands of the plugins the config loads
(``keys``, ``users``, ...).

Exit codes: 0 done; 1 the port could not be bound, a worker died or the shutdown failed (or,
for a client command, the server answered with an error); 2 a usage, config or plugin
error, including a plugin failing to start; 3 a client command got no answer from the
server. Failures print ``butterflyfx: <message>`` on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import os
import sys
from collections.abc import Awaitable, Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from butterflyfx.core.commands import Command, CommandError
from butterflyfx.core.config import CONFIG_FILE_VARIABLE, ConfigError
from butterflyfx.core.plugins import PluginError, call
from butterflyfx.interface.ai.command import add_mcp_command
from butterflyfx.interface.human import HUMAN_COMMANDS, add_human_commands

from .store_copy import add_copy_command

if TYPE_CHECKING:
    from butterflyfx.core.context import ServerContext

# The server's machinery (core.context, Hypercorn, the ASGI app) is imported by the commands
# that run it, not here: a client command (``butterflyfx substrate get``) starts in half the
# time without it.

PROG = "butterflyfx"


def _config_file(args: argparse.Namespace) -> Path | None:
    """``--config``, else ``$BUTTERFLYFX_CONFIG_FILE``, else the embedded defaults."""
    chosen = args.config or os.environ.get(CONFIG_FILE_VARIABLE) or None
    return Path(chosen) if chosen else None


def run_serve(args: argparse.Namespace) -> int:
    from butterflyfx.core.context import ServerContext

    from .asgi import ServeOptions
    from .logs import configure_logging
    from .serve import ServeError, StartupFailed, serve

    overrides: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "workers": args.workers,
        "data_dir": args.data_dir,
        "max_connections": args.max_connections,
        "timeout": args.timeout,
        "log_level": args.log_level,
        "access_log": args.access_log,
    }
    options = ServeOptions(
        config_file=_config_file(args),
        overrides={key: value for key, value in overrides.items() if value is not None},
        log_format=args.log_format,
    )
    config = options.load(os.environ)
    configure_logging(config.server.log_level, args.log_format)
    try:
        return serve(ServerContext.build(config), options)
    except StartupFailed as error:
        return _fail(f"cannot start: {error}", 2)
    except ServeError as error:
        return _fail(str(error), 1)


def run_config_check(args: argparse.Namespace) -> int:
    from butterflyfx.core.config import effective_settings, read_config
    from butterflyfx.core.context import ServerContext

    from .asgi import check_servable
    from .logs import configure_logging

    configure_logging("warning")  # stdout is for the JSON alone
    config = read_config(Path(args.file), os.environ)
    check_servable(ServerContext.build(config))  # the plugins validate their sections
    print(json.dumps(effective_settings(config), indent=2))
    return 0


def run_plugins(args: argparse.Namespace) -> int:
    from butterflyfx.core.config import read_config
    from butterflyfx.core.context import ServerContext

    from .inventory import plugin_inventory, render_inventory
    from .logs import configure_logging

    configure_logging("warning")
    config = read_config(_config_file(args), os.environ)
    inventory = plugin_inventory(ServerContext.build(config))
    if args.json:
        print(json.dumps(inventory, indent=2))
    else:
        print(render_inventory(inventory))
    return 0


BUILTIN_COMMANDS = ("serve", "config", "plugins", "copy", "mcp", *HUMAN_COMMANDS)


def _first_command(argv: Sequence[str]) -> str | None:
    return next((arg for arg in argv if not arg.startswith("-")), None)


def plugin_commands(
    argv: Sequence[str], plugins: Mapping[str, object] | None = None
) -> tuple[ServerContext | None, dict[str, Command]]:
    """The commands of the plugins the config loads (none for the built-in commands).

    ``--config`` and ``--data-dir`` are read from ``argv`` first: they choose the config,
    and so the plugins. For ``--help`` a config that does not load is passed over; for a
    plugin command it is the error to report.
    """
    chosen = _first_command(argv)
    if chosen in BUILTIN_COMMANDS:
        return None, {}
    from butterflyfx.core.context import ServerContext

    from .asgi import ServeOptions

    early = argparse.ArgumentParser(add_help=False)
    early.add_argument("--config")
    early.add_argument("--data-dir")
    known, _ = early.parse_known_args(list(argv))
    try:
        overrides = {"data_dir": known.data_dir} if known.data_dir else {}
        config = ServeOptions(config_file=_config_file(known), overrides=overrides).load(os.environ)
        ctx = ServerContext.build(config, plugins)
    except (ConfigError, PluginError):
        if chosen is None:
            return None, {}
        raise
    commands: dict[str, Command] = {}
    for implementation in reversed(ctx.plugins.hook.butterflyfx_commands.get_hookimpls()):
        offered = call(implementation) or {}
        for name, command in dict(offered).items():
            if name in BUILTIN_COMMANDS or name in commands:
                raise PluginError(
                    f"plugin {implementation.plugin_name!r}: the command {name!r} is taken"
                )
            if not isinstance(command, Command):
                raise PluginError(
                    f"plugin {implementation.plugin_name!r}: command {name!r} has no "
                    "help, configure() and run()"
                )
            commands[name] = command
    return ctx, commands


def run_plugin_command(args: argparse.Namespace) -> int:
    from .logs import configure_logging

    configure_logging("warning")  # stdout is the command's
    result = args.plugin_command.run(args, args.plugin_ctx)
    if inspect.isawaitable(result):
        result = asyncio.run(_awaited(result))
    return int(result)


async def _awaited(result: Awaitable[int]) -> int:
    return await result


def build_parser(
    commands_from_plugins: Mapping[str, Command] | None = None,
    ctx: ServerContext | None = None,
) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="ButterflyFX Server: substrates and their relationships over HTTP."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve_cmd = commands.add_parser(
        "serve",
        help="run the server",
        description="Run the server on Hypercorn. Flags override the config file, which "
        "overrides the embedded defaults; BUTTERFLYFX_<SECTION>__<KEY> variables override "
        "the file. SIGTERM or Ctrl-C stops it gracefully; a second signal stops it at once.",
    )
    serve_cmd.add_argument(
        "--config", metavar="FILE", help=f"TOML config (or ${CONFIG_FILE_VARIABLE})"
    )
    serve_cmd.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve_cmd.add_argument("--port", type=int, help="port to listen on; 0 picks a free one")
    serve_cmd.add_argument("--workers", type=int, metavar="N", help="worker processes")
    serve_cmd.add_argument("--data-dir", metavar="DIR", help="where file-based stores keep data")
    serve_cmd.add_argument(
        "--max-connections", type=int, metavar="N",
        help="open connections each worker serves; a new one beyond them gets 503 "
        "(server.max_connections)",
    )  # fmt: skip
    serve_cmd.add_argument(
        "--timeout", type=float, metavar="S",
        help="seconds an idle keep-alive connection stays open (Hypercorn's keep_alive_timeout)",
    )  # fmt: skip
    serve_cmd.add_argument("--log-level", choices=["debug", "info", "warning", "error", "critical"])
    serve_cmd.add_argument(
        "--log-format", choices=["auto", "json", "console"], default="auto",
        help="JSON lines, or console lines; auto picks console on a terminal",
    )  # fmt: skip
    serve_cmd.add_argument(
        "--access-log", action=argparse.BooleanOptionalAction, default=None,
        help="one log line per request (on by default; [server] access_log)",
    )  # fmt: skip
    serve_cmd.set_defaults(run=run_serve)

    config_cmd = commands.add_parser("config", help="inspect a config file")
    config_commands = config_cmd.add_subparsers(dest="config_command", metavar="COMMAND",
                                                required=True)  # fmt: skip
    check = config_commands.add_parser(
        "check",
        help="validate a config file and print the effective settings",
        description="Validate FILE, every plugin section included, with the environment "
        "applied; print the settings in force as JSON, secrets masked.",
    )
    check.add_argument("file", metavar="FILE")
    check.set_defaults(run=run_config_check)

    plugins_cmd = commands.add_parser(
        "plugins",
        help="list loaded and installed plugins",
        description="List the plugins the config loads (version, distribution, hooks, "
        "state) and the installed ones it does not enable.",
    )
    plugins_cmd.add_argument("--config", metavar="FILE", help="TOML config")
    plugins_cmd.add_argument("--json", action="store_true", help="print JSON")
    plugins_cmd.set_defaults(run=run_plugins)

    add_copy_command(commands)
    add_mcp_command(commands)
    add_human_commands(commands)

    for name, command in sorted((commands_from_plugins or {}).items()):
        sub = commands.add_parser(name, help=command.help, description=command.help)
        sub.add_argument(
            "--config", metavar="FILE", help=f"TOML config (or ${CONFIG_FILE_VARIABLE})"
        )
        sub.add_argument("--data-dir", metavar="DIR", help="overrides server.data_dir")
        command.configure(sub)
        sub.set_defaults(run=run_plugin_command, plugin_command=command, plugin_ctx=ctx)
    return parser


def _version() -> str:
    try:
        return version("butterflyfx")
    except PackageNotFoundError:
        return "unknown"


def main(argv: Sequence[str] | None = None, plugins: Mapping[str, object] | None = None) -> int:
    """Run the command line; ``plugins`` are in-process plugin objects by name (for embedding
    and tests), loaded when the config names them, like ``ServerContext.build``'s."""
    given = list(sys.argv[1:] if argv is None else argv)
    try:
        ctx, extra = plugin_commands(given, plugins)
    except (ConfigError, PluginError) as error:
        return _fail(str(error), 2)
    args = build_parser(extra, ctx).parse_args(given)
    try:
        return int(args.run(args))
    except (ConfigError, PluginError, CommandError) as error:
        return _fail(str(error), 2)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `butterflyfx plugins | head`: the reader left; not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _fail(message: str, code: int) -> int:
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
