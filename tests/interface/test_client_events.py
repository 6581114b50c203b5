"""Event streams through the client (``events()`` on both clients) and ``butterflyfx events``,
against one real ``butterflyfx serve`` with the events plugin: what a subscriber hears of
other clients' writes, what it never hears, and how a refused subscription reads.

The server subscribes a stream before it accepts the handshake, so once ``events()``
returns (or ``async with`` enters) every later write is heard; reads wait at most
``DEADLINE`` seconds, so a missing event fails the test instead of hanging it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path

import pytest

from butterflyfx.interface.client import (
    AsyncButterflyFX,
    ButterflyFX,
    Forbidden,
    Unauthorized,
    ValidationFailed,
)
from butterflyfx.interface.client.events import EventStream
from butterflyfx.interface.machine.events import EVENT_KINDS, EventBody
from butterflyfx.plugins.events.hub import KINDS
from butterflyfx.testing.pytest_plugin import RunningServer, ServerLauncher

DEADLINE = 15.0
COMMAND = str(Path(sys.executable).with_name("butterflyfx"))
COMMAND_TIMEOUT = 90.0


@pytest.fixture(scope="module")
def events_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    launcher = ServerLauncher(tmp_path_factory.mktemp("events-server"))
    try:
        yield launcher.start(["storage.sqlite", "http", "auth.apikey", "events"])
    finally:
        launcher.kill_all()


@pytest.fixture(scope="module")
def globex_key(events_server: RunningServer) -> str:
    """A key of another tenant, made with the ``keys`` command as an operator would."""
    made = subprocess.run(
        [sys.executable, "-m", "butterflyfx.server.cli", "keys", "create", "--tenant", "globex",
         "--tier", "pro", "--config", str(events_server.config),
         "--data-dir", str(events_server.data_dir)],
        capture_output=True, text=True, timeout=COMMAND_TIMEOUT,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    return made.stdout.splitlines()[-1]


@pytest.fixture
def admin(events_server: RunningServer) -> Iterator[ButterflyFX]:
    with ButterflyFX(events_server.url, api_key=events_server.admin_key, retries=0) as made:
        yield made


@pytest.fixture
def writer(events_server: RunningServer, admin: ButterflyFX) -> Iterator[ButterflyFX]:
    """Another client of the same tenant, with a key of its own that may write."""
    key = admin.create_key(scopes=["read", "write"], name="writer").key
    with ButterflyFX(events_server.url, api_key=key, retries=0) as made:
        yield made


def heard(stream: EventStream, count: int) -> list[EventBody]:
    """The next ``count`` events; fails (closing the stream) after ``DEADLINE`` seconds."""
    with ThreadPoolExecutor(1) as reader:
        future = reader.submit(lambda: list(itertools.islice(stream, count)))
        try:
            return future.result(timeout=DEADLINE)
        except FutureTimeout:
            stream.close()  # ends the reader's iteration, so the pool can shut down
            raise AssertionError(f"fewer than {count} events within {DEADLINE}s") from None


def lambda_code(text: str) -> str:
    return f"lambda: {text!r}"


def subscribers(client: ButterflyFX) -> int:
    return int(client.health().plugins["events"].model_extra["subscribers"])


def wait_for_subscribers(client: ButterflyFX, count: int) -> None:
    give_up = time.monotonic() + DEADLINE
    while subscribers(client) != count:
        assert time.monotonic() < give_up, f"never {count} open streams"
        time.sleep(0.05)


def test_the_client_knows_the_kinds_the_plugin_sends():
    assert EVENT_KINDS == KINDS


def test_a_subscriber_hears_another_clients_writes_in_order_until_it_closes_the_stream(
    admin, writer
):
    with admin.events() as stream:
        first = writer.create_substrate("lambda", lambda_code("first"))
        second = writer.create_substrate("lambda", lambda_code("second"))
        related = writer.create_relationship(first.substrate_id, second.substrate_id, "dependency")
        events = heard(stream, 3)

    assert [(e.kind, e.tenant, e.subject_id) for e in events] == [
        ("substrate.created", "default", first.substrate_id),
        ("substrate.created", "default", second.substrate_id),
        ("relationship.created", "default", related.relationship_id),
    ]
    assert events[0].data == {"expression_type": "lambda"}
    assert events[2].data["relationship_type"] == "dependency"
    assert events[0].at.endswith("Z") and events[0].at <= events[2].at
    assert list(stream) == []  # closed by leaving the with block: the iteration is over


def test_kinds_narrow_a_stream_and_another_tenants_writes_are_never_heard(
    events_server, admin, writer, globex_key
):
    with (
        ButterflyFX(events_server.url, api_key=globex_key, retries=0) as globex,
        admin.events() as everything,
        admin.events(kinds=["relationship.created"]) as relationships,
        globex.events("substrate.created,substrate.deleted") as globex_stream,
    ):
        theirs = globex.create_substrate("lambda", lambda_code("globex's"))
        ours = writer.create_substrate("lambda", lambda_code("ours"))
        other = writer.create_substrate("lambda", lambda_code("ours too"))
        related = writer.create_relationship(ours.substrate_id, other.substrate_id, "sibling")
        all_of_ours = heard(everything, 3)
        narrowed = heard(relationships, 1)
        globex.delete_substrate(theirs.substrate_id)
        globex_heard = heard(globex_stream, 2)

    # Had globex's create reached the default tenant, it would have come first.
    assert [e.subject_id for e in all_of_ours] == [
        ours.substrate_id, other.substrate_id, related.relationship_id,
    ]  # fmt: skip
    assert {e.tenant for e in all_of_ours} == {"default"}
    assert [(e.kind, e.subject_id) for e in narrowed] == [
        ("relationship.created", related.relationship_id)
    ]
    assert [(e.kind, e.tenant, e.subject_id) for e in globex_heard] == [
        ("substrate.created", "globex", theirs.substrate_id),
        ("substrate.deleted", "globex", theirs.substrate_id),
    ]


def test_a_refused_subscription_raises_what_the_same_http_answer_would(events_server, admin):
    url = events_server.url
    writes_only = admin.create_key(scopes=["write"], name="no reading").key

    with pytest.raises(Unauthorized) as unknown_key:
        ButterflyFX(url, api_key="sk-butterflyfx-guessed", retries=0).events()
    with pytest.raises(Forbidden) as no_read_scope:
        ButterflyFX(url, api_key=writes_only, retries=0).events()
    with pytest.raises(ValidationFailed) as unknown_kind:
        admin.events(kinds=["substrate.created", "substrate.exploded"])

    assert unknown_key.value.status == 401
    assert no_read_scope.value.status == 403 and no_read_scope.value.problem["action"] == "read"
    assert unknown_kind.value.status == 400 and unknown_kind.value.field == "kinds"
    assert "substrate.exploded" in unknown_kind.value.detail
    assert unknown_key.value.instance == "/api/v1/events"


def test_the_async_client_hears_writes_and_is_refused_the_same_way(events_server, writer):
    async def story():
        async with AsyncButterflyFX(
            events_server.url, api_key=events_server.admin_key, retries=0
        ) as client:
            async with client.events(kinds="substrate.created") as stream:
                made = writer.create_substrate("lambda", lambda_code("heard by asyncio"))
                event = await asyncio.wait_for(anext(stream), DEADLINE)
            after_close = [e async for e in stream]
            try:
                async with client.events(kinds="substrate.exploded"):
                    pass
            except ValidationFailed as error:
                refused = error
        async with AsyncButterflyFX(events_server.url, api_key="guessed", retries=0) as stranger:
            try:
                async for _ in stranger.events():  # iterating an unopened stream opens it
                    pass
            except Unauthorized as error:
                unknown = error
        return made, event, after_close, refused, unknown

    made, event, after_close, refused, unknown = asyncio.run(story())

    assert (event.kind, event.tenant, event.subject_id) == (
        "substrate.created", "default", made.substrate_id,
    )  # fmt: skip
    assert after_close == []
    assert refused.field == "kinds" and unknown.status == 401


def butterflyfx(events_server: RunningServer, *argv: str) -> subprocess.Popen[str]:
    """``butterflyfx events ...`` with the server's URL and admin key, running."""
    return subprocess.Popen(
        [COMMAND, "events", *argv, "--url", events_server.url, "--key", events_server.admin_key],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip


def test_butterflyfx_events_prints_each_event_as_it_happens_and_stops_after_count(
    events_server, admin, writer
):
    wait_for_subscribers(admin, 0)  # the streams of earlier stories are gone
    as_json = butterflyfx(events_server, "--count", "2", "--json")
    for_people = butterflyfx(events_server, "--count", "1", "--kinds", "relationship.created")
    try:
        wait_for_subscribers(admin, 2)
        made = writer.create_substrate("lambda", lambda_code("seen on the command line"))
        other = writer.create_substrate("lambda", lambda_code("and related"))
        related = writer.create_relationship(made.substrate_id, other.substrate_id, "dependency")
        json_out, json_err = as_json.communicate(timeout=COMMAND_TIMEOUT)
        people_out, people_err = for_people.communicate(timeout=COMMAND_TIMEOUT)
    finally:
        for running in (as_json, for_people):
            running.kill()
    refused = subprocess.run(
        [COMMAND, "events", "--kinds", "substrate.exploded", "--url", events_server.url,
         "--key", events_server.admin_key],
        capture_output=True, text=True, timeout=COMMAND_TIMEOUT,
    )  # fmt: skip

    assert as_json.returncode == 0, json_err
    lines = [json.loads(line) for line in json_out.splitlines()]
    assert [(e["kind"], e["tenant"], e["subject_id"]) for e in lines] == [
        ("substrate.created", "default", made.substrate_id),
        ("substrate.created", "default", other.substrate_id),
    ]
    assert list(lines[0]) == ["kind", "tenant", "subject_id", "data", "at"]
    assert for_people.returncode == 0, people_err
    (line,) = people_out.splitlines()
    assert line.split()[1:3] == ["relationship.created", related.relationship_id]
    assert '"relationship_type":"dependency"' in line
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.startswith("butterflyfx: 400 bad-request: ")
    assert "substrate.exploded" in refused.stderr and len(refused.stderr.splitlines()) == 1
