"""``butterflyfx users add|list|remove|disable|enable``: the users who may log in.

A password is read from stdin (``--password-stdin``) or typed at a prompt, never taken
from the command line, where ``ps`` and shell histories would show it.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import TYPE_CHECKING

from butterflyfx.core.auth import ACTIONS, TIERS
from butterflyfx.core.commands import CommandError
from butterflyfx.core.store import StoreUnavailable

from .passwords import PasswordRefused, check_new_password, hash_password
from .postgres_users import UserDatabaseError
from .stores import user_store
from .users import DEFAULT_SCOPES, User, UserRefused, checked_user

if TYPE_CHECKING:
    from butterflyfx.core.context import ServerContext

    from .stores import UserStorage


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Password again: ") != password:
            raise CommandError("the two passwords differ")
    else:
        raise CommandError("give the password on stdin with --password-stdin")
    try:
        check_new_password(password)
    except PasswordRefused as error:
        raise CommandError(str(error)) from None
    return password


def _table(users: list[User]) -> str:
    rows = [("NAME", "TENANT", "TIER", "SCOPES", "CREATED", "STATE")]
    for user in users:
        shown = user.public()
        rows.append((user.name, user.tenant, user.tier, ",".join(user.scopes),
                     shown["created_at"], "disabled" if user.disabled else "active"))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                     for row in rows)  # fmt: skip


class UsersCommand:
    help = "add, list, remove, disable or enable the users who log in (auth.jwt)"

    def configure(self, parser: argparse.ArgumentParser) -> None:
        actions = parser.add_subparsers(dest="users_action", metavar="ACTION", required=True)
        add = self._action(actions, "add", "add a user; the password comes from stdin")
        add.add_argument("name", metavar="NAME")
        add.add_argument("--tenant", required=True, help="the tenant whose objects it sees")
        add.add_argument("--tier", required=True, choices=TIERS, help="its rate limit tier")
        add.add_argument(
            "--scopes", default=",".join(DEFAULT_SCOPES),
            help=f"comma-separated, of {','.join(ACTIONS)} (default {','.join(DEFAULT_SCOPES)})",
        )  # fmt: skip
        add.add_argument(
            "--password-stdin", action="store_true",
            help="read the password from the first line of stdin (else a prompt asks)",
        )  # fmt: skip
        listing = self._action(actions, "list", "list the users (never their passwords)")
        listing.add_argument("--json", action="store_true", help="print JSON")
        for name, what in (("remove", "remove a user; its tokens stop working at once"),
                           ("disable", "refuse a user's logins and tokens until enabled"),
                           ("enable", "let a disabled user log in again")):  # fmt: skip
            self._action(actions, name, what).add_argument("name", metavar="NAME")

    @staticmethod
    def _action(
        actions: argparse._SubParsersAction[argparse.ArgumentParser], name: str, what: str
    ) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = actions.add_parser(name, help=what, description=what)
        # Also after the action (`users add NAME --data-dir DIR`); the CLI read them already.
        parser.add_argument(
            "--config", metavar="FILE", default=argparse.SUPPRESS, help="TOML config"
        )
        parser.add_argument("--data-dir", metavar="DIR", default=argparse.SUPPRESS,
                            help="overrides server.data_dir")  # fmt: skip
        return parser

    async def run(self, args: argparse.Namespace, ctx: ServerContext) -> int:
        password = read_password(args.password_stdin) if args.users_action == "add" else None
        store = user_store(ctx)
        try:
            await store.open()
        except UserDatabaseError as error:
            raise CommandError(str(error)) from None
        except Exception as error:
            raise CommandError(f"cannot open the users file {store.where}: {error}") from None
        try:
            return await self._run(args, store, password)
        except (UserRefused, StoreUnavailable) as error:
            raise CommandError(str(error)) from None
        finally:
            await store.close()

    async def _run(self, args: argparse.Namespace, store: UserStorage, password: str | None) -> int:
        action = args.users_action
        if action == "add":
            assert password is not None
            checked_user(args.name, args.tenant, args.tier, args.scopes.split(","))
            user = await store.add(
                args.name, args.tenant, args.tier, args.scopes.split(","),
                await hash_password(password),
            )  # fmt: skip
            print(f"added user {user.name} (tenant {user.tenant}, tier {user.tier}, "
                  f"scopes {','.join(user.scopes)})")  # fmt: skip
        elif action == "list":
            users = await store.all()
            if args.json:
                print(json.dumps([user.public() for user in users], indent=2))
            else:
                print(_table(users) if users else "no users; add one with: butterflyfx users add")
        elif action == "remove":
            if not await store.remove(args.name):
                raise CommandError(f"no user named {args.name!r}")
            print(f"removed user {args.name}")
        else:
            if not await store.set_disabled(args.name, action == "disable"):
                raise CommandError(f"no user named {args.name!r}")
            print(f"{action}d user {args.name}")
        return 0
