"""The FastMCP server: one tool per :data:`~.tools.TOOLS` entry, over one API client.

An error answer of the API becomes an MCP tool error (``isError``) whose text says the
status, title and detail, names the field at fault, and ends with the problem+json, so a
model can correct its call; a refused key reads as the 403 the HTTP server answered.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from mcp.server.fastmcp import FastMCP
from mcp.server.fastmcp.exceptions import ToolError
from mcp.types import ToolAnnotations

from butterflyfx.interface.client import AsyncButterflyFX, ButterflyFXError

from .tools import TOOLS, ToolSpec, as_json, signature_of

NAME = "butterflyfx"
INSTRUCTIONS = (
    "Tools over a ButterflyFX server: substrates are content-addressed expressions "
    "(create, get, search, invoke, divide, multiply) joined by typed relationships "
    "(relate, traverse). Every call uses one API key; its tenant and scopes decide what "
    "is allowed. Errors name the field at fault."
)


def problem_text(error: ButterflyFXError) -> str:
    """The tool error's text: a sentence a model can act on, then the problem itself."""
    said = f"{error.status} {error.title}: {error.detail}" if error.status else error.detail
    if error.field:
        said += f" (field: {error.field})"
    if error.problem:
        said += "\nproblem: " + json.dumps(error.problem, sort_keys=True)
    return said


def _tool(spec: ToolSpec, client: AsyncButterflyFX) -> Any:
    async def run(**arguments: Any) -> dict[str, Any]:
        try:
            answer = await spec.request(client, **arguments)
        except ButterflyFXError as error:
            raise ToolError(problem_text(error)) from error
        data = as_json(answer)
        return data if isinstance(data, dict) else {"result": data}

    run.__name__ = spec.name
    run.__doc__ = spec.description
    run.__signature__ = signature_of(spec)  # type: ignore[attr-defined]
    return run


def build_server(url: str, api_key: str | None, **client_options: Any) -> FastMCP:
    """A FastMCP server whose tools call the API at ``url`` with ``api_key``; the client
    is closed when the server's session ends."""
    client = AsyncButterflyFX(url, api_key=api_key, **client_options)

    @asynccontextmanager
    async def lifespan(_: FastMCP) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await client.close()

    server = FastMCP(NAME, instructions=INSTRUCTIONS, lifespan=lifespan)
    for spec in TOOLS:
        server.add_tool(
            _tool(spec, client),
            name=spec.name,
            description=spec.description,
            annotations=ToolAnnotations(readOnlyHint=spec.read_only, openWorldHint=False),
            structured_output=False,
        )
    return server
