"""Passwords as argon2id hashes: made and checked off the event loop, never kept in clear.

A login for a user who does not exist still checks a hash (of a password nobody knows),
so how long the answer takes does not say whether the name exists.
"""

from __future__ import annotations

import asyncio
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from butterflyfx.interface.machine.access import MAX_PASSWORD_CHARACTERS

MIN_PASSWORD_CHARACTERS = 8
_hasher = PasswordHasher()  # argon2id, with the library's current recommended costs
_nobody: str | None = None


class PasswordRefused(ValueError):
    """A new password that may not be used; the message says why."""


def check_new_password(password: str) -> None:
    if not password:
        raise PasswordRefused("the password is empty")
    if len(password) < MIN_PASSWORD_CHARACTERS:
        raise PasswordRefused(f"the password is shorter than {MIN_PASSWORD_CHARACTERS} characters")
    if len(password) > MAX_PASSWORD_CHARACTERS:
        raise PasswordRefused(f"the password is longer than {MAX_PASSWORD_CHARACTERS} characters")


async def hash_password(password: str) -> str:
    """The argon2id hash (``$argon2id$...``) of a password that passed the checks."""
    check_new_password(password)
    return await asyncio.to_thread(_hasher.hash, password)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def prepare() -> None:
    """Hash the stand-in password now, so the first unknown name is not the slow one."""
    global _nobody
    if _nobody is None:
        _nobody = await asyncio.to_thread(_hasher.hash, secrets.token_urlsafe(32))


async def verify_password(password_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; with no hash (no such user), False after as long."""
    if password_hash is None:
        await prepare()
        assert _nobody is not None
        await asyncio.to_thread(_verify, _nobody, password)
        return False
    return await asyncio.to_thread(_verify, password_hash, password)


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with weaker costs than the library now recommends."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return False
