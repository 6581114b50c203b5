"""Which server and key a command uses, and how its failures read.

``--url``/``--key`` win, then ``BUTTERFLYFX_URL``/``BUTTERFLYFX_API_KEY``, then the
profile (``--profile NAME`` or ``$BUTTERFLYFX_PROFILE``, else ``default``) in the profile
file (``$BUTTERFLYFX_PROFILE_FILE``, else ``$XDG_CONFIG_HOME/butterflyfx/profile.toml``),
then ``http://127.0.0.1:8000`` without a key.
"""

from __future__ import annotations

import argparse
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from butterflyfx.core.commands import CommandError

URL_VARIABLE = "BUTTERFLYFX_URL"
KEY_VARIABLE = "BUTTERFLYFX_API_KEY"
PROFILE_VARIABLE = "BUTTERFLYFX_PROFILE"
PROFILE_FILE_VARIABLE = "BUTTERFLYFX_PROFILE_FILE"
DEFAULT_URL = "http://127.0.0.1:8000"

# Exit codes of the human commands (argparse's usage errors exit 2 on their own).
API_ERROR = 1  # the server answered with an error
USAGE = 2  # the command line, a profile or an argument is wrong
UNREACHABLE = 3  # no answer at all


@dataclass(frozen=True)
class Target:
    """The server to call and the key to call it with."""

    url: str
    key: str | None


def profile_file(env: Mapping[str, str]) -> Path:
    """Where the profiles are read from."""
    if env.get(PROFILE_FILE_VARIABLE):
        return Path(env[PROFILE_FILE_VARIABLE])
    config_home = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config_home) / "butterflyfx" / "profile.toml"


def _profile(name: str | None, env: Mapping[str, str]) -> dict[str, Any]:
    """The profile's table; {} when the default one is absent. A named one must exist."""
    chosen = name or env.get(PROFILE_VARIABLE)
    path = profile_file(env)
    try:
        profiles = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        profiles = {}
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise CommandError(f"cannot read the profile file {path}: {error}") from error
    if chosen is None:
        table = profiles.get("default", {})
    elif chosen in profiles:
        table = profiles[chosen]
    else:
        raise CommandError(f"no profile {chosen!r} in {path}")
    if not isinstance(table, dict) or set(table) - {"url", "key"}:
        raise CommandError(f"{path}: a profile holds only url and key")
    return table


def resolve(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> Target:
    """The :class:`Target` of a parsed command line (see the module's docstring)."""
    env = os.environ if env is None else env
    profile = _profile(args.profile, env)
    url = args.url or env.get(URL_VARIABLE) or profile.get("url") or DEFAULT_URL
    key = args.key or env.get(KEY_VARIABLE) or profile.get("key") or None
    if not str(url).startswith(("http://", "https://")):
        raise CommandError(f"--url must be an http:// or https:// URL, not {url!r}")
    return Target(str(url), None if key is None else str(key))


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
