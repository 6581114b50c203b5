"""``butterflyfx hmac-token --tenant T --tier pro [--scopes read,write] [--lifetime 3600]``.

Mints a token with the secret of the ``[auth.hmac]`` section the config (``--config FILE``,
plus the environment) gives. Nothing is stored anywhere: the token is printed once, as the
last line of stdout, for scripts to take with ``tail -n 1``; the line before it says what
the token is for and its id, the handle for revoking it.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from butterflyfx.core.auth import ACTIONS, TIERS
from butterflyfx.core.commands import CommandError

from .settings import SECTION, settings_of
from .tokens import new_claims, sign

if TYPE_CHECKING:
    from butterflyfx.core.context import ServerContext

DEFAULT_SCOPES = ("read", "write", "invoke")
DEFAULT_LIFETIME = 3600


class HmacTokenCommand:
    help = "mint a signed service token (auth.hmac); printed once, as the last line"

    def configure(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--tenant", required=True, help="the tenant whose objects it sees")
        parser.add_argument("--tier", required=True, choices=TIERS, help="its rate limit tier")
        parser.add_argument(
            "--scopes",
            default=",".join(DEFAULT_SCOPES),
            help=f"comma-separated, of {','.join(ACTIONS)} (default {','.join(DEFAULT_SCOPES)})",
        )
        parser.add_argument(
            "--lifetime",
            type=int,
            default=DEFAULT_LIFETIME,
            metavar="SECONDS",
            help=f"how long it is valid (default {DEFAULT_LIFETIME}; "
            f"at most [{SECTION}] max_lifetime_seconds)",
        )

    def run(self, args: argparse.Namespace, ctx: ServerContext) -> int:
        settings = settings_of(ctx)
        if args.lifetime > settings.max_lifetime_seconds:
            raise CommandError(
                f"--lifetime {args.lifetime} is longer than [{SECTION}] max_lifetime_seconds "
                f"({settings.max_lifetime_seconds}): the server would refuse the token"
            )
        try:
            claims = new_claims(args.tenant, args.tier, args.scopes.split(","), args.lifetime)
        except ValueError as error:
            raise CommandError(str(error)) from None
        token = sign(settings.secret.get_secret_value(), claims)
        print(
            f"token {claims.tid} for tenant {claims.tenant} (tier {claims.tier}, scopes "
            f"{','.join(claims.scopes)}), valid until {claims.expires()}"
        )
        print(token)
        return 0
