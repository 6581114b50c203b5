"""The ``ratelimit`` plugin as clients and operators meet it: tiers, headers, 429s, Redis.

Servers run in process (see ``ratelimit_server``) with the real ``limits`` library. The
Redis stories use the Redis server on 127.0.0.1:6379: they skip when it does not answer,
unless BUTTERFLYFX_REQUIRE_SERVICES=1 makes that a failure. Each test counts under a key
prefix of its own and deletes only its own keys.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
import redis
from ratelimit_proxy import CuttableLink
from ratelimit_server import bearer, build_context, rate_headers, running_client, serve

from butterflyfx.core.config import ConfigError
from butterflyfx.core.plugins import PluginError
from butterflyfx.testing import services
from butterflyfx.testing.process import free_port

REDIS_URL = "redis://127.0.0.1:6379/0"
SUBSTRATES = "/api/v1/substrates"
HEALTH = "/api/v1/health"


def from_address(address: str) -> dict[str, object]:
    return {"scope_base": {"client": (address, 40000)}}


def test_a_free_key_gets_429_on_its_101st_request_in_a_minute_and_its_headers_count_down(
    tmp_path,
):
    async def scenario(client):
        answers = [await client.get(SUBSTRATES, headers=bearer("free-token")) for _ in range(101)]
        return answers, await answers[-1].get_json(), time.time()

    started = time.time()
    answers, refusal, ended = serve(tmp_path, {}, scenario)

    *allowed, refused = answers
    assert [answer.status_code for answer in allowed] == [200] * 100
    assert [rate_headers(a)["x-ratelimit-remaining"] for a in allowed] == [
        str(left) for left in range(99, -1, -1)
    ]
    assert {rate_headers(answer)["x-ratelimit-limit"] for answer in answers} == {"100"}
    resets = {int(rate_headers(answer)["x-ratelimit-reset"]) for answer in answers}
    assert all(started < reset <= ended + 61 for reset in resets)  # within the next minute
    assert refused.status_code == 429
    assert refused.headers["Content-Type"] == "application/problem+json"
    assert 1 <= int(refused.headers["Retry-After"]) <= 61
    assert rate_headers(refused)["x-ratelimit-remaining"] == "0"
    assert refusal["status"] == 429
    assert refusal["type"].endswith("/rate-limited")
    assert refusal["limit"] == 100 and refusal["window_seconds"] == 60


def test_a_pro_key_makes_150_requests_without_a_429_and_sees_its_limit_of_1000(tmp_path):
    async def scenario(client):
        return [await client.get(SUBSTRATES, headers=bearer("pro-token")) for _ in range(150)]

    answers = serve(tmp_path, {}, scenario)

    assert {answer.status_code for answer in answers} == {200}
    assert {rate_headers(answer)["x-ratelimit-limit"] for answer in answers} == {"1000"}
    assert rate_headers(answers[-1])["x-ratelimit-remaining"] == "850"


def test_an_enterprise_key_is_unlimited_and_gets_no_rate_limit_headers_that_would_lie(tmp_path):
    async def scenario(client):
        return [
            await client.get(SUBSTRATES, headers=bearer("enterprise-token")) for _ in range(120)
        ]

    answers = serve(tmp_path, {"tiers": {"free": "3/minute"}}, scenario)

    assert {answer.status_code for answer in answers} == {200}
    assert all(rate_headers(answer) == {} for answer in answers)


def test_two_tenants_have_separate_budgets_and_tiers_are_set_in_the_config(tmp_path):
    async def scenario(client):
        acme = [await client.get(SUBSTRATES, headers=bearer("free-token")) for _ in range(4)]
        globex = await client.get(SUBSTRATES, headers=bearer("other-free-token"))
        return acme, globex

    acme, globex = serve(tmp_path, {"tiers": {"free": "3/minute"}}, scenario)

    assert [answer.status_code for answer in acme] == [200, 200, 200, 429]
    assert rate_headers(acme[0])["x-ratelimit-limit"] == "3"
    assert globex.status_code == 200  # acme's spent budget is not globex's
    assert rate_headers(globex)["x-ratelimit-remaining"] == "2"


def test_a_tier_the_config_does_not_name_gets_the_free_limit(tmp_path):
    async def scenario(client):
        return await client.get(SUBSTRATES, headers=bearer("gold-token"))

    answer = serve(tmp_path, {"tiers": {"free": "7/minute"}}, scenario)

    assert answer.status_code == 200
    assert rate_headers(answer)["x-ratelimit-limit"] == "7"


def test_anonymous_requests_to_health_are_limited_per_client_address(tmp_path):
    async def scenario(client):
        first = [await client.get(HEALTH, **from_address("198.51.100.7")) for _ in range(6)]
        second = await client.get(HEALTH, **from_address("203.0.113.9"))
        return first, second

    first, second = serve(tmp_path, {"anonymous": "5/minute"}, scenario)

    assert [answer.status_code for answer in first] == [200] * 5 + [429]
    assert [rate_headers(a)["x-ratelimit-remaining"] for a in first[:5]] == list("43210")
    assert rate_headers(first[0])["x-ratelimit-limit"] == "5"
    assert second.status_code == 200 and rate_headers(second)["x-ratelimit-remaining"] == "4"


def test_guessing_tokens_from_one_address_is_slowed_to_429(tmp_path):
    async def scenario(client):
        guesses = [
            await client.get(SUBSTRATES, headers=bearer(f"guess-{n}"), **from_address("192.0.2.4"))
            for n in range(4)
        ]
        health = await client.get(HEALTH, **from_address("192.0.2.4"))
        return guesses, health

    guesses, health = serve(tmp_path, {"anonymous": "3/minute"}, scenario)

    assert [answer.status_code for answer in guesses] == [401, 401, 401, 429]
    assert health.status_code == 429  # the failed attempts spent the address's budget


@pytest.mark.parametrize("strategy", ["moving-window", "fixed-window", "sliding-window-counter"])
def test_every_strategy_refuses_the_request_over_the_limit(tmp_path, strategy):
    async def scenario(client):
        return [await client.get(SUBSTRATES, headers=bearer("free-token")) for _ in range(4)]

    answers = serve(tmp_path, {"strategy": strategy, "tiers": {"free": "3/minute"}}, scenario)

    assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
    assert [rate_headers(a)["x-ratelimit-remaining"] for a in answers] == list("2100")


@pytest.mark.parametrize(
    ("ratelimit", "key", "says"),
    [
        ({"tiers": {"free": "lots/minute"}}, "tiers", "tier 'free': 'lots/minute' is not a rate"),
        ({"anonymous": "0/minute"}, "anonymous", "allows no request at all"),
        ({"storage": "postgresql://db/limits"}, "storage", 'use "memory://" or "redis://'),
        ({"strategy": "leaky-bucket"}, "strategy", "moving-window"),
        ({"tier": {"free": "3/minute"}}, "tier", "unknown key"),
    ],
)
def test_a_mistake_in_the_section_stops_the_server_naming_the_key(tmp_path, ratelimit, key, says):
    with pytest.raises(ConfigError) as refused:
        build_context(tmp_path, ratelimit)

    assert refused.value.section == "ratelimit"
    assert refused.value.key == key
    assert says in refused.value.message


def test_several_workers_counting_in_memory_refuse_to_start_and_name_redis(tmp_path):
    ctx = build_context(tmp_path, {}, workers=2)

    with pytest.raises(PluginError) as refused:
        asyncio.run(ctx.start())

    assert "multiply every tier's limit by 2" in str(refused.value)
    assert '[ratelimit] storage = "redis://127.0.0.1:6379/0"' in str(refused.value)


def test_a_redis_that_does_not_answer_stops_start_up_naming_it_without_its_password(tmp_path):
    url = f"redis://:hunter2-secret@127.0.0.1:{free_port()}/0"
    ctx = build_context(tmp_path, {"storage": url})

    with pytest.raises(PluginError) as refused:
        asyncio.run(ctx.start())

    message = str(refused.value)
    assert "cannot reach Redis at redis://:********@127.0.0.1:" in message
    assert "hunter2" not in message


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix of this test's own on the local Redis; its keys are deleted after."""
    with services.redis_prefix(REDIS_URL) as prefix:
        yield prefix


def test_two_workers_sharing_redis_enforce_one_limit(tmp_path, redis_prefix):
    ratelimit = {"storage": REDIS_URL, "key_prefix": redis_prefix, "tiers": {"free": "10/minute"}}

    async def scenario():
        async with (
            running_client(build_context(tmp_path / "one", ratelimit)) as one,
            running_client(build_context(tmp_path / "two", ratelimit)) as two,
        ):
            answers = []
            for _ in range(5):
                answers.append(await one.get(SUBSTRATES, headers=bearer("free-token")))
                answers.append(await two.get(SUBSTRATES, headers=bearer("free-token")))
            eleventh = await one.get(SUBSTRATES, headers=bearer("free-token"))
            twelfth = await two.get(SUBSTRATES, headers=bearer("free-token"))
            health = await (await two.get(HEALTH)).get_json()
            return answers, eleventh, twelfth, health

    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    answers, eleventh, twelfth, health = asyncio.run(scenario())

    assert [answer.status_code for answer in answers] == [200] * 10
    assert [rate_headers(a)["x-ratelimit-remaining"] for a in answers] == [
        str(left) for left in range(9, -1, -1)
    ]  # one count, whichever worker answered
    assert eleventh.status_code == twelfth.status_code == 429
    assert health["plugins"]["ratelimit"] == {
        "status": "ok", "storage": "redis", "strategy": "moving-window",
    }  # fmt: skip
    with redis.Redis.from_url(REDIS_URL) as client:
        keys = client.keys(f"{redis_prefix}:*")
    assert keys, "the counters live in Redis under the configured key_prefix"


def adding(n: int) -> dict[str, str]:
    """A substrate of its own for each ``n`` (the identity is the expression's)."""
    return {"expression_type": "lambda", "expression_code": f"lambda **kw: kw.get('x', 0) + {n}"}


LAMBDA = adding(1)


async def outage_story(tmp_path, redis_prefix, ratelimit_extra, during_cut):
    """A server counting in Redis through a link: one write before the cut, then
    ``during_cut(client, substrate_id)`` while it is cut, then the same write once restored;
    returns (what during_cut returned, /api/v1/health's ratelimit state during and after,
    the write after)."""
    link = CuttableLink("127.0.0.1", 6379)
    url = f"redis://127.0.0.1:{await link.open()}/0"
    ratelimit = {"storage": url, "key_prefix": redis_prefix, "tiers": {"free": "50/minute"}}
    ratelimit.update(ratelimit_extra)
    try:
        async with running_client(build_context(tmp_path, ratelimit)) as client:
            made = await client.post(SUBSTRATES, json=LAMBDA, headers=bearer("free-token"))
            assert made.status_code == 201, await made.get_data()
            substrate_id = (await made.get_json())["substrate_id"]
            await link.cut()
            during = await during_cut(client, substrate_id)
            health_during = await (await client.get(HEALTH)).get_json()
            await link.restore()
            after = await client.post(SUBSTRATES, json=adding(2), headers=bearer("free-token"))
            health_after = await (await client.get(HEALTH)).get_json()
    finally:
        await link.cut()
    return during, health_during["plugins"]["ratelimit"], after, health_after


def test_while_redis_is_away_reads_and_invocations_pass_uncounted_and_writes_get_503(
    tmp_path, redis_prefix
):
    async def during_cut(client, substrate_id):
        free = bearer("free-token")
        return {
            "read": await client.get(SUBSTRATES, headers=free),
            "invoke": await client.post(
                f"{SUBSTRATES}/{substrate_id}/invoke", json={"parameters": {"x": 2}}, headers=free
            ),
            "write": await client.post(SUBSTRATES, json=LAMBDA, headers=free),
            "delete": await client.delete(f"{SUBSTRATES}/{substrate_id}", headers=free),
            "health": await client.get(HEALTH),
        }

    during, limiter, after, health_after = asyncio.run(
        outage_story(tmp_path, redis_prefix, {}, during_cut)
    )

    assert during["read"].status_code == 200 and during["invoke"].status_code == 200
    assert rate_headers(during["read"]) == {} and rate_headers(during["invoke"]) == {}
    assert during["health"].status_code == 200  # a probe is never refused for Redis's sake
    for refused in (during["write"], during["delete"]):
        assert refused.status_code == 503  # not 429: the client is not over its limit
        assert refused.headers["Content-Type"] == "application/problem+json"
        assert refused.headers["Retry-After"] == "5"
    problem = asyncio.run(during["write"].get_json())
    assert problem["type"].endswith("/rate-limit-unavailable")
    assert problem["action"] == "write" and problem["retry_after"] == 5
    assert "[ratelimit.on_storage_error] write is fail_closed" in problem["detail"]
    assert limiter["status"] == "degraded" and limiter["redis"] == "unreachable"
    assert limiter["on_storage_error"] == {
        "read": "fail_open", "invoke": "fail_open", "write": "fail_closed", "admin": "fail_closed",
    }  # fmt: skip
    assert "ConnectionError" in limiter["error"]

    assert after.status_code == 201  # Redis is back: writes are counted and pass again
    assert rate_headers(after)["x-ratelimit-limit"] == "50"
    assert health_after["plugins"]["ratelimit"] == {
        "status": "ok", "storage": "redis", "strategy": "moving-window",
    }  # fmt: skip


def test_an_operator_may_refuse_reads_and_pass_writes_while_redis_is_away(tmp_path, redis_prefix):
    policy = {"on_storage_error": {"read": "fail_closed", "write": "fail_open"}}

    async def during_cut(client, substrate_id):
        free = bearer("free-token")
        return {
            "read": await client.get(f"{SUBSTRATES}/{substrate_id}", headers=free),
            "write": await client.post(SUBSTRATES, json=adding(3),
                                       headers=free),
            "invoke": await client.post(
                f"{SUBSTRATES}/{substrate_id}/invoke", json={"parameters": {}}, headers=free
            ),
            "health": await client.get(HEALTH),
            "guess": await client.get(SUBSTRATES, headers=bearer("a-guessed-token")),
        }  # fmt: skip

    during, limiter, _, _ = asyncio.run(outage_story(tmp_path, redis_prefix, policy, during_cut))

    assert during["read"].status_code == 503
    assert asyncio.run(during["read"].get_json())["action"] == "read"
    assert during["write"].status_code == 201 and rate_headers(during["write"]) == {}
    assert during["invoke"].status_code == 200  # invoke keeps its default: fail_open
    # Reads without a principal pass whatever the policy: probes, and refused credentials
    # (a 401, as ever), never a 503 that would get a healthy server restarted.
    assert during["health"].status_code == 200
    assert during["guess"].status_code == 401
    assert limiter["on_storage_error"]["read"] == "fail_closed"
    assert limiter["status"] == "degraded"


def test_a_policy_that_refuses_everything_makes_the_limiter_down_while_redis_is_away(
    tmp_path, redis_prefix
):
    every_kind = {kind: "fail_closed" for kind in ("read", "invoke", "write", "admin")}

    async def during_cut(client, substrate_id):
        return await client.get(SUBSTRATES, headers=bearer("free-token"))

    during, limiter, after, _ = asyncio.run(
        outage_story(tmp_path, redis_prefix, {"on_storage_error": every_kind}, during_cut)
    )

    assert during.status_code == 503
    assert limiter["status"] == "down"
    assert after.status_code == 201


@pytest.mark.parametrize("value", ["open", "FAIL_OPEN", True])
def test_a_policy_other_than_fail_open_or_fail_closed_stops_the_start(tmp_path, value):
    with pytest.raises(ConfigError) as refused:
        build_context(tmp_path, {"on_storage_error": {"write": value}})

    assert "on_storage_error.write" in str(refused.value)
    assert "fail_open" in str(refused.value) and "fail_closed" in str(refused.value)


def test_health_reports_where_the_counters_live(tmp_path):
    async def scenario(client):
        return await (await client.get(HEALTH)).get_json()

    health = serve(tmp_path, {}, scenario)

    assert health["plugins"]["ratelimit"] == {
        "status": "ok", "storage": "memory", "strategy": "moving-window",
    }  # fmt: skip
