"""``butterflyfx mcp`` driven by the ``mcp`` client over stdio, against a real server.

The ``server`` fixture (conftest) is a real ``butterflyfx serve`` with API keys; each test
starts ``butterflyfx mcp`` as a subprocess with a key and calls its tools as an MCP
client would. Every await is bounded: the session by ``anyio.fail_after``, each request
by the session's read timeout.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.types import CallToolResult

from butterflyfx.interface.ai import TOOLS

SESSION_TIMEOUT = 120.0
REQUEST_TIMEOUT = timedelta(seconds=60)
MULTIPLY = "lambda **kw: kw.get('x', 0) * kw.get('y', 0)"

Story = Callable[[ClientSession], Awaitable[Any]]


def drive(log: Path, story: Story, *args: str, env: dict[str, str] | None = None) -> Any:
    """Start ``butterflyfx mcp ARGS`` and run ``story`` on an initialized session with it."""
    command = StdioServerParameters(
        command=sys.executable,
        args=["-m", "butterflyfx.server.cli", "mcp", *args],
        env={**os.environ, **(env or {})},
    )

    async def session() -> Any:
        with anyio.fail_after(SESSION_TIMEOUT), log.open("w") as errlog:
            async with stdio_client(command, errlog=errlog) as (read, write):
                async with ClientSession(read, write, REQUEST_TIMEOUT) as client:
                    await client.initialize()
                    return await story(client)

    return asyncio.run(session())


def answer(result: CallToolResult) -> Any:
    """The JSON a successful tool call answered."""
    assert not result.isError, result.content
    return json.loads(result.content[0].text)  # type: ignore[union-attr]


def error_text(result: CallToolResult) -> str:
    assert result.isError, result.content
    return result.content[0].text  # type: ignore[union-attr]


def test_the_tools_are_listed_with_the_request_models_schemas(server, tmp_path):
    async def story(client: ClientSession) -> Any:
        return (await client.list_tools()).tools

    tools = {tool.name: tool for tool in drive(tmp_path / "mcp.log", story, "--url", server.url)}

    assert set(tools) == {spec.name for spec in TOOLS} == {
        "create", "get", "search", "invoke", "divide", "multiply", "relate", "traverse",
    }  # fmt: skip
    create = tools["create"].inputSchema
    assert create["required"] == ["expression_type", "expression_code"]
    assert create["properties"]["expression_type"]["maxLength"] == 64
    assert set(tools["relate"].inputSchema["properties"]) == {
        "source_id", "target_id", "relationship_type", "bidirectional", "weight", "metadata",
    }  # fmt: skip
    assert tools["traverse"].inputSchema["properties"]["direction"]["enum"] == ["out", "in", "both"]
    assert tools["invoke"].inputSchema["required"] == ["substrate_id"]
    assert all(tool.description and "substrate" in tool.description for tool in tools.values())
    assert tools["get"].annotations.readOnlyHint and not tools["create"].annotations.readOnlyHint


def test_create_invoke_divide_multiply_relate_traverse_and_search(server, tmp_path):
    async def story(client: ClientSession) -> dict[str, Any]:
        async def call(tool: str, **arguments: Any) -> Any:
            return answer(await client.call_tool(tool, arguments))

        seen: dict[str, Any] = {}
        seen["made"] = await call(
            "create", expression_type="lambda", expression_code=MULTIPLY,
            metadata={"name": "mcp-product"},
        )  # fmt: skip
        other = await call(
            "create", expression_type="lambda", expression_code="lambda **kw: 11",
            metadata={"name": "mcp-eleven"},
        )  # fmt: skip
        a, b = seen["ids"] = seen["made"]["substrate_id"], other["substrate_id"]
        seen["got"] = await call("get", substrate_id=a)
        seen["invoked"] = await call("invoke", substrate_id=a, parameters={"x": 5, "y": 7})
        seen["divided"] = await call("divide", substrate_id=a)
        seen["rebuilt"] = await call("multiply", dimensions=seen["divided"]["dimensions"])
        seen["product"] = await call("multiply", substrate_ids=[a, b])
        seen["related"] = await call(
            "relate", source_id=a, target_id=b, relationship_type="dependency"
        )
        seen["reached"] = await call("traverse", start_id=a)
        seen["found"] = await call("search", name_prefix="mcp-")
        return seen

    seen = drive(tmp_path / "mcp.log", story, "--url", server.url, "--key", server.admin_key)
    a, b = seen["ids"]

    assert seen["got"] == seen["made"] and seen["made"]["expression_code"] == MULTIPLY
    assert seen["invoked"]["result"] == 35
    assert len(seen["divided"]["dimensions"]) == 9 and seen["rebuilt"]["substrate_id"] == a
    assert (seen["related"]["source_id"], seen["related"]["target_id"]) == (a, b)
    assert [(r["substrate_id"], r["depth"]) for r in seen["reached"]["results"]] == [(a, 0), (b, 1)]
    assert {s["substrate_id"] for s in seen["found"]["items"]} >= {a, b}
    assert seen["product"]["substrate_id"] not in (a, b)


def test_a_key_without_write_gets_a_tool_error_naming_the_refusal(server, client, tmp_path):
    reader = client.create_key(tier="free", scopes=["read"], name="mcp reader")

    async def story(session: ClientSession) -> tuple[CallToolResult, CallToolResult]:
        refused = await session.call_tool(
            "create", {"expression_type": "lambda", "expression_code": "lambda: 3"}
        )
        allowed = await session.call_tool("search", {})
        return refused, allowed

    # The URL and key from the environment, as an MCP client config would give them.
    env = {"BUTTERFLYFX_URL": server.url, "BUTTERFLYFX_API_KEY": reader.key}
    refused, allowed = drive(tmp_path / "mcp.log", story, env=env)

    text = error_text(refused)
    assert "403" in text and "write" in text
    assert json.loads(text.split("problem: ", 1)[1])["status"] == 403
    assert "items" in answer(allowed)


def test_a_bad_expression_gets_a_tool_error_naming_the_field(server, tmp_path):
    async def story(session: ClientSession) -> CallToolResult:
        return await session.call_tool(
            "create", {"expression_type": "lambda", "expression_code": "lambda: __import__('os')"}
        )

    text = error_text(drive(tmp_path / "mcp.log", story, "--url", server.url,
                            "--key", server.admin_key))  # fmt: skip

    assert "(field: expression_code)" in text
    assert json.loads(text.split("problem: ", 1)[1])["field"] == "expression_code"
