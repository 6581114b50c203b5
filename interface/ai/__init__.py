"""The AI face: an MCP server (``butterflyfx mcp``) whose tools call the HTTP API.

Each tool is one request through :class:`~butterflyfx.interface.client.AsyncButterflyFX`
with the key the server was started with, so tenants, scopes and limits are the HTTP
server's, checked there; nothing here reaches storage. See docs/mcp.md.

:func:`build_server` is imported on first use: the ``mcp`` package loads only when an
MCP server is built, not whenever the ``butterflyfx`` command starts.
"""

from __future__ import annotations

from typing import Any

from .tools import TOOLS, ToolSpec

__all__ = ["TOOLS", "ToolSpec", "build_server"]


def __getattr__(name: str) -> Any:
    if name == "build_server":
        from .server import build_server

        return build_server
    raise AttributeError(name)
