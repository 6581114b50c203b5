"""The table of contents of ButterflyFX Server: every hook a plugin can implement.

Every hook name starts with ``butterflyfx_``. A hook may return a value or an awaitable;
callers resolve results with :func:`butterflyfx.core.plugins.await_maybe`. Because pluggy
has no native async, no hook here is ``firstresult``: a coroutine is never None, so the
caller walks the results in order and takes the first that resolves to something.

Call rules, as stated in each docstring:

- **all**: every implementation runs; the caller uses every result.
- **first**: implementations run in pluggy's order (``tryfirst`` first, built-in defaults
  are ``trylast``); the first result that resolves to non-None wins.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from pydantic import BaseModel

    from butterflyfx.kernel import ExpressionLanguage

    from .auth import Action, Caller, Principal, RateLimit
    from .commands import Command
    from .context import ServerContext
    from .events import Event
    from .graph import GraphEngine
    from .health import PluginHealth
    from .observe import RequestRecord
    from .store import SubstrateStore

hookspec = pluggy.HookspecMarker("butterflyfx")
hookimpl = pluggy.HookimplMarker("butterflyfx")

MaybeAwaitable = Any  # a value, or an awaitable of it


# -- configuration and lifecycle --------------------------------------------------


@hookspec
def butterflyfx_config_model() -> tuple[str, type[BaseModel]] | None:
    """The plugin's config section name and the pydantic model that validates it. Rule: all."""


@hookspec
def butterflyfx_startup(ctx: ServerContext) -> Awaitable[None] | None:
    """Open pools, run migrations, start background tasks; runs before serving. Rule: all."""


@hookspec
def butterflyfx_shutdown(ctx: ServerContext) -> Awaitable[None] | None:
    """Flush and close what startup opened; runs after the last request. Rule: all."""


# -- what the server is made of ---------------------------------------------------


@hookspec
def butterflyfx_storage(ctx: ServerContext) -> SubstrateStore | None:
    """The store substrates live in (not yet opened). Rule: first non-None wins."""


@hookspec
def butterflyfx_graph_engine(ctx: ServerContext) -> GraphEngine | None:
    """The engine answering traversals, paths and subgraphs over the store's relationships.

    Called once the store is open (``ctx.store`` is usable); the engine is then opened.
    Rule: first non-None wins.
    """


@hookspec
def butterflyfx_expression_languages(
    ctx: ServerContext,
) -> Mapping[str, ExpressionLanguage] | None:
    """Expression types to add beside the kernel's ``lambda`` and ``constant``. Rule: all."""


@hookspec
def butterflyfx_asgi_app(ctx: ServerContext) -> Any:
    """The ASGI application the server runs (the ``http`` plugin's). Rule: first non-None.

    Called synchronously while the server builds its app, before the event loop serves:
    return the application itself, not an awaitable.
    """


@hookspec
def butterflyfx_routes(app: Any, ctx: ServerContext) -> None:
    """Add endpoints (Quart blueprints) to the HTTP app. Rule: all."""


# -- who may do what ----------------------------------------------------------------
# The guard in core/auth.py calls these for every request; see its docstring.


@hookspec
def butterflyfx_authenticate(
    caller: Caller, ctx: ServerContext
) -> Principal | Awaitable[Principal | None] | None:
    """The principal the caller's credentials stand for (``caller.token``, the bearer token,
    or whatever else the plugin trusts in ``caller.headers``; asked even without a token).

    Return None for credentials this plugin does not recognise; raise
    ``butterflyfx.core.auth.unauthenticated(detail)`` for ones it recognises and refuses.
    Rule: first non-None wins; none at all is a 401.
    """


@hookspec
def butterflyfx_authorize(
    principal: Principal, action: str, caller: Caller, ctx: ServerContext
) -> bool | Awaitable[bool | None] | None:
    """May ``principal`` take ``action`` (read, write, invoke, admin)? False refuses (403),
    True allows, None abstains; when all abstain the principal's scopes decide. Rule: all.
    """


@hookspec
def butterflyfx_rate_limit(
    principal: Principal | None, caller: Caller, action: Action, ctx: ServerContext
) -> RateLimit | Awaitable[RateLimit | None] | None:
    """Count this request and say whether it may proceed. ``principal`` is None for
    requests without one yet (open routes, failed authentication): limit those by
    ``caller.client``. ``action`` is what the request does (``auth.counted_as``). Return
    None to leave it unlimited; raise ``auth.cannot_count`` (a 503) to refuse a request
    that cannot be counted. Rule: all; any refusal is a 429 and the tightest answer is
    reported in ``X-RateLimit-*`` headers.
    """


@hookspec
def butterflyfx_commands() -> Mapping[str, Command] | None:
    """Subcommands this plugin adds to the ``butterflyfx`` CLI (``keys``, ``users``), by
    name; see :class:`butterflyfx.core.commands.Command`. Rule: all (a name claimed twice
    is refused)."""


# -- what happens while it runs ---------------------------------------------------


@hookspec
def butterflyfx_on_event(event: Event, ctx: ServerContext) -> Awaitable[None] | None:
    """Hear about substrates created, updated, deleted, invoked or failing to evaluate, and
    relationships created and deleted; must not raise. Rule: all."""


@hookspec
def butterflyfx_on_request_started(method: str, path: str, pool: str, ctx: ServerContext) -> None:
    """Hear that a request has arrived (``pool``: the one its path puts it in), before it
    is served; exactly one ``butterflyfx_on_request`` follows for it. Synchronous, must be
    quick and must not raise. Rule: all."""


@hookspec
def butterflyfx_on_request(record: RequestRecord, ctx: ServerContext) -> Awaitable[None] | None:
    """Hear about every request served, once its response is sent (see
    :class:`butterflyfx.core.observe.RequestRecord`); must be quick and must not raise.
    Rule: all."""


@hookspec
def butterflyfx_health(ctx: ServerContext) -> PluginHealth | Awaitable[PluginHealth] | None:
    """Report this plugin's state for ``/api/v1/health``. Rule: all."""
