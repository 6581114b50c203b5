"""The HS256 signing secret: from the config (or its environment variable), else one
generated once, never a built-in default. Generated, it is kept where the users are: in a
file only the server's user can read (one machine: its workers share it), or, with
``[auth.jwt] database``, in that database, so every instance signs and verifies with the
one secret and a token from any instance is good at every other."""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from .settings import MIN_SECRET_CHARACTERS, JwtSettings

if TYPE_CHECKING:
    from .postgres_users import PostgresUserStore

log = structlog.get_logger("butterflyfx.auth.jwt")
GENERATED_BYTES = 48  # 384 random bits, written as 64 URL-safe characters


class SecretFileError(Exception):
    """The generated secret cannot be read or made; the message names where it is kept
    and says why."""


async def shared_signing_secret(settings: JwtSettings, users: PostgresUserStore) -> bytes:
    """The configured secret, else the one every instance on the users database shares
    (generated and stored there by the first instance that asked)."""
    if settings.secret is not None:
        return settings.secret.get_secret_value().encode()
    text, made = await users.shared_secret(secrets.token_urlsafe(GENERATED_BYTES))
    if made:
        log.info("jwt_secret_generated", database=users.where)
    if len(text) < MIN_SECRET_CHARACTERS:
        raise SecretFileError(
            f"the JWT signing secret stored in {users.where} (table jwt_signing_secret) holds "
            f"fewer than {MIN_SECRET_CHARACTERS} characters; delete its row to have a new one "
            "generated, or set [auth.jwt] secret"
        )
    return text.encode()


def signing_secret(settings: JwtSettings, path: Path) -> bytes:
    """The configured secret, else the one in ``path`` (made on first use)."""
    if settings.secret is not None:
        return settings.secret.get_secret_value().encode()
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if _publish(path, secrets.token_urlsafe(GENERATED_BYTES)):
            log.info("jwt_secret_generated", path=str(path))
        return _read(path)
    except OSError as error:
        raise SecretFileError(f"cannot create the JWT secret file {path}: {error}") from None


def _publish(path: Path, text: str) -> bool:
    """Make ``path`` hold ``text`` unless it exists; True when this call made it.

    Written in full under a private name, then linked into place: ``link`` fails when
    another worker got there first, and no reader ever sees a half-written secret.
    """
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as file:
            file.write(text + "\n")
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(draft, path)
        except FileExistsError:
            return False  # another worker's secret won; it is the one everybody uses
        except OSError:
            return _create_exclusively(path, text)  # a file system without hard links
        return True
    finally:
        draft.unlink(missing_ok=True)


def _create_exclusively(path: Path, text: str) -> bool:
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(descriptor, "w", encoding="ascii") as file:
        file.write(text + "\n")
        file.flush()
        os.fsync(file.fileno())
    return True


def _read(path: Path) -> bytes:
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError) as error:
        raise SecretFileError(f"cannot read the JWT secret file {path}: {error}") from None
    if len(text) < MIN_SECRET_CHARACTERS:
        raise SecretFileError(
            f"the JWT secret file {path} holds fewer than {MIN_SECRET_CHARACTERS} characters; "
            "delete it to have a new secret generated, or write a longer one"
        )
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning(
            "jwt_secret_file_readable_by_others", path=str(path),
            detail="other users may read the signing secret; chmod 600 it",
        )  # fmt: skip
    return text.encode()
