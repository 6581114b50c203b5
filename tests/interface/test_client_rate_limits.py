"""429s: a used-up tier raises RateLimited with the server's Retry-After, and a client
allowed retries waits that long and gets its answers; the backoff arithmetic alone."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from butterflyfx.interface.client import ButterflyFX, RateLimited, RetryPolicy, Unavailable
from butterflyfx.interface.client.calls import call

BURST_BOUND = 50  # requests at most before the tier's limit shows
PATIENT = 4
STATS = "/api/v1/query/stats"
LOG_DEADLINE = 30.0  # only keeps a broken run from hanging


def key_of_tier(server, tier: str) -> tuple[str, str]:
    """A new key of ``tier``: its id and its secret."""
    with ButterflyFX(server.url, api_key=server.admin_key, retries=0) as admin:
        made = admin.create_key(tier=tier, name=f"{tier} client")
    return made.id, made.key


def statuses(server, path: str, at_least: int) -> list[int]:
    """The statuses of the requests for ``path`` in the access log, once it shows
    ``at_least`` of them (a line is written just after its response). By path: a request
    refused by the rate limiter is logged without its subject."""

    def lines() -> list[int]:
        found = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
        return [e["status"] for e in found if e.get("event") == "request" and e["path"] == path]

    give_up = time.monotonic() + LOG_DEADLINE
    while len(seen := lines()) < at_least and time.monotonic() < give_up:
        time.sleep(0.1)
    return seen


def test_a_used_up_tier_is_rate_limited_with_retry_after(limited_server):
    _, key = key_of_tier(limited_server, "free")  # 3 a minute
    with ButterflyFX(limited_server.url, api_key=key, retries=0) as client:
        with pytest.raises(RateLimited) as caught:
            for _ in range(BURST_BOUND):
                client.substrate_page()  # not STATS: the next story counts those alone

    error = caught.value
    assert error.status == 429 and error.type.endswith("/rate-limited")
    assert error.retry_after is not None and 0 < error.retry_after <= 61  # a window, rounded up
    assert f"retry after {error.retry_after:g} s" in error.detail


def test_a_client_with_retries_waits_as_retry_after_says_and_gets_every_answer(limited_server):
    _, key = key_of_tier(limited_server, "pro")  # 1 a second
    sent = 0
    with ButterflyFX(limited_server.url, api_key=key, retries=0) as impatient:
        with pytest.raises(RateLimited) as refused:
            while sent < BURST_BOUND:
                sent += 1
                impatient.stats()
    before = statuses(limited_server, STATS, sent)
    with ButterflyFX(limited_server.url, api_key=key, retries=5, backoff=0.01) as patient:
        answers = [patient.stats() for _ in range(PATIENT)]  # far over 1 a second
    # Every answered request is logged, each refusal too: wait until the PATIENT answers
    # are all there, however many refusals came between them.
    give_up = time.monotonic() + LOG_DEADLINE
    while True:
        during = statuses(limited_server, STATS, len(before) + PATIENT + 1)[len(before) :]
        if during.count(200) >= PATIENT or time.monotonic() > give_up:
            break
        time.sleep(0.1)

    assert refused.value.retry_after is not None and refused.value.retry_after <= 2
    assert before[-1] == 429  # the impatient client stopped at the first refusal
    assert len(answers) == PATIENT and all(a.substrates == 0 for a in answers)
    assert during.count(200) == PATIENT  # every request answered in the end...
    assert during.count(429) >= 1  # ...after waiting out refusals


def answer(status: int, retry_after: str | None = None) -> httpx.Response:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return httpx.Response(status, headers=headers)


def test_the_backoff_doubles_honours_a_longer_retry_after_and_stops_at_the_bounds():
    policy = RetryPolicy(retries=3, backoff=0.5, max_delay=3.0, deadline=10.0)
    get = call("get_substrate", {"substrate_id": "0x1"})

    assert [policy.delay(get, n, 0.0, answer(503)) for n in range(4)] == [0.5, 1.0, 2.0, None]
    assert policy.delay(get, 0, 0.0, answer(429, "4")) == 4.0  # longer than the backoff
    assert policy.delay(get, 2, 0.0, answer(429, "1")) == 2.0  # shorter: the backoff stands
    assert policy.delay(get, 0, 7.0, answer(429, "4")) is None  # would end past the deadline
    assert RetryPolicy(max_delay=3.0, backoff=1.0, retries=9).delay(get, 5, 0.0, answer(503)) == 3.0
    assert policy.delay(get, 0, 0.0, answer(500)) is None
    assert policy.delay(get, 0, 0.0, answer(404)) is None


def test_an_invoke_is_repeated_only_when_it_cannot_have_run():
    policy = RetryPolicy(retries=3, backoff=0.5)
    invoke = call("invoke", {"substrate_id": "0x1"}, body={})
    create = call("create_substrate", body={})
    lost = httpx.ReadTimeout("no answer")
    refused = httpx.ConnectError("connection refused")

    assert policy.delay(invoke, 0, 0.0, answer(429, "1")) == 1.0  # refused before it ran
    assert policy.delay(invoke, 0, 0.0, answer(503)) is None
    assert policy.delay(invoke, 0, 0.0, error=lost) is None  # it may have run
    assert policy.delay(invoke, 0, 0.0, error=refused) == 0.5  # nothing was sent
    assert policy.delay(create, 0, 0.0, answer(503)) == 0.5  # content-addressed: repeatable
    assert policy.delay(create, 0, 0.0, error=lost) == 0.5
    assert policy.delay(call("create_key", body={}), 0, 0.0, error=lost) is None


def test_the_client_sends_a_request_at_most_retries_plus_one_times():
    """Counting attempts only (the stories above use a real server): an in-process
    transport that always refuses, with no wait asked for."""
    sent: list[str] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path)
        status = 429 if request.url.path.endswith("/stats") else 503
        return httpx.Response(status, headers={"Retry-After": "0"}, json={"title": "Busy"})

    transport = httpx.MockTransport(refuse)
    with ButterflyFX("http://test", transport=transport, retries=2, backoff=0.0) as client:
        with pytest.raises(RateLimited):
            client.stats()
        with pytest.raises(Unavailable):
            client.invoke("0x1", {})

    assert sent == ["/api/v1/query/stats"] * 3 + ["/api/v1/substrates/0x1/invoke"]
