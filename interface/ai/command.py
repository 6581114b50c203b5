"""``butterflyfx mcp``: serve the MCP tools on stdin/stdout for an MCP client to start.

``--url`` and ``--key`` (or ``BUTTERFLYFX_URL`` and ``BUTTERFLYFX_API_KEY``) say which
API to call and as whom. stdout carries the protocol alone; nothing else is printed there.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from butterflyfx.core.commands import CommandError

URL_VARIABLE = "BUTTERFLYFX_URL"
KEY_VARIABLE = "BUTTERFLYFX_API_KEY"
DEFAULT_URL = "http://127.0.0.1:8000"


def add_mcp_command(commands: Any) -> None:
    """Add the ``mcp`` command to the ``butterflyfx`` subcommands."""
    mcp = commands.add_parser(
        "mcp",
        help="serve the API as MCP tools over stdio",
        description="Run an MCP server on stdin/stdout whose tools (create, get, search, "
        "invoke, divide, multiply, relate, traverse) call the HTTP API at --url with "
        "--key; the key's tenant and scopes decide what they may do.",
    )
    mcp.add_argument("--url", help=f"the API's base URL (or ${URL_VARIABLE}; {DEFAULT_URL})")
    mcp.add_argument("--key", help=f"the API key to call it with (or ${KEY_VARIABLE})")
    mcp.add_argument(
        "--timeout", type=float, default=30.0, metavar="S", help="seconds per HTTP request"
    )
    mcp.set_defaults(run=run_mcp)


def run_mcp(args: argparse.Namespace) -> int:
    url = args.url or os.environ.get(URL_VARIABLE) or DEFAULT_URL
    key = args.key or os.environ.get(KEY_VARIABLE) or None
    if not url.startswith(("http://", "https://")):
        raise CommandError(f"--url must be an http:// or https:// URL, not {url!r}")
    from .server import build_server  # the mcp package loads only for this command

    build_server(url, key, timeout=args.timeout).run("stdio")
    return 0
