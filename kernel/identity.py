"""Content-addressed identities: 64-bit integers from BLAKE2b, written ``0x`` + 16 hex digits."""

from __future__ import annotations

import hashlib
import re

from .errors import InvalidSubstrateId

_SUBSTRATE = b"bfx-substrate.v1"
_RELATIONSHIP = b"bfx-relation.v1"
_ID_PATTERN = re.compile(r"(?:0[xX])?([0-9a-fA-F]{1,16})")
MAX_IDENTITY = 2**64 - 1


def identity_from_canonical(expression_type: str, canonical: str) -> int:
    """The identity of an expression already in canonical form."""
    digest = hashlib.blake2b(
        expression_type.encode() + b"\x00" + canonical.encode("utf-8", "surrogatepass"),
        digest_size=8,
        person=_SUBSTRATE,
    ).digest()
    return int.from_bytes(digest, "big")


def fingerprint_from_canonical(expression_type: str, canonical: str) -> str:
    """The full 256-bit BLAKE2b fingerprint (hex) of a canonical expression."""
    return hashlib.blake2b(
        expression_type.encode() + b"\x00" + canonical.encode("utf-8", "surrogatepass"),
        digest_size=32,
        person=_SUBSTRATE,
    ).hexdigest()


def relationship_identity(source: int, target: int, relationship_type: str) -> int:
    """The identity of the relationship ``source -[type]-> target``."""
    digest = hashlib.blake2b(
        source.to_bytes(8, "big") + target.to_bytes(8, "big") + relationship_type.encode(),
        digest_size=8,
        person=_RELATIONSHIP,
    ).digest()
    return int.from_bytes(digest, "big")


def format_id(identity: int) -> str:
    """``0x`` followed by 16 upper-case hex digits."""
    if (
        not isinstance(identity, int)
        or isinstance(identity, bool)
        or not 0 <= identity <= MAX_IDENTITY
    ):
        raise InvalidSubstrateId(f"an identity is an integer from 0 to 2**64-1, not {identity!r}")
    return f"0x{identity:016X}"


def parse_id(text: str) -> int:
    """Parse a substrate id in any case, with or without ``0x``."""
    if not isinstance(text, str):
        raise InvalidSubstrateId(
            f"a substrate id is a string like 0x1A2B3C4D5E6F7890, not {type(text).__name__}"
        )
    match = _ID_PATTERN.fullmatch(text)
    if match is None:
        raise InvalidSubstrateId(
            f"{text[:40]!r} is not a substrate id: expected 0x followed by up to 16 hex digits"
        )
    return int(match.group(1), 16)
