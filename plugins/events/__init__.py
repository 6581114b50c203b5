"""``events``: substrate and relationship events, streamed over a WebSocket.

``GET /api/v1/events`` (a WebSocket; see :mod:`.stream` for credentials) streams each event of
the caller's tenant as one JSON text frame, ``Event.to_dict()``: ``{"kind", "tenant",
"subject_id", "data", "at"}``, the body :class:`butterflyfx.interface.machine.events.EventBody`
documents (the client parses each frame into it). ``?kinds=substrate.created,...`` narrows
the stream. Each subscriber has a queue of ``buffer`` events; a client that falls further
behind is dropped with close code 1008, and writers never wait for it.

Config section ``[events]``::

    buffer = 256                            # events one subscriber may fall behind
    max_subscribers = 1000                  # open streams per worker
    redis = "redis://127.0.0.1:6379/0"      # relay between workers; unset: none
    channel = "butterflyfx:events"          # the pub/sub channel
    relay_buffer = 10000                    # events waiting to be published to Redis

Without ``redis`` an event reaches only the subscribers connected to the worker where it
happened: with ``workers > 1`` start-up logs ``events_stay_in_their_worker`` (and serves).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

from butterflyfx.core.events import Event
from butterflyfx.core.health import PluginHealth
from butterflyfx.core.hookspecs import hookimpl

from .hub import KINDS, EventHub, Subscription
from .relay import RedisRelay
from .settings import SECTION, SHARED_REDIS, EventsSettings
from .stream import EVENTS_PATH, FELL_BEHIND, EventStream

if TYPE_CHECKING:
    from butterflyfx.core.context import ServerContext

__all__ = [
    "EVENTS_PATH", "FELL_BEHIND", "KINDS", "SECTION", "EventHub", "EventsSettings",
    "Subscription", "hub_of",
]  # fmt: skip

log = structlog.get_logger("butterflyfx.events")


@dataclass
class Running:
    hub: EventHub
    relay: RedisRelay | None


# One hub per started context (a worker process has one; tests may run several).
_running: dict[int, tuple[weakref.ref[ServerContext], Running]] = {}


def settings_of(ctx: ServerContext) -> EventsSettings:
    section = ctx.section(SECTION)
    return section if isinstance(section, EventsSettings) else EventsSettings()


def running_of(ctx: ServerContext) -> Running | None:
    entry = _running.get(id(ctx))
    if entry is None or entry[0]() is not ctx:
        return None
    return entry[1]


def hub_of(ctx: ServerContext) -> EventHub | None:
    """The hub of a started server, or None."""
    running = running_of(ctx)
    return running.hub if running is not None else None


@hookimpl
def butterflyfx_config_model() -> tuple[str, type[EventsSettings]]:
    return SECTION, EventsSettings


@hookimpl
async def butterflyfx_startup(ctx: ServerContext) -> None:
    settings = settings_of(ctx)
    hub = EventHub(settings.buffer, settings.max_subscribers)
    relay = None
    workers = ctx.settings.workers
    if settings.redis is not None:
        relay = await RedisRelay.open(settings, hub)
    elif workers > 1:
        log.warning(
            "events_stay_in_their_worker", workers=workers,
            detail=f"without [events] redis, a subscriber of {EVENTS_PATH} hears only the "
            f"events of the worker it is connected to (about 1 in {workers}); set [events] "
            f'redis = "{SHARED_REDIS}" to relay them between workers',
        )  # fmt: skip
    _running[id(ctx)] = (weakref.ref(ctx), Running(hub, relay))


@hookimpl
async def butterflyfx_shutdown(ctx: ServerContext) -> None:
    running = running_of(ctx)
    _running.pop(id(ctx), None)
    if running is not None and running.relay is not None:
        await running.relay.close()


@hookimpl
def butterflyfx_routes(app: Any, ctx: ServerContext) -> None:
    app.register_blueprint(EventStream(ctx, hub_of).blueprint())


@hookimpl
def butterflyfx_on_event(event: Event, ctx: ServerContext) -> None:
    # Synchronous on purpose: queuing never waits, so the writer's response is not held up.
    running = running_of(ctx)
    if running is None:
        return
    running.hub.publish_event(event)
    if running.relay is not None:
        running.relay.offer(event)


@hookimpl
async def butterflyfx_health(ctx: ServerContext) -> PluginHealth:
    running = running_of(ctx)
    if running is None:
        return PluginHealth("down", {"error": "the events plugin has not started"})
    hub = running.hub
    detail: dict[str, Any] = {
        "subscribers": hub.subscribers,
        "max_subscribers": hub.max_subscribers,
        "buffer": hub.buffer,
        "queued": hub.queued(),
        "delivered": hub.delivered,
        "dropped": hub.dropped,
    }
    if running.relay is None:
        return PluginHealth("ok", {**detail, "redis": "not configured"})
    relayed = await running.relay.health()
    return PluginHealth(relayed.status, {**detail, **relayed.detail})
