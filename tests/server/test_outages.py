"""A real server whose shared services go away while it runs, and come back.

The server reaches PostgreSQL or Redis through a link the test cuts and restores
(``ready_proxy``), as a network outage or a restart would. While the store is cut every
request that needs it answers 503 problem+json with ``Retry-After`` (never a 500, never a
hang), readiness names the store, liveness still answers 200, and what needs no store
(status, manifold) keeps working; once restored the same requests succeed, with the data
written before the outage, without a restart. With the rate limiter's Redis cut, reads
pass uncounted and writes wait (503), as ``[ratelimit.on_storage_error]`` says by default.
Deadlines only keep a broken run from hanging; nothing here is timed.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from ready_proxy import TcpLink
from server_process import Server, wait_for

from butterflyfx.testing import services

sys.path.append(str(Path(__file__).parents[1] / "plugins"))  # where postgres_service is
from postgres_service import POSTGRES_DSN, postgres_schema

RECOVERY_DEADLINE = 60.0
SUBSTRATES = "/api/v1/substrates"


def adding(n: int) -> dict[str, Any]:
    """A substrate of its own for each ``n`` (the identity is the expression's)."""
    return {"expression_type": "lambda", "expression_code": f"lambda **kw: kw.get('x', 0) + {n}"}


@pytest.fixture
def prefix() -> Iterator[str]:
    with services.redis_prefix(services.REDIS_URL) as chosen:
        yield chosen


def link_to(url: str, default_port: int) -> TcpLink:
    target = urlsplit(url)
    return TcpLink(target.hostname or "127.0.0.1", target.port or default_port)


def start(butterflyfx: Any, tmp_path: Path, config: str) -> Server:
    path = tmp_path / "butterflyfx.toml"
    path.write_text(config)
    return butterflyfx.start("--config", str(path), "--data-dir", str(tmp_path / "data"))


def make_world(client: httpx.Client) -> dict[str, str]:
    """Two substrates and a relationship between them; their ids."""
    ids = {}
    for name, n in (("first", 1), ("second", 2)):
        made = client.post(SUBSTRATES, json=adding(n))
        assert made.status_code == 201, made.text
        ids[name] = made.json()["substrate_id"]
    related = client.post(
        "/api/v1/relationships",
        json={"source_id": ids["first"], "target_id": ids["second"],
              "relationship_type": "dependency"},
    )  # fmt: skip
    assert related.status_code == 201, related.text
    ids["relationship"] = related.json()["relationship_id"]
    return ids


def store_requests(ids: dict[str, str]) -> dict[str, tuple[str, str, dict[str, Any] | None]]:
    """Every kind of request that needs the store, by name: (method, path, JSON body)."""
    first, second = ids["first"], ids["second"]
    return {
        "list substrates": ("GET", SUBSTRATES, None),
        "get a substrate": ("GET", f"{SUBSTRATES}/{first}", None),
        "create a substrate": ("POST", SUBSTRATES, adding(3)),
        "invoke": ("POST", f"{SUBSTRATES}/{first}/invoke", {"parameters": {"x": 1}}),
        "divide": ("POST", f"{SUBSTRATES}/{first}/divide", None),
        "outgoing relationships": ("GET", f"/api/v1/relationships/outgoing/{first}", None),
        "get a relationship": ("GET", f"/api/v1/relationships/{ids['relationship']}", None),
        "graph": ("GET", f"/api/v1/relationships/graph?root={first}", None),
        "traverse": ("POST", "/api/v1/query/traverse", {"start_id": first}),
        "path": ("POST", "/api/v1/query/path", {"source_id": first, "target_id": second}),
        "search": ("POST", "/api/v1/query/search", {"expression_type": "lambda"}),
        "query stats": ("GET", "/api/v1/query/stats", None),
    }


def send(client: httpx.Client, request: tuple[str, str, dict[str, Any] | None]) -> httpx.Response:
    method, path, body = request
    return client.request(method, path, json=body)


def assert_unavailable(answer: httpx.Response, store: str, what: str) -> None:
    assert answer.status_code == 503, f"{what}: {answer.status_code} {answer.text}"
    assert answer.headers["Content-Type"] == "application/problem+json", what
    assert answer.headers["Retry-After"] == "5", what
    problem = answer.json()
    assert problem["type"].endswith("/unavailable") and problem["store"] == store, what
    assert problem["detail"] == f"{store} cannot be reached right now; retry after 5 s", what


def outage_and_recovery(server: Server, link: TcpLink, store: str) -> None:
    """The story both stores tell: cut, every store request 503 and the rest fine;
    restored, everything answers again with the data made before."""
    client = server.client()
    ids = make_world(client)
    requests = store_requests(ids)
    assert {name: send(client, r).status_code for name, r in requests.items()} == {
        name: 201 if name == "create a substrate" else 200 for name in requests
    }

    link.cut()
    for name, request in requests.items():
        assert_unavailable(send(client, request), store, name)
    ready = client.get("/api/v1/ready")
    assert ready.status_code == 503, ready.text
    assert ready.json()["down"] == [store]
    assert ready.json()["detail"].startswith(f"plugin down: {store}: {store} is unavailable: ")
    alive = client.get("/api/v1/health")
    assert alive.status_code == 200  # a liveness probe must not restart it for the store
    assert alive.json()["plugins"][store]["status"] == "down"
    for path in ("/api/status", "/api/stats", "/api/manifold/evaluate?spiral=1&level=2&position=0"):
        assert client.get(path).status_code == 200, path  # they need no store

    link.restore()
    wait_for(
        lambda: client.get("/api/v1/ready").status_code == 200,
        RECOVERY_DEADLINE,
        f"/api/v1/ready to answer 200 once {store} is reachable again",
    )
    again = {name: send(client, r) for name, r in requests.items()}
    assert {name: answer.status_code for name, answer in again.items()} == {
        name: 200
        for name in requests  # the substrate created before the cut is there
    }
    assert again["get a substrate"].json()["substrate_id"] == ids["first"]
    assert client.get(f"{SUBSTRATES}/{ids['second']}").status_code == 200
    assert server.stop() == 0
    assert "Traceback" not in server.log_text()


def test_a_postgres_outage_answers_503_with_retry_after_and_the_server_recovers_by_itself(
    butterflyfx, tmp_path
):
    with postgres_schema() as schema, link_to(POSTGRES_DSN, 5432) as link:
        server = start(
            butterflyfx, tmp_path,
            'plugins = ["storage.postgres", "graph.sql", "http"]\n'
            f'[storage.postgres]\ndsn = "{link.dsn()}"\nschema = "{schema}"\n',
        ).wait_ready()  # fmt: skip
        outage_and_recovery(server, link, "storage.postgres")


def test_a_redis_store_outage_answers_503_with_retry_after_and_the_server_recovers_by_itself(
    butterflyfx, tmp_path, prefix
):
    with link_to(services.REDIS_URL, 6379) as link:
        server = start(
            butterflyfx, tmp_path,
            'plugins = ["storage.redis", "graph.memory", "http"]\n'
            f'[storage.redis]\nurl = "{link.url}"\nprefix = "{prefix}"\n',
        ).wait_ready()  # fmt: skip
        outage_and_recovery(server, link, "storage.redis")


def test_with_the_rate_limiter_s_redis_cut_reads_pass_writes_wait_and_readiness_says_so(
    butterflyfx, tmp_path, prefix
):
    with link_to(services.REDIS_URL, 6379) as link:
        server = start(
            butterflyfx, tmp_path,
            'plugins = ["storage.sqlite", "graph.sql", "http", "auth.apikey", "ratelimit"]\n'
            '[auth.apikey]\nbootstrap_tier = "pro"\n'  # a counted tier: enterprise is not
            f'[ratelimit]\nstorage = "{link.url}"\nkey_prefix = "{prefix}"\n',
        ).wait_ready()  # fmt: skip
        client = server.client()
        made = client.post(SUBSTRATES, json=adding(1))
        assert made.status_code == 201, made.text
        assert made.headers["X-RateLimit-Limit"] == "1000"
        first = made.json()["substrate_id"]

        link.cut()
        read = client.get(f"{SUBSTRATES}/{first}")
        invoked = client.post(f"{SUBSTRATES}/{first}/invoke", json={"parameters": {"x": 1}})
        assert read.status_code == invoked.status_code == 200, (read.text, invoked.text)
        assert "X-RateLimit-Limit" not in read.headers  # passed uncounted: no count to tell
        refused = client.post(SUBSTRATES, json=adding(2))
        assert refused.status_code == 503, refused.text
        assert refused.headers["Retry-After"] == "5"
        assert refused.json()["type"].endswith("/rate-limit-unavailable")
        assert "on_storage_error] write is fail_closed" in refused.json()["detail"]
        ready = client.get("/api/v1/ready")
        assert ready.status_code == 200, ready.text  # degraded still serves
        limiter = ready.json()["plugins"]["ratelimit"]
        assert limiter["status"] == "degraded" and limiter["redis"] == "unreachable", limiter
        assert limiter["on_storage_error"]["write"] == "fail_closed"
        assert limiter["on_storage_error"]["read"] == "fail_open"

        link.restore()
        wait_for(
            lambda: client.get("/api/v1/ready").json()["plugins"]["ratelimit"]["status"] == "ok",
            RECOVERY_DEADLINE,
            "the rate limiter to report ok once its Redis is reachable again",
        )
        written = client.post(SUBSTRATES, json=adding(2))
        assert written.status_code == 201, (written.text, server.log_text()[-4000:])
        assert written.headers["X-RateLimit-Limit"] == "1000"
        assert server.stop() == 0
