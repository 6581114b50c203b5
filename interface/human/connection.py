"""Which server and key a command uses, and how its failures read.

``--url``/``--key`` win, then ``BUTTERFLYFX_URL``/``BUTTERFLYFX_API_KEY``, then the
profile (``--profile NAME`` or ``$BUTTERFLYFX_PROFILE``, else ``default``) in the profile
file (``$BUTTERFLYFX_PROFILE_FILE``, else ``$XDG_CONFIG_HOME/butterflyfx/profile.toml``),
then ``http://127.0.0.1:8000`` without a key (:mod:`butterflyfx.interface.client.profiles`,
which the Python client's ``from_env`` reads too).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from butterflyfx.core.commands import CommandError
from butterflyfx.interface.client import profiles
from butterflyfx.interface.client.profiles import KEY_VARIABLE, URL_VARIABLE, Target

__all__ = ["KEY_VARIABLE", "URL_VARIABLE", "Target", "describe", "resolve"]

# Exit codes of the human commands (argparse's usage errors exit 2 on their own).
API_ERROR = 1  # the server answered with an error
USAGE = 2  # the command line, a profile or an argument is wrong
UNREACHABLE = 3  # no answer at all


def resolve(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> Target:
    """The :class:`Target` of a parsed command line (see the module's docstring)."""
    try:
        return profiles.resolve(args.url, args.key, args.profile, env)
    except profiles.ProfileError as error:
        message = str(error).replace("the URL must be", "--url must be")
        raise CommandError(message) from None


def describe(error: Any) -> str:
    """One line for a :class:`~butterflyfx.interface.client.ButterflyFXError`:
    ``404 not-found: <detail>``; the field at fault named for a validation error."""
    if not error.status:
        return str(error.detail)  # "no answer from the server: ConnectError(...)"
    kind = str(error.type).rstrip("/").rsplit("/", 1)[-1]
    if kind == "about:blank":
        kind = str(error.title).lower().replace(" ", "-")
    named = not error.field or str(error.field) in str(error.detail)
    field = "" if named else f"{error.field}: "
    return f"{error.status} {kind}: {field}{error.detail}"
