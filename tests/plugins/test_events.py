"""The ``events`` plugin as subscribers and operators meet it, over Quart's test client.

A subscriber opens the WebSocket ``/api/v1/events`` and hears its own tenant's events as
JSON, in order; credentials are checked before the handshake is accepted; a subscriber
that stops reading is dropped, never the writers slowed. The Redis stories use the Redis
server on 127.0.0.1:6379 through a link the test can cut; they skip when no Redis
answers, unless BUTTERFLYFX_REQUIRE_SERVICES=1 makes that a failure. Real processes,
real sockets and two workers are in ``tests/server/test_events_stream.py``.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import orjson
import pytest
from events_server import (
    DEADLINE,
    DOUBLE,
    EVENTS,
    SUBSTRATES,
    NeverReadingConnection,
    ReopenableLink,
    bearer,
    build_context,
    close_code,
    next_event,
    refusal,
    running_client,
)
from structlog.testing import capture_logs

from butterflyfx.core.config import ConfigError
from butterflyfx.core.plugins import PluginError
from butterflyfx.testing import services
from butterflyfx.testing.process import free_port

RELATIONSHIPS = "/api/v1/relationships"
HEALTH = "/api/v1/health"
ACME, GLOBEX = bearer("acme-token"), bearer("globex-token")


async def accepted(stream: Any) -> Any:
    """Wait until the server accepted the handshake: from then on it hears every event."""
    for _ in range(int(DEADLINE / 0.01)):
        if stream.accepted:
            return stream
        await asyncio.sleep(0.01)
    raise AssertionError("the server never accepted the stream")


async def create(client: Any, headers: dict[str, str], code: str = DOUBLE) -> str:
    answer = await client.post(
        SUBSTRATES, json={"expression_type": "lambda", "expression_code": code}, headers=headers
    )
    assert answer.status_code == 201, await answer.get_data()
    return str((await answer.get_json())["substrate_id"])


async def events_health(client: Any) -> dict[str, Any]:
    return (await (await client.get(HEALTH)).get_json())["plugins"]["events"]


async def ok(request: Any) -> None:
    answer = await request
    assert answer.status_code in (200, 204), await answer.get_data()


def summary(events: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(event["kind"], event["tenant"], event["subject_id"]) for event in events]


def test_acme_hears_its_substrate_created_invoked_updated_deleted_in_order_and_none_of_globex(
    tmp_path,
):
    async def scenario(client):
        async with (
            client.websocket(EVENTS, headers=ACME) as acme,
            client.websocket(EVENTS, headers=GLOBEX) as globex,
        ):
            await accepted(acme), await accepted(globex)
            theirs = await create(client, GLOBEX)  # the same expression, in the other tenant
            mine = await create(client, ACME)
            invoke, patch = {"parameters": {"x": 21}}, {"metadata": {"name": "doubler"}}
            await ok(client.post(f"{SUBSTRATES}/{theirs}/invoke", headers=GLOBEX, json=invoke))
            await ok(client.post(f"{SUBSTRATES}/{mine}/invoke", headers=ACME, json=invoke))
            await ok(client.patch(f"{SUBSTRATES}/{mine}", headers=ACME, json=patch))
            await ok(client.delete(f"{SUBSTRATES}/{theirs}", headers=GLOBEX))
            await ok(client.delete(f"{SUBSTRATES}/{mine}", headers=ACME))
            heard = [await next_event(acme) for _ in range(4)]
            theirs_heard = [await next_event(globex) for _ in range(3)]
            return mine, theirs, heard, theirs_heard

    mine, theirs, heard, theirs_heard = asyncio.run(serve(tmp_path, {}, scenario))

    assert mine == theirs  # content-addressed: only the tenant tells them apart
    assert summary(heard) == [
        ("substrate.created", "acme", mine),
        ("substrate.invoked", "acme", mine),
        ("substrate.updated", "acme", mine),
        ("substrate.deleted", "acme", mine),
    ]  # globex acted before, between and after: none of it reached acme
    assert summary(theirs_heard) == [
        ("substrate.created", "globex", theirs),
        ("substrate.invoked", "globex", theirs),
        ("substrate.deleted", "globex", theirs),
    ]
    created, invoked, updated, deleted = heard
    assert set(created) == {"kind", "tenant", "subject_id", "data", "at"}
    assert created["data"] == {"expression_type": "lambda"}
    assert invoked["data"]["invocation_time_ms"] >= 0
    assert updated["data"] == {"version": 2}
    assert deleted["data"] == {}
    assert created["at"].endswith("Z") and created["at"] <= invoked["at"] <= deleted["at"]


def test_kinds_narrow_a_stream_to_what_the_subscriber_asked_for(tmp_path):
    async def scenario(client):
        wanted = {"kinds": "substrate.created,relationship.created"}
        async with (
            client.websocket(EVENTS, headers=ACME, query_string=wanted) as narrow,
            client.websocket(EVENTS, headers=ACME) as everything,
        ):
            await accepted(narrow), await accepted(everything)
            first, second = await create(client, ACME), await create(client, ACME, "lambda: 1")
            related = await client.post(
                RELATIONSHIPS, headers=ACME,
                json={"source_id": first, "target_id": second, "relationship_type": "dependency"},
            )  # fmt: skip
            relationship = (await related.get_json())["relationship_id"]
            await client.post(f"{SUBSTRATES}/{first}/invoke", headers=ACME, json={})
            await client.delete(f"{RELATIONSHIPS}/{relationship}", headers=ACME)
            last = await create(client, ACME, "lambda: 3")
            return (
                [first, second, relationship, last],
                [await next_event(narrow) for _ in range(4)],
                [await next_event(everything) for _ in range(6)],
            )

    (first, second, relationship, last), narrow, everything = asyncio.run(
        serve(tmp_path, {}, scenario)
    )

    assert [(e["kind"], e["subject_id"]) for e in narrow] == [
        ("substrate.created", first),
        ("substrate.created", second),
        ("relationship.created", relationship),
        ("substrate.created", last),
    ]  # the invocation and the deletion between them were left out
    assert [e["kind"] for e in everything] == [
        "substrate.created", "substrate.created", "relationship.created",
        "substrate.invoked", "relationship.deleted", "substrate.created",
    ]  # fmt: skip
    removed = everything[4]["data"]
    assert removed["relationship_type"] == "dependency"
    assert {"source", "target", "bidirectional", "weight"} <= set(removed)


def test_a_handshake_without_fitting_credentials_is_refused_with_a_problem_before_it_is_accepted(
    tmp_path,
):
    attempts = {
        "no credentials": {},
        "an unknown token": {"headers": bearer("guessed-token")},
        "a key that may not read": {"headers": bearer("acme-writer-token")},
        "a token in the URL": {"headers": ACME, "query_string": {"token": "acme-token"}},
        "an unknown kind": {"headers": ACME, "query_string": {"kinds": "substrate.exploded"}},
        "bearer without a token": {"scope_base": {"subprotocols": ["bearer"]}},
    }

    async def scenario(client):
        answers = {}
        for story, options in attempts.items():
            async with client.websocket(EVENTS, **options) as stream:
                answer = await refusal(stream)
                answers[story] = (answer, orjson.loads(await answer.get_data()), stream.accepted)
        return answers, await events_health(client)

    answers, health = asyncio.run(serve(tmp_path, {}, scenario))

    statuses = {story: answer.status_code for story, (answer, _, _) in answers.items()}
    assert statuses == {
        "no credentials": 401, "an unknown token": 401, "a key that may not read": 403,
        "a token in the URL": 400, "an unknown kind": 400, "bearer without a token": 400,
    }  # fmt: skip
    for answer, problem, was_accepted in answers.values():
        assert not was_accepted
        assert answer.headers["Content-Type"] == "application/problem+json"
        assert problem["status"] == answer.status_code and problem["instance"] == EVENTS
    missing = answers["no credentials"]
    assert missing[0].headers["WWW-Authenticate"].startswith("Bearer")
    assert "Sec-WebSocket-Protocol: bearer, <API key or token>" in missing[1]["detail"]
    assert answers["a key that may not read"][1]["action"] == "read"
    assert answers["a token in the URL"][1]["field"] == "token"
    assert answers["an unknown kind"][1]["field"] == "kinds"
    assert answers["bearer without a token"][1]["field"] == "Sec-WebSocket-Protocol"
    assert health["subscribers"] == 0


def test_a_browser_sends_its_token_as_the_subprotocol_after_bearer(tmp_path):
    async def scenario(client):
        offered = {"scope_base": {"subprotocols": ["bearer", "acme-token"]}}
        async with client.websocket(EVENTS, **offered) as stream:
            await accepted(stream)
            mine = await create(client, ACME)
            return mine, await next_event(stream)

    mine, event = asyncio.run(serve(tmp_path, {}, scenario))

    assert (event["kind"], event["tenant"], event["subject_id"]) == (
        "substrate.created",
        "acme",
        mine,
    )


def test_a_subscriber_that_never_reads_is_dropped_with_1008_and_every_write_still_succeeds(
    tmp_path,
):
    async def scenario(client):
        healthy = client.websocket(EVENTS, headers=ACME)
        client.websocket_connection_class = NeverReadingConnection
        stuck = client.websocket(EVENTS, headers=ACME)
        async with healthy, stuck:
            await accepted(healthy), await accepted(stuck)
            mine = await create(client, ACME)
            statuses = [
                (
                    await client.post(f"{SUBSTRATES}/{mine}/invoke", headers=ACME, json={})
                ).status_code
                for _ in range(30)
            ]
            code = await close_code(stuck)
            heard = [await next_event(healthy) for _ in range(31)]
            during = await events_health(client)
        return statuses, code, stuck.sends_waiting, heard, during, await events_health(client)

    statuses, code, sends_waiting, heard, during, after = asyncio.run(
        serve(tmp_path, {"buffer": 4}, scenario)
    )

    assert statuses == [200] * 30  # no writer waited for the subscriber that did not read
    assert code == 1008
    assert sends_waiting <= 1  # at most the frame on its way, and 4 queued: the 6th dropped it
    assert during["dropped"] == 1 and during["queued"] == 0  # what it held was freed at once
    assert [event["kind"] for event in heard] == ["substrate.created"] + ["substrate.invoked"] * 30
    assert after["subscribers"] == 0 and after["buffer"] == 4


def test_a_worker_serves_at_most_max_subscribers_streams_and_refuses_more_with_503(tmp_path):
    async def scenario(client):
        async with client.websocket(EVENTS, headers=ACME) as first:
            await accepted(first)
            async with client.websocket(EVENTS, headers=GLOBEX) as second:
                refused = await refusal(second)
        async with client.websocket(EVENTS, headers=GLOBEX) as later:
            await accepted(later)
        return refused, orjson.loads(await refused.get_data())

    refused, problem = asyncio.run(serve(tmp_path, {"max_subscribers": 1}, scenario))

    assert refused.status_code == 503 and refused.headers["Retry-After"] == "5"
    assert "1 event streams" in problem["detail"]


def test_two_workers_without_redis_start_with_a_warning_that_events_stay_in_their_worker(
    tmp_path,
):
    async def scenario(client):
        return await events_health(client)

    with capture_logs() as logs:
        health = asyncio.run(serve(tmp_path, {}, scenario, workers=2))

    warnings = [entry for entry in logs if entry["event"] == "events_stay_in_their_worker"]
    assert len(warnings) == 1 and warnings[0]["log_level"] == "warning"
    assert 'redis = "redis://127.0.0.1:6379/0"' in warnings[0]["detail"]
    assert health["status"] == "ok" and health["redis"] == "not configured"


def test_a_redis_that_does_not_answer_stops_start_up_naming_the_key_without_its_password(
    tmp_path,
):
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"

    async def start():
        ctx = build_context(tmp_path, {"redis": url})
        try:
            await ctx.start()
        finally:
            await ctx.stop()

    with pytest.raises(PluginError) as refused:
        asyncio.run(start())

    message = str(refused.value)
    assert message.startswith("plugin 'events' cannot reach Redis at redis://:********@")
    assert "([events] redis)" in message and "hunter2" not in message


@pytest.mark.parametrize(
    ("events", "key"),
    [
        ({"buffer": 0}, "buffer"),
        ({"redis": "http://cache:6379"}, "redis"),
        ({"chanel": "x"}, "chanel"),
    ],
)
def test_a_mistaken_events_section_is_refused_naming_the_key(tmp_path, events, key):
    with pytest.raises(ConfigError) as refused:
        build_context(tmp_path, events)

    assert (refused.value.section, refused.value.key) == ("events", key)


def test_workers_sharing_redis_hear_each_other_and_get_back_together_after_redis_was_away(
    tmp_path,
):
    services.redis_client().close()  # skips, or fails under BUTTERFLYFX_REQUIRE_SERVICES=1
    channel = f"butterflyfx-test-{uuid.uuid4().hex[:12]}"

    async def scenario():
        link = ReopenableLink("127.0.0.1", 6379)
        settings = {"redis": f"redis://127.0.0.1:{await link.open()}/0", "channel": channel}
        (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
        a_ctx, b_ctx = (
            build_context(tmp_path / "a", settings),
            build_context(tmp_path / "b", settings),
        )
        async with running_client(a_ctx) as a, running_client(b_ctx) as b:
            async with (
                a.websocket(EVENTS, headers=ACME) as on_a,
                b.websocket(EVENTS, headers=ACME) as on_b,
            ):
                await accepted(on_a), await accepted(on_b)
                before = await create(b, ACME)
                heard_before = [await next_event(on_a), await next_event(on_b)]
                await link.cut()
                during = await create(b, ACME, "lambda: 'during'")
                heard_during = await next_event(on_b)  # its own worker still hears it
                health_during = await events_health(b)
                # Both saw Redis go: b failed to publish (so that event cannot reach a
                # later), a stopped listening (so it must listen again to hear the next).
                await until(b, lambda health: "publish" in health["failing"])
                await until(a, lambda health: "listen" in health["failing"])
                await link.restore()
                for client in (a, b):
                    await until(client, lambda health: health["status"] == "ok" or (
                        health["redis"] == "ok" and "listen" not in health["failing"]
                    ))  # fmt: skip
                after = await create(b, ACME, "lambda: 'after'")
                heard_after = [await next_event(on_a), await next_event(on_b)]
        await link.cut()
        return before, during, after, heard_before, heard_during, health_during, heard_after

    before, during, after, heard_before, heard_during, health_during, heard_after = asyncio.run(
        scenario()
    )

    assert [e["subject_id"] for e in heard_before] == [before, before]  # once each
    assert heard_during["subject_id"] == during
    assert health_during["status"] == "degraded" and health_during["redis"].startswith(
        "unreachable"
    )
    # a's next event is the one after Redis came back: the one during the outage is lost
    # (pub/sub keeps nothing), and nothing was heard twice.
    assert [e["subject_id"] for e in heard_after] == [after, after]


async def until(client: Any, condition: Any) -> None:
    """Poll the events plugin's health until ``condition`` holds (bounded, not timed)."""
    for _ in range(int(DEADLINE / 0.1)):
        if condition(await events_health(client)):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(
        f"the health report never met the condition: {await events_health(client)}"
    )


async def serve(tmp_path, events, scenario, **server):
    async with running_client(build_context(tmp_path, events, **server)) as client:
        return await scenario(client)
