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


def test_when_redis_goes_away_requests_pass_unlimited_and_health_says_it_is_down(
    tmp_path, redis_prefix
):
    async def scenario():
        link = CuttableLink("127.0.0.1", 6379)
        url = f"redis://127.0.0.1:{await link.open()}/0"
        ratelimit = {"storage": url, "key_prefix": redis_prefix, "tiers": {"free": "3/minute"}}
        async with running_client(build_context(tmp_path, ratelimit)) as client:
            before = await client.get(SUBSTRATES, headers=bearer("free-token"))
            await link.cut()
            during = [await client.get(SUBSTRATES, headers=bearer("free-token")) for _ in range(4)]
            health = await client.get(HEALTH)
            return before, during, health.status_code, await health.get_json()

    before, during, health_status, health = asyncio.run(scenario())

    assert rate_headers(before)["x-ratelimit-remaining"] == "2"
    assert [answer.status_code for answer in during] == [200] * 4  # not 500, not refused
    assert all(rate_headers(answer) == {} for answer in during)  # no count it cannot make
    assert health_status == 200  # liveness; /api/v1/ready is the one to answer 503
    limiter = health["plugins"]["ratelimit"]
    assert limiter["status"] == "down" and limiter["storage"] == "redis"
    assert "ConnectionError" in limiter["error"]


def test_health_reports_where_the_counters_live(tmp_path):
    async def scenario(client):
        return await (await client.get(HEALTH)).get_json()

    health = serve(tmp_path, {}, scenario)

    assert health["plugins"]["ratelimit"] == {
        "status": "ok", "storage": "memory", "strategy": "moving-window",
    }  # fmt: skip
