"""``butterflyfx keys create|list|revoke``: manage API keys from the shell.

The command opens the key store the config names itself (the SQLite file, or the
PostgreSQL database of ``[auth.apikey] database``), so it works with the servers stopped
or running: a key it creates or revokes counts on the next request to any of them.
``create`` prints the key once, as the last line of stdout, for scripts to take with
``tail -n 1``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import TYPE_CHECKING

from butterflyfx.core.auth import ACTIONS, TIERS
from butterflyfx.core.commands import CommandError
from butterflyfx.core.store import StoreUnavailable

from .keys import (
    ApiKey,
    InvalidKeyField,
    checked_name,
    checked_scopes,
    checked_tenant,
    checked_tier,
)
from .keystore import KeyStoreError

if TYPE_CHECKING:
    from butterflyfx.core.context import ServerContext

    from .stores import KeyStorage

COLUMNS = ("ID", "TENANT", "TIER", "SCOPES", "NAME", "CREATED", "LAST USED", "REVOKED")


def _where(sub: argparse.ArgumentParser) -> None:
    # Also accepted after the action (`keys create --data-dir D`); the CLI has already
    # read them to choose the config, so here they only need to parse.
    sub.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS,
                     help="TOML config (or $BUTTERFLYFX_CONFIG_FILE)")  # fmt: skip
    sub.add_argument("--data-dir", metavar="DIR", default=argparse.SUPPRESS,
                     help="overrides server.data_dir")  # fmt: skip


def _table(keys: list[ApiKey]) -> str:
    rows = [COLUMNS] + [
        tuple(
            value or "-"
            for value in (
                shown["id"],
                shown["tenant"],
                shown["tier"],
                ",".join(shown["scopes"]),
                shown["name"],
                shown["created_at"],
                shown["last_used_at"],
                shown["revoked_at"],
            )
        )  # fmt: skip
        for shown in (key.public() for key in keys)
    ]
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(COLUMNS))]
    return "\n".join(
        "  ".join(
            str(value).ljust(width) for value, width in zip(row, widths, strict=True)
        ).rstrip()
        for row in rows
    )


class KeysCommand:
    """``butterflyfx keys``: create, list and revoke API keys."""

    help = "create, list and revoke API keys (auth.apikey)"

    def __init__(self, store_of: Callable[[ServerContext], KeyStorage]) -> None:
        self.store_of = store_of

    def configure(self, parser: argparse.ArgumentParser) -> None:
        actions = parser.add_subparsers(dest="keys_action", metavar="ACTION", required=True)
        create = actions.add_parser(
            "create", help="create a key and print it once (the last line of stdout)"
        )
        create.add_argument("--tenant", required=True, help="the tenant the key acts for")
        create.add_argument("--tier", required=True, help=f"one of {', '.join(TIERS)}")
        create.add_argument(
            "--scopes", help=f"comma-separated, of {','.join(ACTIONS)} (default read,write,invoke)"
        )
        create.add_argument("--name", help="a label to recognise the key by in lists")
        _where(create)
        listing = actions.add_parser("list", help="list keys (never the keys themselves)")
        listing.add_argument("--tenant", help="only this tenant's keys")
        listing.add_argument("--json", action="store_true", help="print JSON")
        _where(listing)
        revoke = actions.add_parser("revoke", help="revoke a key: refused from its next request")
        revoke.add_argument("id", metavar="ID", help="the key's id (key_...), as listed")
        _where(revoke)

    async def run(self, args: argparse.Namespace, ctx: ServerContext) -> int:
        action = {"create": self._create, "list": self._list, "revoke": self._revoke}
        store = self.store_of(ctx)
        try:
            return await action[args.keys_action](args, store)
        except InvalidKeyField as error:
            raise CommandError(f"--{error.field}: {error}") from None
        except (KeyStoreError, StoreUnavailable) as error:
            raise CommandError(str(error)) from None
        finally:
            await store.close()

    @staticmethod
    async def _create(args: argparse.Namespace, store: KeyStorage) -> int:
        tenant, tier = checked_tenant(args.tenant), checked_tier(args.tier)
        scopes, name = checked_scopes(args.scopes), checked_name(args.name)
        await store.open()
        issued = await store.create(tenant, tier, scopes, name)
        key = issued.key
        print(
            f"created {key.id} for tenant {key.tenant} (tier {key.tier}; scopes "
            f"{','.join(key.scopes)}); the key is shown only now:",
            flush=True,
        )
        print(issued.secret, flush=True)
        return 0

    @staticmethod
    async def _list(args: argparse.Namespace, store: KeyStorage) -> int:
        tenant = None if args.tenant is None else checked_tenant(args.tenant)
        await store.open()
        keys = await store.list(tenant=tenant)
        if args.json:
            print(json.dumps([key.public() for key in keys], indent=2))
        else:
            print(_table(keys) if keys else "no API keys")
        return 0

    @staticmethod
    async def _revoke(args: argparse.Namespace, store: KeyStorage) -> int:
        key_id = args.id
        await store.open()
        before = await store.get(key_id)
        if before is None:
            raise CommandError(f"no API key {key_id!r}; `butterflyfx keys list` shows the ids")
        key = await store.revoke(key_id)
        if key is None:  # nothing deletes keys, but say so rather than crash
            raise CommandError(f"no API key {key_id!r}")
        if before.revoked:
            print(f"{key_id} was already revoked at {key.public()['revoked_at']}")
        else:
            print(f"revoked {key_id} (tenant {key.tenant}); it is refused from now on")
        return 0
