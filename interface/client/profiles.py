"""Which server and key to use when the caller does not say: the environment, then a profile.

``BUTTERFLYFX_URL``/``BUTTERFLYFX_API_KEY`` first, then the profile (``profile=`` or
``$BUTTERFLYFX_PROFILE``, else ``default``) in the profile file
(``$BUTTERFLYFX_PROFILE_FILE``, else ``$XDG_CONFIG_HOME/butterflyfx/profile.toml``), then
``http://127.0.0.1:8000`` without a key. The ``butterflyfx`` commands read the same file
(their ``--url``/``--key`` come first), so a script and a shell share one set of profiles.

A profile file holds TOML tables of ``url`` and ``key``::

    [default]
    url = "http://127.0.0.1:8000"
    key = "sk-butterflyfx-..."

    [staging]
    url = "https://staging.example.com"
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

URL_VARIABLE = "BUTTERFLYFX_URL"
KEY_VARIABLE = "BUTTERFLYFX_API_KEY"
PROFILE_VARIABLE = "BUTTERFLYFX_PROFILE"
PROFILE_FILE_VARIABLE = "BUTTERFLYFX_PROFILE_FILE"
DEFAULT_URL = "http://127.0.0.1:8000"


class ProfileError(ValueError):
    """The profile file cannot be read, lacks the profile named, or holds a bad one."""


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


def read_profile(name: str | None, env: Mapping[str, str]) -> dict[str, Any]:
    """The profile's table; {} when the default one is absent. A named one must exist."""
    chosen = name or env.get(PROFILE_VARIABLE)
    path = profile_file(env)
    try:
        profiles = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        profiles = {}
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ProfileError(f"cannot read the profile file {path}: {error}") from error
    if chosen is None:
        table = profiles.get("default", {})
    elif chosen in profiles:
        table = profiles[chosen]
    else:
        raise ProfileError(f"no profile {chosen!r} in {path}")
    if not isinstance(table, dict) or set(table) - {"url", "key"}:
        raise ProfileError(f"{path}: a profile holds only url and key")
    return table


def resolve(
    url: str | None = None,
    key: str | None = None,
    profile: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Target:
    """The :class:`Target`: ``url``/``key`` when given, else as the module says."""
    env = os.environ if env is None else env
    table = read_profile(profile, env)
    chosen = url or env.get(URL_VARIABLE) or table.get("url") or DEFAULT_URL
    secret = key or env.get(KEY_VARIABLE) or table.get("key") or None
    if not str(chosen).startswith(("http://", "https://")):
        raise ProfileError(f"the URL must be an http:// or https:// URL, not {chosen!r}")
    return Target(str(chosen), None if secret is None else str(secret))
