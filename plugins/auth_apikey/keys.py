"""What an API key is: its secret's shape, its digest, and the checks on what it may carry."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from butterflyfx.core.auth import ACTIONS, TIERS
from butterflyfx.interface.machine.access import ApiKeyBody

PREFIX = "sk-butterflyfx-"
SECRET_BYTES = 32  # token_urlsafe(32): 43 URL-safe characters, 256 bits of randomness
DEFAULT_SCOPES: tuple[str, ...] = ("read", "write", "invoke")
ADMIN_SCOPES: tuple[str, ...] = ACTIONS
TENANT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
KEY_ID = re.compile(r"key_[0-9a-f]{12}")


class InvalidKeyField(ValueError):
    """A tenant, tier, scope list or name that a key cannot have; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


def new_secret() -> str:
    return PREFIX + secrets.token_urlsafe(SECRET_BYTES)


def new_key_id() -> str:
    """The public name of a key, shown in lists and used to revoke it."""
    return "key_" + secrets.token_hex(6)


def secret_digest(secret: str) -> str:
    """SHA-256 of the whole key, in hex: the only form a key is stored in.

    A key carries 256 random bits, so nobody can guess it from its digest; slow password
    hashes (argon2, bcrypt) exist for guessable secrets and would only cost every request.
    """
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def checked_tenant(value: object) -> str:
    if not isinstance(value, str) or not TENANT_NAME.fullmatch(value):
        raise InvalidKeyField(
            "tenant",
            f"tenant {value!r} is not a tenant name: a letter or digit, then up to 63 "
            "letters, digits, '.', '_' or '-'",
        )
    return value


def checked_tier(value: object) -> str:
    if not isinstance(value, str) or value not in TIERS:
        raise InvalidKeyField("tier", f"tier must be one of {', '.join(TIERS)}, not {value!r}")
    return value


def checked_scopes(value: object) -> tuple[str, ...]:
    """Scopes from a list or a comma-separated string, in the canonical order; None is
    the default (read, write, invoke)."""
    if value is None:
        return DEFAULT_SCOPES
    if isinstance(value, str):
        given: list[object] = list(value.split(","))
    elif isinstance(value, list | tuple | set | frozenset):
        given = list(value)
    else:
        raise InvalidKeyField("scopes", "scopes must be a list of names or 'read,write,...'")
    names: set[str] = set()
    for item in given:
        if not isinstance(item, str):
            raise InvalidKeyField("scopes", f"a scope is a name, not {item!r}")
        if item.strip():
            names.add(item.strip().lower())
    unknown = sorted(repr(name) for name in names if name not in ACTIONS)
    if unknown:
        raise InvalidKeyField(
            "scopes",
            f"unknown scope {', '.join(unknown)}: scopes are {', '.join(ACTIONS)}",
        )
    if not names:
        raise InvalidKeyField("scopes", f"give at least one scope of {', '.join(ACTIONS)}")
    return tuple(action for action in ACTIONS if action in names)


def checked_name(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 200 or not value.isprintable():
        raise InvalidKeyField("name", "name must be printable text of at most 200 characters")
    return value or None


def tier_rank(tier: str) -> int:
    """Position among the tiers (free < pro < enterprise); -1 for a tier not known here."""
    return TIERS.index(tier) if tier in TIERS else -1


def _iso(epoch: int | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class ApiKey:
    """A key as stored, without its secret. Times are epoch seconds."""

    id: str
    tenant: str
    tier: str
    scopes: tuple[str, ...]
    name: str | None
    created_at: int
    last_used_at: int | None = None
    revoked_at: int | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def body(self) -> ApiKeyBody:
        """The key as lists and the API show it: never the secret, never its digest."""
        return ApiKeyBody(
            id=self.id,
            tenant=self.tenant,
            tier=self.tier,
            scopes=list(self.scopes),
            name=self.name,
            created_at=_iso(self.created_at),
            last_used_at=_iso(self.last_used_at),
            revoked_at=_iso(self.revoked_at),
        )

    def public(self) -> dict[str, Any]:
        """:meth:`body` as a JSON-ready dict (what ``butterflyfx keys list --json`` prints)."""
        return self.body().model_dump()


@dataclass(frozen=True)
class IssuedKey:
    """A key just created: the only moment its secret exists outside the client."""

    key: ApiKey
    secret: str
