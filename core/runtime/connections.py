"""Connections in seed 004's pools and states, tracked from the requests they carry.

An ASGI app never sees a TCP connection open or close: it sees requests, each with the
peer's address (``scope["client"]``) and the listening address (``scope["server"]``).
That pair names one connection for as long as it is open, so it is the key here.

A connection appears with its first request (``new``, then ``active``, or ``handshake``
for a WebSocket until it is accepted), is ``idle`` between requests, ``closing`` while
its last response goes out, ``closed`` once it is known to be gone, and ``archived`` when
the next sweep files it in a bounded ring. Hypercorn does not tell the app when it
closes an idle keep-alive connection (after ``server.timeout``), nor when the client
hangs up between requests; :meth:`ConnectionTracker.sweep` closes connections idle
longer than the timeout instead, which is when Hypercorn closes them too.

Every lookup and transition is a dict operation: O(1). The sweep looks only at the
connections it closes (idle ones are kept oldest first). A watcher (:meth:`watch`, the
metrics plugin's gauges) hears each count that changes, as it changes.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import structlog

# The seed's spirals and layers: pool i is "spiral_i", state j is layer j + 1.
POOLS: tuple[str, ...] = ("http", "websocket", "api", "admin")
STATES: tuple[str, ...] = ("new", "handshake", "active", "idle", "closing", "closed", "archived")
OPEN_STATES = frozenset(STATES[:5])
# Hypercorn closes an HTTP/1 connection after this many requests (keep_alive_max_requests);
# server/serve.py configures it with this value so the edge knows which response is last.
KEEP_ALIVE_MAX_REQUESTS = 1000

Clock = Callable[[], float]
# Told (pool, state, how many connections of the pool are in that state now).
CountWatcher = Callable[[str, str, int], None]
log = structlog.get_logger("butterflyfx")


@dataclass(slots=True, eq=False)
class Connection:
    """One client connection: where from, which pool, which state, since when."""

    key: Hashable
    address: str
    pool: str
    state: str
    created_at: float
    changed_at: float  # when it last changed state
    requests: int = 0
    in_flight: int = 0  # requests being served now (HTTP/2 streams, a WebSocket)
    closes: bool = False  # its current response is its last

    def to_dict(self, now: float) -> dict[str, Any]:
        return {
            "address": self.address,
            "pool": self.pool,
            "state": self.state,
            "age_seconds": round(now - self.created_at, 3),
            "in_state_seconds": round(now - self.changed_at, 3),
            "requests": self.requests,
        }


class ConnectionTracker:
    """The connections of one worker, indexed by key, pool and state.

    ``max_connections`` caps the open ones: :meth:`begin` refuses a connection it has not
    seen while that many are open. ``archive_size`` bounds the ring of archived ones.
    """

    def __init__(
        self,
        *,
        timeout: float,
        max_connections: int,
        archive_size: int,
        clock: Clock = time.monotonic,
    ) -> None:
        self.timeout = timeout
        self.max_connections = max_connections
        self.clock = clock
        self._open: OrderedDict[Hashable, Connection] = OrderedDict()  # least recent first
        self._idle: OrderedDict[Hashable, Connection] = OrderedDict()  # idle longest first
        self._closed: deque[Connection] = deque()  # closed since the last sweep
        self._archive: deque[Connection] = deque()
        self._archive_size = archive_size
        self._counts = {pool: dict.fromkeys(STATES, 0) for pool in POOLS}
        self._created = dict.fromkeys(POOLS, 0)
        self._ended = dict.fromkeys(POOLS, 0)
        self._refused = dict.fromkeys(POOLS, 0)
        self._watchers: tuple[CountWatcher, ...] = ()

    # -- lookups -------------------------------------------------------------------------
    def get(self, key: Hashable) -> Connection | None:
        """The open connection with this key, or None."""
        return self._open.get(key)

    @property
    def open_count(self) -> int:
        return len(self._open)

    def watch(self, watcher: CountWatcher) -> Callable[[], None]:
        """Call ``watcher(pool, state, count)`` now for every pool and state, then each time
        one of those counts changes (sweeps included), synchronously: it must be quick.
        Returns the function that stops it. A watcher that raises is logged and kept."""
        self._watchers = (*self._watchers, watcher)
        for pool, counts in self._counts.items():
            for state, count in counts.items():
                self._tell(watcher, pool, state, count)

        def stop() -> None:
            self._watchers = tuple(w for w in self._watchers if w is not watcher)

        return stop

    # -- transitions ---------------------------------------------------------------------
    def begin(
        self, key: Hashable, address: str, pool: str, *, websocket: bool = False
    ) -> Connection | None:
        """A request (or a WebSocket handshake) starts on connection ``key``.

        Returns the connection, now ``active`` (``handshake`` for a WebSocket), or None
        when it is a connection not seen before and ``max_connections`` are open.
        """
        now = self.clock()
        connection = self._open.get(key)
        if connection is None:
            if len(self._open) >= self.max_connections:
                self._refused[pool] += 1
                return None
            connection = Connection(key, address, pool, "new", now, now)
            self._open[key] = connection
            self._count(pool, "new", 1)
            self._created[pool] += 1
        else:
            self._open.move_to_end(key)
            if connection.state == "idle":
                del self._idle[key]
        connection.requests += 1
        connection.in_flight += 1
        if connection.state != "closing":
            self._move(connection, "handshake" if websocket else "active", pool, now)
        return connection

    def accepted(self, connection: Connection) -> None:
        """A WebSocket handshake succeeded: the connection is ``active``."""
        if connection.state == "handshake":
            self._move(connection, "active", connection.pool, self.clock())

    def closing(self, connection: Connection) -> None:
        """The response being sent is the connection's last (``Connection: close``)."""
        connection.closes = True
        if connection.state in ("new", "handshake", "active", "idle"):
            self._move(connection, "closing", connection.pool, self.clock())

    def end(self, connection: Connection, pool: str | None = None, *, close: bool = False) -> None:
        """A request ended. ``pool`` is where it turned out to belong (an admin route);
        ``close`` says the connection ends with it."""
        if connection.state not in OPEN_STATES:
            return  # already closed: another request on it ended it
        connection.in_flight = max(0, connection.in_flight - 1)
        connection.closes = connection.closes or close
        target = pool or connection.pool
        now = self.clock()
        if connection.in_flight:
            if target != connection.pool:
                self._move(connection, connection.state, target, now)
        elif connection.closes:
            self._close(connection, target, now)
        else:
            self._move(connection, "idle", target, now)
            self._idle[connection.key] = connection

    def sweep(self, now: float | None = None) -> int:
        """Archive the connections closed since the last sweep; close those idle for
        ``timeout`` seconds or more (they show as closed until the next sweep).

        Returns how many idle connections it closed.
        """
        now = self.clock() if now is None else now
        earlier, self._closed = self._closed, deque()  # archived now; new ones wait
        for connection in earlier:
            self._file(connection, now)
        swept = 0
        while self._idle:
            connection = next(iter(self._idle.values()))
            if now - connection.changed_at < self.timeout:
                break  # the rest went idle later
            self._close(connection, connection.pool, now)
            swept += 1
        return swept

    def _move(self, connection: Connection, state: str, pool: str, now: float) -> None:
        was_pool, was_state = connection.pool, connection.state
        connection.pool, connection.state, connection.changed_at = pool, state, now
        if (was_pool, was_state) != (pool, state):
            self._count(was_pool, was_state, -1)
            self._count(pool, state, 1)

    def _count(self, pool: str, state: str, change: int) -> None:
        counts = self._counts[pool]
        counts[state] += change
        for watcher in self._watchers:
            self._tell(watcher, pool, state, counts[state])

    @staticmethod
    def _tell(watcher: CountWatcher, pool: str, state: str, count: int) -> None:
        try:
            watcher(pool, state, count)
        except Exception:  # a watcher's bug must not break the request that moved
            log.exception("connection_watcher_failed", pool=pool, state=state)

    def _close(self, connection: Connection, pool: str, now: float) -> None:
        del self._open[connection.key]
        self._idle.pop(connection.key, None)
        self._move(connection, "closed", pool, now)
        connection.in_flight = 0
        self._ended[pool] += 1
        self._closed.append(connection)
        if len(self._closed) > self._archive_size:  # bounded even when no sweep runs
            self._file(self._closed.popleft(), now)

    def _file(self, connection: Connection, now: float) -> None:
        if self._archive_size == 0:
            self._count(connection.pool, "closed", -1)
            return
        if len(self._archive) >= self._archive_size:
            oldest = self._archive.popleft()
            self._count(oldest.pool, "archived", -1)
        self._move(connection, "archived", connection.pool, now)
        self._archive.append(connection)

    # -- reports -------------------------------------------------------------------------
    def pool_totals(self, pool: str) -> dict[str, int]:
        """Seed 004's counts for one pool: open, active, idle now; created and closed ever.

        A connection counts as created in the pool of its first request and as closed in
        the pool of its last, so across all pools ``total_created - total_closed`` is the
        number open.
        """
        counts = self._counts[pool]
        return {
            "total_connections": sum(counts[state] for state in OPEN_STATES),
            "active_connections": counts["active"],
            "idle_connections": counts["idle"],
            "total_created": self._created[pool],
            "total_closed": self._ended[pool],
        }

    def refused(self, pool: str) -> int:
        """Connections refused in this pool because ``max_connections`` were open."""
        return self._refused[pool]

    def state_counts(self, pool: str) -> dict[str, int]:
        """How many connections of the pool are in each state now (archived: in the ring)."""
        return dict(self._counts[pool])

    def recent(self, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` connections, most recently used first: open ones, then those
        closed since the last sweep, then the archive, newest first."""
        now = self.clock()
        found: list[dict[str, Any]] = []
        for source in (reversed(self._open.values()), reversed(self._closed),
                       reversed(self._archive)):  # fmt: skip
            for connection in source:
                if len(found) >= limit:
                    return found
                found.append(connection.to_dict(now))
        return found
