"""``auth.hmac``: stateless signed service tokens for ButterflyFX Server.

A token ``bfxh.<payload>.<signature>`` carries its tenant, tier, scopes and expiry, signed
with HMAC-SHA256 under a secret only the server and the token minter share. The server keeps
no token list: it checks the signature, then the claims. ``butterflyfx hmac-token`` mints
one; :func:`issue` does the same from Python. Config section ``[auth.hmac]``::

    secret = "..."                 # required, >= 32 characters; usually from the environment,
                                   # BUTTERFLYFX_AUTH_HMAC__SECRET
    max_lifetime_seconds = 86400   # tokens valid for longer are refused
    revoked = ["<token id>"]       # refused although well signed

This module holds the hook implementations; the work is in :mod:`.tokens`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from butterflyfx.core.auth import Caller, Principal
from butterflyfx.core.hookspecs import hookimpl

from .command import HmacTokenCommand
from .settings import SECTION, HmacSettings, settings_of
from .tokens import issue, verify

if TYPE_CHECKING:
    from butterflyfx.core.commands import Command
    from butterflyfx.core.context import ServerContext

__all__ = ["SECTION", "HmacSettings", "issue", "verify"]


@hookimpl
def butterflyfx_config_model() -> tuple[str, type[HmacSettings]]:
    return SECTION, HmacSettings


# tryfirst: the prefix check declines anything that is not ours at once, and going first
# keeps a less careful plugin, one that refuses every dotted token, from refusing ours.
@hookimpl(tryfirst=True)
def butterflyfx_authenticate(caller: Caller, ctx: ServerContext) -> Principal | None:
    if caller.token is None:
        return None  # no bearer token: perhaps another plugin trusts something else
    return verify(caller.token, settings_of(ctx))


@hookimpl
def butterflyfx_commands() -> Mapping[str, Command]:
    return {"hmac-token": HmacTokenCommand()}
