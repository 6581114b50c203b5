"""HS256 tokens with joserfc: issued at login, verified on every request.

Verification pins the algorithm (the token's ``alg`` header is never trusted to choose
it) and checks every claim: ``exp``, ``iat`` (not in the future beyond a little clock
skew), ``iss``, ``aud``, ``sub``, ``jti``, ``tenant``, ``tier`` and ``scopes``. Every
refusal is a 401 whose detail says what was wrong.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ClaimError,
    ExpiredTokenError,
    JoseError,
    UnsupportedAlgorithmError,
)
from joserfc.jwk import OctKey

from butterflyfx.core.auth import ACTIONS, TIERS, unauthenticated
from butterflyfx.core.problems import ProblemError

from .users import User

ALGORITHM = "HS256"
LEEWAY_SECONDS = 30  # clocks of the machines in a deployment may differ this much
# Three base64url parts; the last may be empty, as in an unsigned ``alg: none`` token.
MAX_HEADER_CHARS = 4096  # a JOSE header is a few dozen characters
JWT_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


def looks_like_jwt(token: str) -> bool:
    """Three base64url parts whose first is a JSON object naming an ``alg``: a JWT, which
    this plugin answers for (refusing it if need be). Any other dotted token belongs to
    some other plugin, which must get the chance to recognise it."""
    if JWT_SHAPE.fullmatch(token) is None:
        return False
    head = token.split(".", 1)[0]
    if len(head) > MAX_HEADER_CHARS:
        return True  # ours to refuse as malformed, not to decode at length
    try:
        header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (ValueError, TypeError, RecursionError):
        return False
    return isinstance(header, dict) and "alg" in header


@dataclass(frozen=True)
class Claims:
    """What a verified token says."""

    subject: str
    tenant: str
    tier: str
    scopes: frozenset[str]
    issued_at: int
    expires_at: int
    token_id: str


def _refused(detail: str, reason: str) -> ProblemError:
    return unauthenticated(detail, reason=reason)


class TokenAuthority:
    """Issues and verifies this server's tokens with one secret."""

    def __init__(self, secret: bytes, issuer: str, audience: str, lifetime: int) -> None:
        self._key = OctKey.import_key(secret)
        self.issuer, self.audience, self.lifetime = issuer, audience, lifetime

    def issue(self, user: User, now: int | None = None) -> str:
        issued = int(time.time()) if now is None else now
        claims = {
            "iss": self.issuer, "aud": self.audience, "sub": user.name,
            "tenant": user.tenant, "tier": user.tier, "scopes": list(user.scopes),
            "iat": issued, "exp": issued + self.lifetime, "jti": secrets.token_urlsafe(16),
        }  # fmt: skip
        return jwt.encode({"alg": ALGORITHM}, claims, self._key, algorithms=[ALGORITHM])

    def verify(self, token: str) -> Claims:
        """The token's claims; a 401 problem saying why when it is refused."""
        _check_algorithm(token)
        try:
            decoded = jwt.decode(token, self._key, algorithms=[ALGORITHM])
        except UnsupportedAlgorithmError:
            raise _refused(f"only {ALGORITHM} tokens are accepted", "algorithm") from None
        except BadSignatureError:
            raise _refused(
                "bad signature: the token was not signed by this server, or was changed",
                "signature",
            ) from None
        except (JoseError, ValueError, TypeError, RecursionError):
            raise _refused("the token is malformed", "malformed") from None
        return self._checked(decoded.claims)

    def _checked(self, claims: dict[str, Any]) -> Claims:
        registry = jwt.JWTClaimsRegistry(
            leeway=LEEWAY_SECONDS,
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self.audience},
            sub={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
            jti={"essential": True},
            tenant={"essential": True},
            tier={"essential": True, "values": list(TIERS)},
        )
        try:
            registry.validate(claims)
        except ExpiredTokenError:
            raise _refused(
                f"the token expired{_at(claims['exp'])}; log in again", "expired"
            ) from None
        except ClaimError as error:
            raise _claim_refused(error.claim, self) from None
        scopes, tenant, tier = claims.get("scopes"), claims["tenant"], claims["tier"]
        if not isinstance(tenant, str):
            raise _claim_refused("tenant", self)
        if not isinstance(tier, str):
            raise _claim_refused("tier", self)
        if not (isinstance(scopes, list) and all(isinstance(s, str) for s in scopes)):
            raise _claim_refused("scopes", self)
        if not set(scopes) <= set(ACTIONS):
            raise _claim_refused("scopes", self)
        if claims["exp"] <= claims["iat"]:
            raise _claim_refused("exp", self)
        return Claims(
            claims["sub"], tenant, tier, frozenset(scopes),
            int(claims["iat"]), int(claims["exp"]), claims["jti"],
        )  # fmt: skip


def _at(moment: float) -> str:
    try:
        return datetime.fromtimestamp(moment, UTC).strftime(" at %Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return ""


def _check_algorithm(token: str) -> None:
    """Refuse any ``alg`` but HS256 before touching the signature, and say which it was."""
    try:
        padded = token.split(".", 1)[0] + "=" * (-len(token.split(".", 1)[0]) % 4)
        header = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, TypeError, RecursionError):
        raise _refused("the token is malformed: its header is not JSON", "malformed") from None
    if not isinstance(header, dict):
        raise _refused("the token is malformed: its header is not an object", "malformed")
    algorithm = header.get("alg")
    if algorithm != ALGORITHM:
        shown = json.dumps(algorithm)[:32]
        raise _refused(
            f"the token's algorithm is {shown}; only {ALGORITHM} tokens are accepted",
            "algorithm",
        )


_CLAIM_DETAILS = {
    "aud": ("the token is for another audience", "audience"),
    "iss": ("the token was issued by another issuer", "issuer"),
    "iat": ("the token claims to be issued in the future", "issued-at"),
    "nbf": ("the token is not valid yet", "not-before"),
}


def _claim_refused(claim: str, authority: TokenAuthority) -> ProblemError:
    detail, reason = _CLAIM_DETAILS.get(
        claim, (f"the token's {claim!r} claim is missing or invalid", "claims")
    )
    if claim == "aud":
        detail += f" (this server is {authority.audience!r})"
    if claim == "iss":
        detail += f" (this server's tokens come from {authority.issuer!r})"
    return _refused(detail, reason)
