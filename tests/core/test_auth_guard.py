"""The guard every request passes: who is asking (authenticate), may they (authorize), how
often (rate limit) — each decided by plugins a third party could write, here given to the
real plugin host and driven through the real HTTP app."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from butterflyfx.core.auth import (
    ANONYMOUS,
    Caller,
    Principal,
    RateLimit,
    open_route,
    requires,
    unauthenticated,
)
from butterflyfx.core.config import read_config
from butterflyfx.core.context import ServerContext
from butterflyfx.core.hookspecs import hookimpl
from butterflyfx.plugins.http.app import create_app

SUBSTRATES = "/api/v1/substrates"
DOUBLE = {"expression_type": "lambda", "expression_code": "lambda **kw: kw.get('x', 0) * 2"}


class Tokens:
    """Bearer tokens ``t:<tenant>:<scopes>``; refuses ``t:revoked:...`` by name."""

    @hookimpl
    def butterflyfx_authenticate(self, caller: Caller) -> Principal | None:
        token = caller.token or ""
        if not token.startswith("t:"):
            return None  # not ours: another plugin may know it
        _, tenant, scopes = token.split(":")
        if tenant == "revoked":
            raise unauthenticated("this token was revoked")
        return Principal(tenant, f"user-of-{tenant}", "pro", frozenset(scopes.split(",")), "tokens")


class Verdict:
    """Answers every authorize question with ``verdict`` and remembers the questions."""

    def __init__(self, verdict: bool | None) -> None:
        self.verdict, self.asked = verdict, []

    @hookimpl
    async def butterflyfx_authorize(self, principal: Principal, action: str) -> bool | None:
        self.asked.append((principal.tenant, action))
        return self.verdict


class Counter:
    """Allows ``limit`` requests per key (tenant, or address without a principal)."""

    def __init__(self, limit: int) -> None:
        self.limit, self.seen, self.keys = limit, {}, []

    @hookimpl
    def butterflyfx_rate_limit(self, principal: Principal | None, caller: Caller) -> RateLimit:
        key = principal.tenant if principal else f"address:{caller.client}"
        self.keys.append(key)
        self.seen[key] = self.seen.get(key, 0) + 1
        used = self.seen[key]
        reset = int(time.time()) + 60
        return RateLimit(used <= self.limit, self.limit, self.limit - used, reset)


def serve(tmp_path: Path, story: Callable[[Any], Awaitable[Any]], **plugins: object) -> Any:
    names = ",".join(["storage.memory", "graph.memory", "http", *plugins])
    config = read_config(None, {"BUTTERFLYFX_PLUGINS": names}, {"data_dir": tmp_path})
    app = create_app(ServerContext.build(config, plugins))

    async def main() -> Any:
        async with app.test_app() as running:
            return await story(running.test_client())

    return asyncio.run(main())


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, await response.get_data()
    assert response.headers["Content-Type"] == "application/problem+json"
    return orjson.loads(await response.get_data())


def test_without_an_auth_plugin_every_request_acts_for_default_with_every_scope(tmp_path):
    async def story(client: Any) -> None:
        created = await client.post(SUBSTRATES, json=DOUBLE)
        assert created.status_code == 201
        assert "X-RateLimit-Limit" not in created.headers  # no limiter, no headers

    serve(tmp_path, story)
    assert ANONYMOUS.tenant == "default" and ANONYMOUS.may("admin")


def test_with_an_auth_plugin_a_request_without_credentials_is_401_with_a_bearer_challenge(
    tmp_path,
):
    async def story(client: Any) -> None:
        for response in (
            await client.get(SUBSTRATES),
            await client.get(SUBSTRATES, headers={"Authorization": "Basic dTpw"}),
            await client.get(SUBSTRATES, headers={"Authorization": "Bearer "}),
        ):
            refused = await problem(response, 401)
            assert response.headers["WWW-Authenticate"] == 'Bearer realm="butterflyfx"'
            assert "Authorization: Bearer" in refused["detail"]
        # Health, the OpenAPI document and the docs page stay open.
        assert (await client.get("/api/v1/health")).status_code == 200
        assert (await client.get("/api/v1/openapi.json")).status_code == 200
        assert (await client.get("/api/v1/docs")).status_code == 200

    serve(tmp_path, story, tokens=Tokens())


def test_a_token_no_plugin_recognises_and_a_refused_token_are_401_saying_why(tmp_path):
    async def story(client: Any) -> None:
        unknown = await client.get(SUBSTRATES, headers=bearer("sk-nobody-knows-this"))
        assert (await problem(unknown, 401))["detail"] == "the credentials were not recognised"
        challenge = unknown.headers["WWW-Authenticate"]
        assert challenge == 'Bearer realm="butterflyfx", error="invalid_token"'
        revoked = await client.get(SUBSTRATES, headers=bearer("t:revoked:read"))
        assert (await problem(revoked, 401))["detail"] == "this token was revoked"

    serve(tmp_path, story, tokens=Tokens())


def test_the_principals_tenant_is_the_only_one_its_requests_see(tmp_path):
    async def story(client: Any) -> None:
        acme = bearer("t:acme:read,write,invoke")
        made = await client.post(SUBSTRATES, json=DOUBLE, headers=acme)
        substrate_id = (await made.get_json())["substrate_id"]
        globex = bearer("t:globex:read,write,invoke")
        hidden = await client.get(f"{SUBSTRATES}/{substrate_id}", headers=globex)
        await problem(hidden, 404)
        invoked = await client.post(
            f"{SUBSTRATES}/{substrate_id}/invoke", json={"parameters": {"x": 2}}, headers=acme
        )
        assert (await invoked.get_json())["result"] == 4
        # The same expression in globex is globex's own substrate, with the same id.
        again = await client.post(SUBSTRATES, json=DOUBLE, headers=globex)
        assert again.status_code == 201
        assert (await again.get_json())["substrate_id"] == substrate_id

    serve(tmp_path, story, tokens=Tokens())


def test_scopes_decide_each_action_when_no_plugin_has_an_opinion(tmp_path):
    async def story(client: Any) -> None:
        reader = bearer("t:acme:read")
        assert (await client.get(SUBSTRATES, headers=reader)).status_code == 200
        refused = await problem(await client.post(SUBSTRATES, json=DOUBLE, headers=reader), 403)
        assert refused["action"] == "write" and refused["scopes"] == ["read"]
        writer = bearer("t:acme:write")
        made = await client.post(SUBSTRATES, json=DOUBLE, headers=writer)
        substrate_id = (await made.get_json())["substrate_id"]
        invoke = f"{SUBSTRATES}/{substrate_id}/invoke"
        refused = await problem(await client.post(invoke, json={}, headers=writer), 403)
        assert refused["action"] == "invoke"
        assert (await client.get(SUBSTRATES, headers=writer)).status_code == 403

    verdict = Verdict(None)
    serve(tmp_path, story, tokens=Tokens(), verdict=verdict)
    assert ("acme", "read") in verdict.asked and ("acme", "invoke") in verdict.asked


@pytest.mark.parametrize(
    ("verdicts", "status"),
    [((True,), 201), ((False,), 403), ((True, False), 403), ((None, True), 201)],
    ids=["allow", "refuse", "any-refusal-wins", "one-allows"],
)
def test_an_authorize_plugin_can_allow_beyond_scopes_and_any_refusal_wins(
    tmp_path, verdicts, status
):
    async def story(client: Any) -> int:
        response = await client.post(SUBSTRATES, json=DOUBLE, headers=bearer("t:acme:read"))
        return int(response.status_code)

    plugins = {f"verdict{i}": Verdict(v) for i, v in enumerate(verdicts)}
    assert serve(tmp_path, story, tokens=Tokens(), **plugins) == status


def test_limited_responses_count_down_and_the_request_over_the_limit_is_429(tmp_path):
    async def story(client: Any) -> None:
        acme = bearer("t:acme:read")
        for remaining in (2, 1, 0):
            response = await client.get(SUBSTRATES, headers=acme)
            assert response.status_code == 200
            assert response.headers["X-RateLimit-Limit"] == "3"
            assert response.headers["X-RateLimit-Remaining"] == str(remaining)
            assert int(response.headers["X-RateLimit-Reset"]) > time.time()
        over = await client.get(SUBSTRATES, headers=acme)
        refused = await problem(over, 429)
        assert refused["limit"] == 3 and 1 <= int(over.headers["Retry-After"]) <= 60
        assert over.headers["X-RateLimit-Remaining"] == "0"
        # another tenant has its own budget; open routes are counted by address
        assert (await client.get(SUBSTRATES, headers=bearer("t:globex:read"))).status_code == 200
        health = await client.get("/api/v1/health")
        assert health.status_code == 200 and health.headers["X-RateLimit-Remaining"] == "2"

    counter = Counter(3)
    serve(tmp_path, story, tokens=Tokens(), counter=counter)
    assert "acme" in counter.keys and any(k.startswith("address:") for k in counter.keys)


def test_a_refused_scope_still_reports_the_rate_limit_and_failed_logins_count_by_address(
    tmp_path,
):
    async def story(client: Any) -> None:
        refused = await client.post(SUBSTRATES, json=DOUBLE, headers=bearer("t:acme:read"))
        await problem(refused, 403)
        assert refused.headers["X-RateLimit-Remaining"] == "4"
        for _ in range(2):
            await problem(await client.get(SUBSTRATES, headers=bearer("wrong")), 401)

    counter = Counter(5)
    serve(tmp_path, story, tokens=Tokens(), counter=counter)
    assert counter.keys.count("acme") == 1
    assert sum(key.startswith("address:") for key in counter.keys) == 2


def test_the_tightest_of_several_limits_is_reported(tmp_path):
    async def story(client: Any) -> None:
        response = await client.get(SUBSTRATES, headers=bearer("t:acme:read"))
        assert response.headers["X-RateLimit-Limit"] == "2"

    serve(tmp_path, story, tokens=Tokens(), wide=Counter(100), narrow=Counter(2))


def test_a_plugins_route_marks_say_which_action_it_needs_and_unmarked_routes_are_not_open(
    tmp_path,
):
    from quart import Blueprint, g

    class Extra:
        @hookimpl
        def butterflyfx_routes(self, app: Any) -> None:
            bp = Blueprint("extra", __name__, url_prefix="/api/v1/extra")

            @bp.get("/open")
            @open_route
            async def anyone() -> dict[str, Any]:
                return {"open": True}

            @bp.post("/admin")
            @requires("admin")
            async def admins() -> dict[str, Any]:
                return {"tenant": g.principal.tenant}

            @bp.get("/unmarked")
            async def unmarked() -> dict[str, Any]:
                return {"read": True}

            app.register_blueprint(bp)

    async def story(client: Any) -> None:
        assert (await client.get("/api/v1/extra/open")).status_code == 200
        await problem(await client.get("/api/v1/extra/unmarked"), 401)
        ok = await client.get("/api/v1/extra/unmarked", headers=bearer("t:acme:read"))
        assert ok.status_code == 200
        await problem(await client.post("/api/v1/extra/admin", headers=bearer("t:acme:read")), 403)
        admin = await client.post("/api/v1/extra/admin", headers=bearer("t:acme:admin"))
        assert await admin.get_json() == {"tenant": "acme"}

    serve(tmp_path, story, tokens=Tokens(), extra=Extra())
    with pytest.raises(ValueError, match="action must be one of"):
        requires("delete")  # type: ignore[arg-type]


def test_a_plugin_may_trust_a_header_its_proxy_sets_instead_of_a_bearer_token(tmp_path):
    class ProxyUser:
        @hookimpl
        def butterflyfx_authenticate(self, caller: Caller) -> Principal | None:
            user = caller.headers.get("x-proxy-user")
            return Principal("proxied", user, "pro", frozenset({"read"}), "proxy") if user else None

    async def story(client: Any) -> None:
        trusted = await client.get(SUBSTRATES, headers={"X-Proxy-User": "ada"})
        assert trusted.status_code == 200
        await problem(await client.get(SUBSTRATES), 401)

    serve(tmp_path, story, proxy=ProxyUser())


def test_search_stats_graph_traverse_and_paths_see_only_the_callers_tenant(tmp_path):
    """acme relates two substrates; globex, holding the same expressions' ids, finds none."""

    async def story(client: Any) -> None:
        acme, globex = bearer("t:acme:read,write"), bearer("t:globex:read,write")
        ids = []
        for n in (1, 2):
            code = f"lambda **kw: kw.get('x', 0) + {n}"
            made = await client.post(
                SUBSTRATES, headers=acme,
                json={"expression_type": "lambda", "expression_code": code,
                      "metadata": {"name": f"n{n}"}},
            )  # fmt: skip
            ids.append((await made.get_json())["substrate_id"])
        related = await client.post(
            "/api/v1/relationships", headers=acme,
            json={"source_id": ids[0], "target_id": ids[1], "relationship_type": "dependency"},
        )  # fmt: skip
        assert related.status_code == 201

        search = {"name_prefix": "n"}
        found = await client.post("/api/v1/query/search", json=search, headers=acme)
        assert len((await found.get_json())["items"]) == 2
        hidden = await client.post("/api/v1/query/search", json=search, headers=globex)
        assert (await hidden.get_json())["items"] == []

        mine = await (await client.get("/api/v1/query/stats", headers=acme)).get_json()
        theirs = await (await client.get("/api/v1/query/stats", headers=globex)).get_json()
        assert (mine["substrates"], mine["relationships"]["by_type"]) == (2, {"dependency": 1})
        assert (theirs["substrates"], theirs["relationships"]["total"]) == (0, 0)

        traverse = {"start_id": ids[0], "direction": "out"}
        reached = await client.post("/api/v1/query/traverse", json=traverse, headers=acme)
        assert len((await reached.get_json())["results"]) == 2
        for response in (
            await client.post("/api/v1/query/traverse", json=traverse, headers=globex),
            await client.post(
                "/api/v1/query/path",
                headers=globex,
                json={"source_id": ids[0], "target_id": ids[1]},
            ),  # fmt: skip
            await client.get(
                "/api/v1/relationships/graph", query_string={"root": ids[0]}, headers=globex
            ),
            await client.get(f"/api/v1/relationships/outgoing/{ids[0]}", headers=globex),
        ):
            await problem(response, 404)

    serve(tmp_path, story, tokens=Tokens())


def test_a_route_for_any_principal_needs_credentials_but_no_particular_scope(tmp_path):
    from quart import Blueprint

    from butterflyfx.core.auth import any_principal

    class Status:
        @hookimpl
        def butterflyfx_routes(self, app: Any) -> None:
            bp = Blueprint("status", __name__)

            @bp.get("/api/whoami")
            @any_principal
            async def whoami() -> dict[str, Any]:
                return {"ok": True}

            app.register_blueprint(bp)

    async def story(client: Any) -> None:
        await problem(await client.get("/api/whoami"), 401)
        invoker = await client.get("/api/whoami", headers=bearer("t:acme:invoke"))
        assert invoker.status_code == 200

    serve(tmp_path, story, tokens=Tokens(), status=Status())
