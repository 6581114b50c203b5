"""``--max-connections N``: a worker serves N open connections; the first request of one
more gets 503 with ``Connection: close`` at once (never a hang), and a slot frees when a
connection closes: at once when the client says so, after ``--timeout`` when it just goes.

Every socket read has a timeout (``runtime_sockets``): a hang would fail, not stall.
"""

from __future__ import annotations

import asyncio
from typing import Any

from runtime_sockets import Closed, connect
from server_process import START_DEADLINE, wait_for

from butterflyfx.core.config import read_config
from butterflyfx.core.context import ServerContext
from butterflyfx.core.runtime import runtime_of
from butterflyfx.plugins.http.edge import Edge

OPEN_PLUGINS = {"BUTTERFLYFX_PLUGINS": "storage.sqlite,http"}


def answered_200(url: str) -> bool:
    """A new connection's first request is served (not refused with 503)."""
    try:
        return connect(url).get("/api/v1/health", close=True).status == 200
    except (Closed, ConnectionResetError):
        return False


def open_connections(url: str) -> int:
    """How many connections the worker holds open, the one asking included."""
    stats = connect(url).get("/api/stats", close=True).json()
    return sum(pool["total_connections"] for pool in stats["pools"].values())


def test_a_fourth_connection_is_refused_at_once_while_three_are_held(butterflyfx, tmp_path):
    server = butterflyfx.start(
        "--data-dir", str(tmp_path / "d"), "--max-connections", "3", "--timeout", "60",
        env=OPEN_PLUGINS,
    ).wait_ready()  # fmt: skip
    wait_for(lambda: open_connections(server.url) == 1, START_DEADLINE, "only the asker open")
    held = []
    for _ in range(3):
        conn = connect(server.url)
        assert conn.get("/api/v1/health").status == 200
        held.append(conn)

    fourth = connect(server.url)
    refused = fourth.get("/api/v1/health")
    assert refused.status == 503
    assert refused.headers["connection"] == "close" and refused.headers["retry-after"] == "1"
    problem = refused.json()
    assert problem["limit"] == 3 and "server.max_connections" in problem["detail"]
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["x-request-id"]
    assert fourth.closed_by_server()

    assert all(conn.get("/api/v1/health").status == 200 for conn in held)  # still served
    stats = held[0].get("/api/stats").json()
    assert stats["pools"]["api"]["refused"] >= 1
    assert stats["pools"]["api"]["total_connections"] == 3
    assert stats["requests"]["total_errors"] >= 1  # a refusal is a 503 like any other

    # One client says goodbye: its slot is free as soon as its last answer is sent.
    assert held.pop().get("/api/v1/health", close=True).headers["connection"] == "close"
    wait_for(lambda: answered_200(server.url), START_DEADLINE, "a free slot")


def test_a_connection_dropped_without_a_word_frees_its_slot_after_the_timeout(
    butterflyfx, tmp_path
):
    server = butterflyfx.start(
        "--data-dir", str(tmp_path / "d"), "--max-connections", "1", "--timeout", "1",
        env=OPEN_PLUGINS,
    ).wait_ready()  # fmt: skip
    wait_for(lambda: answered_200(server.url), START_DEADLINE, "the readiness check's slot")
    dropped = connect(server.url)
    assert dropped.get("/api/v1/health").status == 200
    dropped.close()  # no Connection: close; the server learns nothing

    # Refused until the idle sweep sees it gone (after 1 s idle), then served.
    wait_for(lambda: answered_200(server.url), START_DEADLINE, "the sweep to free the slot")


# -- WebSockets: no WebSocket route is needed to see the edge track and refuse them --------


def test_a_websocket_beyond_the_limit_is_refused_with_503_before_its_handshake(tmp_path):
    config = read_config(
        None, {"BUTTERFLYFX_PLUGINS": "storage.memory,http"},
        {"data_dir": tmp_path, "max_connections": 1},
    )  # fmt: skip
    ctx = ServerContext.build(config)
    release = asyncio.Event()
    seen: list[str] = []

    async def chat(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "websocket.accept"})
        seen.append("accepted")
        await release.wait()

    edge = Edge(chat, 1024, ctx)
    sent: list[dict[str, Any]] = []

    def websocket(port: int) -> dict[str, Any]:
        return {
            "type": "websocket", "path": "/api/v1/events", "headers": [],
            "client": ("127.0.0.1", port), "server": ("127.0.0.1", 8000),
            "extensions": {"websocket.http.response": {}},
        }  # fmt: skip

    async def story() -> None:
        async def record(message: dict[str, Any]) -> None:
            sent.append(message)

        async def nothing() -> dict[str, Any]:
            return {"type": "websocket.connect"}

        first = asyncio.create_task(edge(websocket(1), nothing, record))
        while not seen:
            await asyncio.sleep(0)
        tracker = runtime_of(ctx).connections
        assert tracker.state_counts("websocket")["active"] == 1
        await edge(websocket(2), nothing, record)  # one too many
        release.set()
        await first
        assert tracker.pool_totals("websocket")["total_closed"] == 1
        assert tracker.refused("websocket") == 1

    asyncio.run(story())
    refusal = next(m for m in sent if m["type"] == "websocket.http.response.start")
    assert refusal["status"] == 503 and (b"connection", b"close") in refusal["headers"]
