"""``/api/v1/events``: the WebSocket a client subscribes on, and how a stream is served.

The http plugin's guard runs before HTTP requests only, so this handler admits the
caller itself (action ``read``) before it accepts the handshake. Credentials come in
``Authorization: Bearer <token>``, or, from a browser (which cannot set headers on a
WebSocket), in ``Sec-WebSocket-Protocol: bearer, <token>``: the server then answers with
the subprotocol ``bearer``, never the token. A ``?token=`` query parameter is refused:
URLs end up in access logs and proxies' logs. A refusal is an HTTP answer to the
handshake (401, 403, 400, 429, 503) with a problem document, as for any other route.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, cast

import structlog
from quart import Blueprint, Response, websocket
from werkzeug.datastructures import Headers, MultiDict

from butterflyfx.core.auth import Admission, Caller, requires
from butterflyfx.core.problems import Problem, ProblemError, invalid

from .hub import KINDS, EventHub, HubFull, Subscription

if TYPE_CHECKING:
    from butterflyfx.core.context import ServerContext

log = structlog.get_logger("butterflyfx.events")

EVENTS_PATH = "/api/v1/events"
SUBPROTOCOL = "bearer"
PROTOCOL_HEADER = "Sec-WebSocket-Protocol"
FELL_BEHIND = 1008  # policy violation: the client did not read, the server did not wait
CLOSE_WAIT = 10.0  # seconds the close frame may wait behind data a stuck client never read
PROBLEM_JSON = "application/problem+json"


def credentials(
    headers: Headers, offered: list[str], args: MultiDict[str, str], client: str
) -> Caller:
    """The caller a handshake describes (its token from the header or the subprotocols)."""
    if "token" in args:
        raise invalid(
            "token", "send the token in the Authorization header, or from a browser as "
            f"{PROTOCOL_HEADER}: {SUBPROTOCOL}, <token>; a token in the URL would be logged",
            status=400,
        )  # fmt: skip
    scheme: str | None = None
    token: str | None = None
    authorization = headers.get("Authorization", "")
    if authorization:
        given, _, rest = authorization.partition(" ")
        scheme = given.lower()
        token = rest.strip() if scheme == "bearer" and rest.strip() else None
    elif SUBPROTOCOL in offered:
        following = offered[offered.index(SUBPROTOCOL) + 1 :]
        if not following:
            raise invalid(
                PROTOCOL_HEADER, f"after {SUBPROTOCOL!r} send the token: "
                f"{PROTOCOL_HEADER}: {SUBPROTOCOL}, <token>", status=400,
            )  # fmt: skip
        scheme, token = SUBPROTOCOL, following[0]
    seen = Headers(headers)
    seen.remove(PROTOCOL_HEADER)  # may hold the token: plugins see it as caller.token only
    return Caller(
        method="GET",
        path=EVENTS_PATH,
        client=client,
        scheme=scheme,
        token=token,
        headers=cast(Mapping[str, str], seen),  # looked up case-insensitively
    )


def wanted_kinds(args: MultiDict[str, str]) -> frozenset[str] | None:
    """``?kinds=a,b``: the event kinds asked for; None (every kind) when absent."""
    raw = args.get("kinds")
    if raw is None:
        return None
    names = [name.strip() for name in raw.split(",") if name.strip()]
    unknown = [name for name in names if name not in KINDS]
    if not names or unknown:
        what = f"unknown kind {unknown[0]!r}" if unknown else "no kind named"
        raise invalid("kinds", f"{what}; the kinds are {', '.join(KINDS)}", status=400)
    return frozenset(names)


def refusal(problem: Problem) -> Response:
    """The HTTP answer to a refused handshake (the http plugin's handlers need a request)."""
    body = json.dumps(problem.to_dict(EVENTS_PATH), separators=(",", ":"))
    return Response(body, problem.status, dict(problem.headers), content_type=PROBLEM_JSON)


class EventStream:
    """The ``/api/v1/events`` route of one server."""

    def __init__(self, ctx: ServerContext, hub_of: Callable[[ServerContext], EventHub | None]):
        self.ctx = ctx
        self.hub_of = hub_of

    def blueprint(self) -> Blueprint:
        bp = Blueprint("events", __name__)
        bp.add_websocket(EVENTS_PATH, view_func=self.stream)
        return bp

    @requires("read")  # what the handler checks itself: the guard does not see websockets
    async def stream(self) -> Response | None:
        """Stream the caller's tenant's events as JSON text frames until either side ends."""
        ws: Any = websocket._get_current_object()  # type: ignore[attr-defined]
        hub = self.hub_of(self.ctx)
        try:
            offered = list(ws.requested_subprotocols)
            caller = credentials(ws.headers, offered, ws.args, ws.remote_addr or "unknown")
            kinds = wanted_kinds(ws.args)
            admission = await admit(self.ctx, caller)
            if hub is None:
                raise unavailable("the events plugin has not started")
            subscription = hub.subscribe(admission.principal.tenant, kinds)
        except ProblemError as refused:
            return refusal(refused.problem)
        except HubFull as full:
            return refusal(unavailable(str(full)).problem)
        try:  # subscribed before the handshake completes: nothing after it is missed
            chosen = SUBPROTOCOL if SUBPROTOCOL in ws.requested_subprotocols else None
            await ws.accept(subprotocol=chosen)
            await serve(ws, subscription)
        finally:
            hub.unsubscribe(subscription)
        return None


async def admit(ctx: ServerContext, caller: Caller) -> Admission:
    """The guard's verdict; without credentials, the refusal names both ways to send them."""
    try:
        return await ctx.guard.admit(caller, "read")
    except ProblemError as refused:
        problem = refused.problem
        if problem.status != 401 or caller.token is not None:
            raise
        detail = (
            "this stream needs credentials: send Authorization: Bearer <API key or token>, "
            f"or from a browser {PROTOCOL_HEADER}: {SUBPROTOCOL}, <API key or token>"
        )
        raise ProblemError(replace(problem, detail=detail)) from None


def unavailable(detail: str) -> ProblemError:
    return ProblemError(
        Problem(503, "unavailable", "Service unavailable", detail, headers={"Retry-After": "5"})
    )


async def serve(ws: Any, subscription: Subscription) -> None:
    """Send queued events until the client leaves or falls behind (then close 1008)."""

    async def send_queued() -> None:
        while True:
            await ws.send(await subscription.queue.get())

    async def ignore_incoming() -> None:
        while True:  # a client has nothing to say; reading keeps Quart's queue empty
            await ws.receive()

    tasks = [
        asyncio.create_task(send_queued()),
        asyncio.create_task(ignore_incoming()),
        asyncio.create_task(subscription.overflowed.wait()),
    ]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:  # also when the client disconnects: Quart cancels this handler
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    if subscription.overflowed.is_set():
        log.warning(
            "events_subscriber_dropped", tenant=subscription.tenant, buffer=subscription.buffer,
            detail="the client read too slowly; it may reconnect and catch up through the API",
        )  # fmt: skip
        reason = f"fell more than {subscription.buffer} events behind"
        # The frame queues behind whatever the client has not read; a client that never
        # reads never gets it, and the handler must not wait for it forever.
        with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
            await asyncio.wait_for(ws.close(FELL_BEHIND, reason), CLOSE_WAIT)
