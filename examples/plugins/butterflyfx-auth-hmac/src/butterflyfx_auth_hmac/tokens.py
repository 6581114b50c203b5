"""Signed service tokens: ``bfxh.<payload>.<signature>``.

``payload`` is base64url (unpadded) of the JSON claims ``{"tid", "tenant", "tier", "scopes",
"exp"}``; ``signature`` is base64url (unpadded) of HMAC-SHA256(secret, ``"bfxh." + payload``).
Nothing is stored: whoever holds the secret can mint a token, and the server checks one with
the secret alone. The order of the checks matters: the signature is compared in constant time
before the payload is even decoded, so nobody without the secret reaches the JSON parser.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from butterflyfx.core.auth import ACTIONS, TIERS, Principal, unauthenticated

from .settings import MIN_SECRET_CHARACTERS, SECTION, HmacSettings

PREFIX = "bfxh."
MAX_PAYLOAD_CHARACTERS = 2048  # a real payload is ~150; anything far longer is not ours
TOKEN = re.compile(
    rf"bfxh\.(?P<payload>[A-Za-z0-9_-]{{1,{MAX_PAYLOAD_CHARACTERS}}})\.(?P<signature>[A-Za-z0-9_-]{{43}})"
)
TENANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
TOKEN_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
FIELDS = frozenset({"tid", "tenant", "tier", "scopes", "exp"})


@dataclass(frozen=True)
class Claims:
    """What a token says: its id, the tenant, tier and scopes it acts with, and when it ends."""

    tid: str
    tenant: str
    tier: str
    scopes: tuple[str, ...]
    exp: int

    def principal(self) -> Principal:
        return Principal(self.tenant, self.tid, self.tier, frozenset(self.scopes), SECTION)

    def expires(self) -> str:
        try:
            return datetime.fromtimestamp(self.exp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        except (OverflowError, OSError, ValueError):  # a year no calendar here can write
            return f"epoch second {self.exp}"


def new_claims(
    tenant: str,
    tier: str,
    scopes: Iterable[str],
    lifetime_seconds: int,
    now: float | None = None,
) -> Claims:
    """Claims for a new token with a fresh random id; ValueError names a bad argument."""
    if not TENANT.fullmatch(tenant):
        raise ValueError(
            f"{tenant!r} is not a tenant: a letter or digit, then up to 63 letters, digits, "
            "'_', '.' or '-'"
        )
    if tier not in TIERS:
        raise ValueError(f"tier must be one of {', '.join(TIERS)}, not {tier!r}")
    wanted = {scope.strip() for scope in scopes if scope.strip()}
    unknown = sorted(wanted - set(ACTIONS))
    if unknown:
        raise ValueError(f"unknown scopes {', '.join(unknown)}; known: {', '.join(ACTIONS)}")
    if not wanted:
        raise ValueError(f"give at least one scope of {', '.join(ACTIONS)}")
    if isinstance(lifetime_seconds, bool) or not isinstance(lifetime_seconds, int):
        raise ValueError("lifetime_seconds must be a whole number of seconds")
    if lifetime_seconds < 1:
        raise ValueError(f"lifetime_seconds must be at least 1, not {lifetime_seconds}")
    ordered = tuple(action for action in ACTIONS if action in wanted)
    exp = int(time.time() if now is None else now) + lifetime_seconds
    return Claims(secrets.token_urlsafe(12), tenant, tier, ordered, exp)


def sign(secret: str, claims: Claims) -> str:
    """The token carrying ``claims``, signed with ``secret``."""
    if len(secret) < MIN_SECRET_CHARACTERS:
        raise ValueError(f"the secret must be at least {MIN_SECRET_CHARACTERS} characters")
    body = {
        "tid": claims.tid,
        "tenant": claims.tenant,
        "tier": claims.tier,
        "scopes": list(claims.scopes),
        "exp": claims.exp,
    }
    payload = _encode(json.dumps(body, separators=(",", ":"), sort_keys=True).encode())
    return f"{PREFIX}{payload}.{_signature(secret, payload)}"


def issue(secret: str, tenant: str, tier: str, scopes: Iterable[str], lifetime_seconds: int) -> str:
    """A new token for ``tenant`` with ``tier`` and ``scopes``, valid ``lifetime_seconds``."""
    return sign(secret, new_claims(tenant, tier, scopes, lifetime_seconds))


def verify(token: str, settings: HmacSettings, now: float | None = None) -> Principal | None:
    """The principal a token stands for; None when it is not one of ours (no ``bfxh.``
    prefix). Raises the 401 ``unauthenticated`` problem, saying why, for any other flaw."""
    if not token.startswith(PREFIX):
        return None
    shape = TOKEN.fullmatch(token)
    if shape is None:
        raise unauthenticated(
            "not a well-formed auth.hmac token: expected bfxh.<payload>.<signature>"
        )
    payload, given = shape["payload"], shape["signature"]
    expected = _signature(settings.secret.get_secret_value(), payload)
    if not hmac.compare_digest(expected.encode("ascii"), given.encode("ascii")):
        raise unauthenticated(
            "the auth.hmac token's signature does not match: it was altered or signed "
            "with another secret"
        )
    claims = _claims(payload)
    moment = time.time() if now is None else now
    if claims.exp <= moment:
        raise unauthenticated(f"the auth.hmac token expired at {claims.expires()}")
    if claims.exp > moment + settings.max_lifetime_seconds:
        raise unauthenticated(
            "the auth.hmac token is valid for longer than this server allows "
            f"(max_lifetime_seconds = {settings.max_lifetime_seconds})"
        )
    if claims.tid in settings.revoked:
        raise unauthenticated(f"the auth.hmac token {claims.tid} has been revoked")
    return claims.principal()


def _claims(payload: str) -> Claims:
    """The claims of a payload whose signature was good: checked field by field."""
    try:
        body: Any = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (binascii.Error, ValueError, RecursionError):
        raise _bad_payload("not base64url-encoded JSON") from None
    if not isinstance(body, dict) or set(body) != FIELDS:
        raise _bad_payload(f"expected exactly the fields {', '.join(sorted(FIELDS))}")
    tid, tenant, tier, scopes, exp = (
        body[name] for name in ("tid", "tenant", "tier", "scopes", "exp")
    )
    if not isinstance(tid, str) or not TOKEN_ID.fullmatch(tid):
        raise _bad_payload("tid is not a token id")
    if not isinstance(tenant, str) or not TENANT.fullmatch(tenant):
        raise _bad_payload("tenant is not a tenant name")
    if not isinstance(tier, str) or tier not in TIERS:
        raise _bad_payload(f"tier must be one of {', '.join(TIERS)}")
    if (
        not isinstance(scopes, list)
        or not scopes
        or not all(isinstance(scope, str) and scope in ACTIONS for scope in scopes)
    ):
        raise _bad_payload(f"scopes must be a non-empty list of {', '.join(ACTIONS)}")
    if type(exp) is not int:  # not a float, not a bool
        raise _bad_payload("exp is not a whole number of epoch seconds")
    return Claims(tid, tenant, tier, tuple(scopes), exp)


def _bad_payload(what: str) -> Exception:
    return unauthenticated(f"the auth.hmac token's payload is not valid: {what}")


def _signature(secret: str, payload: str) -> str:
    digest = hmac.new(secret.encode(), (PREFIX + payload).encode("ascii"), hashlib.sha256)
    return _encode(digest.digest())


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
