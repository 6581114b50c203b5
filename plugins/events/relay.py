"""Events between workers through one Redis pub/sub channel.

Each worker delivers its own events to its own subscribers at once, and publishes them
to the channel as ``{"origin": <this worker's relay id>, "event": {...}}``. Every worker
listens on the channel and hands what other workers published to its subscribers; a
message carrying its own origin is skipped, so nobody hears an event twice.

Writers never wait on Redis either: ``offer`` puts the message into a bounded outbox
(``relay_buffer``) that a background task publishes from. When Redis is away, events
still reach the subscribers of the worker where they happened; the others miss them
(pub/sub keeps nothing for later), and the health report says ``degraded``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from typing import Any

import redis.asyncio
import structlog
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from butterflyfx.core.events import Event
from butterflyfx.core.health import PluginHealth
from butterflyfx.core.plugins import PluginError

from .hub import EventHub, encode
from .settings import SECTION, EventsSettings, masked_url

log = structlog.get_logger("butterflyfx.events")

REDIS_TIMEOUT = 5.0  # seconds; a Redis that hangs must not hang start-up or the health check
LISTEN_POLL = 5.0  # seconds a listener waits for a message before it checks its connection
RETRY_LONGEST = 5.0  # seconds between attempts to listen again, at most
FAILURES = (RedisError, OSError, TimeoutError)


class RedisRelay:
    """Publishes this worker's events and relays the other workers' to ``hub``."""

    def __init__(self, settings: EventsSettings, hub: EventHub, url: str) -> None:
        self.settings = settings
        self.hub = hub
        self.url = url
        self.channel = settings.channel
        self.origin = uuid.uuid4().hex  # this worker's: skips its own events on the way back
        self.outbox: asyncio.Queue[str] = asyncio.Queue(maxsize=settings.relay_buffer)
        # One immediate retry: a publish on a connection Redis dropped reconnects once.
        self.publisher = redis.asyncio.Redis.from_url(
            url, socket_connect_timeout=REDIS_TIMEOUT, socket_timeout=REDIS_TIMEOUT,
            retry=Retry(NoBackoff(), 1),
        )  # fmt: skip
        # No retries: _relay_forever subscribes again itself, and says when it could not.
        self.listener = redis.asyncio.Redis.from_url(
            url, socket_connect_timeout=REDIS_TIMEOUT, health_check_interval=30,
            retry=Retry(NoBackoff(), 0),
        )  # fmt: skip
        self.pubsub: Any = None
        self.relayed = 0  # events from other workers handed to this worker's subscribers
        self.unsent = 0  # events of this worker other workers did not get
        self._tasks: list[asyncio.Task[None]] = []
        self._troubles: set[str] = set()  # what is failing now: said once, not per event

    @classmethod
    async def open(cls, settings: EventsSettings, hub: EventHub) -> RedisRelay:
        """Reach Redis and listen on the channel before serving; refuse to start otherwise."""
        url = settings.redis
        if url is None:
            raise ValueError("no Redis is configured")
        relay = cls(settings, hub, url)
        try:
            await relay.publisher.ping()
            await relay._listen()
        except FAILURES as error:
            await relay.close()
            raise PluginError(
                f"plugin {SECTION!r} cannot reach Redis at {masked_url(url)} ([events] "
                f"redis): {type(error).__name__}: {error}"
            ) from None
        relay._tasks = [
            asyncio.create_task(relay._publish_forever(), name="events-publish"),
            asyncio.create_task(relay._relay_forever(), name="events-relay"),
        ]
        return relay

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._stop_listening()
        await self.publisher.aclose(close_connection_pool=True)
        await self.listener.aclose(close_connection_pool=True)

    def offer(self, event: Event) -> None:
        """Queue ``event`` for the other workers; never waits (a full outbox drops it)."""
        message = encode({"origin": self.origin, "event": event.to_dict()})
        try:
            self.outbox.put_nowait(message)
        except asyncio.QueueFull:
            self.unsent += 1
            self._trouble("outbox", f"{self.settings.relay_buffer} events wait already")
        else:
            self._recovered("outbox")

    # -- background tasks ----------------------------------------------------------------
    async def _publish_forever(self) -> None:
        while True:
            message = await self.outbox.get()
            try:
                await self.publisher.publish(self.channel, message)
            except FAILURES as error:
                self.unsent += 1
                self._trouble("publish", f"{type(error).__name__}: {error}")
            else:
                self._recovered("publish")

    async def _relay_forever(self) -> None:
        wait = 0.5
        while True:
            try:
                if self.pubsub is None:
                    await self._listen()
                    self._recovered("listen")
                    wait = 0.5
                message = await self.pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=LISTEN_POLL
                )
            except FAILURES as error:
                self._trouble("listen", f"{type(error).__name__}: {error}")
                await self._stop_listening()
                await asyncio.sleep(wait)
                wait = min(wait * 2, RETRY_LONGEST)
                continue
            if message is not None and message.get("type") == "message":
                self._hand_over(message["data"])

    async def _listen(self) -> None:
        """Subscribe, and wait for Redis to confirm: from then on no event is missed."""
        pubsub = self.listener.pubsub()
        self.pubsub = pubsub
        await pubsub.subscribe(self.channel)
        confirmed = await asyncio.wait_for(self._confirmation(pubsub), REDIS_TIMEOUT)
        if not confirmed:
            raise RedisError(f"Redis did not confirm the subscription to {self.channel!r}")

    async def _confirmation(self, pubsub: Any) -> bool:
        while True:
            message = await pubsub.get_message(timeout=REDIS_TIMEOUT)
            if message is None:
                return False
            if message.get("type") == "subscribe":
                return True

    async def _stop_listening(self) -> None:
        pubsub, self.pubsub = self.pubsub, None
        if pubsub is not None:
            with contextlib.suppress(*FAILURES):
                await pubsub.aclose()

    def _hand_over(self, data: bytes | str) -> None:
        try:
            envelope = json.loads(data)
            event = envelope["event"]
            origin, tenant, kind = envelope["origin"], event["tenant"], event["kind"]
        except (ValueError, TypeError, KeyError):
            log.debug("events_relay_ignored", channel=self.channel, reason="not an event")
            return
        if origin == self.origin or not isinstance(tenant, str) or not isinstance(kind, str):
            return  # ours (already delivered here), or not an event
        self.relayed += 1
        if self.hub.listening(tenant):
            self.hub.publish(tenant, kind, encode(event))

    # -- reporting -------------------------------------------------------------------------
    def _trouble(self, what: str, error: str) -> None:
        if what not in self._troubles:
            self._troubles.add(what)
            log.error(
                "events_relay_failed", part=what, redis=masked_url(self.url), error=error,
                detail="events reach only the subscribers of the worker where they happen "
                "until Redis answers again",
            )  # fmt: skip

    def _recovered(self, what: str) -> None:
        if what in self._troubles:
            self._troubles.discard(what)
            log.info("events_relay_recovered", part=what, redis=masked_url(self.url))

    async def health(self) -> PluginHealth:
        detail: dict[str, Any] = {
            "redis": "ok",
            "channel": self.channel,
            "relayed": self.relayed,
            "unsent": self.unsent,
            "failing": sorted(self._troubles),  # publish, listen, outbox
        }
        try:
            await self.publisher.ping()
        except FAILURES as error:
            detail["redis"] = f"unreachable: {type(error).__name__}: {error}"
            return PluginHealth("degraded", detail)
        return PluginHealth("degraded" if self._troubles else "ok", detail)
