"""One worker's subscribers, by tenant: each event goes into every interested queue.

Publishing never waits: a message is put into each subscriber's bounded queue with
``put_nowait``, and a subscriber whose queue is full is dropped on the spot (its queue
emptied, so what it held is freed at once). A slow reader costs the writers nothing and
holds at most ``buffer`` messages.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Collection, Mapping
from typing import Any

from butterflyfx.core import events

KINDS = (
    events.SUBSTRATE_CREATED,
    events.SUBSTRATE_UPDATED,
    events.SUBSTRATE_DELETED,
    events.SUBSTRATE_INVOKED,
    events.SUBSTRATE_INVOCATION_FAILED,
    events.RELATIONSHIP_CREATED,
    events.RELATIONSHIP_DELETED,
)


def encode(message: Mapping[str, Any]) -> str:
    """The text frame a subscriber receives: ``Event.to_dict()`` as compact JSON."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


class HubFull(Exception):
    """Every subscriber slot of this worker is taken."""


class Subscription:
    """One open stream: its tenant, the kinds it asked for (None: all), its queue."""

    def __init__(self, tenant: str, kinds: Collection[str] | None, buffer: int) -> None:
        self.tenant = tenant
        self.kinds = frozenset(kinds) if kinds is not None else None
        self.buffer = buffer
        self.queue: asyncio.Queue[str] = asyncio.Queue(maxsize=buffer)
        self.overflowed = asyncio.Event()

    def wants(self, kind: str) -> bool:
        return self.kinds is None or kind in self.kinds

    def offer(self, text: str) -> bool:
        """Queue ``text`` without waiting; False (and overflowed) when the queue was full."""
        if self.overflowed.is_set():
            return False
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            self.overflowed.set()
            while not self.queue.empty():  # free what it held now, not when its stream ends
                self.queue.get_nowait()
            return False
        return True


class EventHub:
    """Subscriptions of one worker, indexed by tenant; counts for the health report."""

    def __init__(self, buffer: int, max_subscribers: int) -> None:
        self.buffer = buffer
        self.max_subscribers = max_subscribers
        self._open: set[Subscription] = set()
        self._by_tenant: dict[str, set[Subscription]] = {}
        self.delivered = 0  # messages queued for subscribers
        self.dropped = 0  # subscribers dropped for falling behind

    @property
    def subscribers(self) -> int:
        return len(self._open)

    def queued(self) -> int:
        """Messages waiting in every queue: the memory the streams hold."""
        return sum(subscription.queue.qsize() for subscription in self._open)

    def subscribe(self, tenant: str, kinds: Collection[str] | None) -> Subscription:
        if len(self._open) >= self.max_subscribers:
            raise HubFull(f"this worker already serves {self.max_subscribers} event streams")
        subscription = Subscription(tenant, kinds, self.buffer)
        self._open.add(subscription)
        self._by_tenant.setdefault(tenant, set()).add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._open.discard(subscription)
        self._leave(subscription)

    def _leave(self, subscription: Subscription) -> None:
        tenant = self._by_tenant.get(subscription.tenant)
        if tenant is not None:
            tenant.discard(subscription)
            if not tenant:
                del self._by_tenant[subscription.tenant]

    def listening(self, tenant: str) -> bool:
        return tenant in self._by_tenant

    def publish(self, tenant: str, kind: str, text: str) -> None:
        """Queue ``text`` for every subscriber of ``tenant`` that wants ``kind``."""
        for subscription in tuple(self._by_tenant.get(tenant, ())):
            if not subscription.wants(kind):
                continue
            if subscription.offer(text):
                self.delivered += 1
            else:  # it fell behind: no more events for it; its stream closes it
                self.dropped += 1
                self._leave(subscription)

    def publish_event(self, event: events.Event) -> None:
        if self.listening(event.tenant):  # encoded only when someone here listens
            self.publish(event.tenant, event.kind, encode(event.to_dict()))
