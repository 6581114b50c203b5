"""Where users are kept: what both user stores offer, and the one the settings choose.

:class:`~.users.UserStore` is a SQLite file, shared by the workers and the ``users``
command of one machine; :class:`~.postgres_users.PostgresUserStore` is a PostgreSQL table,
shared by every instance that names the same database and schema.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

from .postgres_users import PostgresUserStore
from .settings import settings_of, users_path
from .users import User, UserStore

if TYPE_CHECKING:
    from butterflyfx.core.context import ServerContext


class UserStorage(Protocol):
    """The users who may log in, with argon2id hashes of their passwords, never the
    passwords. ``get`` reads the store on every call (no cache), so a user removed or
    disabled anywhere is refused on its next request everywhere."""

    kind: str  # "sqlite" or "postgresql", as health reports it

    @property
    def where(self) -> str:
        """Where the users are, for messages (never a password)."""
        ...

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def add(
        self, name: str, tenant: str, tier: str, scopes: Iterable[str], password_hash: str
    ) -> User: ...

    async def get(self, name: str) -> User | None: ...

    async def all(self) -> list[User]: ...

    async def count(self) -> int: ...

    async def remove(self, name: str) -> bool: ...

    async def set_disabled(self, name: str, disabled: bool) -> bool: ...

    async def replace_hash(self, name: str, old_hash: str, new_hash: str) -> None: ...


def user_store(ctx: ServerContext) -> UserStorage:
    """The store ``[auth.jwt]`` names (not yet open): PostgreSQL when ``database`` is set,
    else the SQLite file."""
    settings = settings_of(ctx)
    if settings.database is not None:
        return PostgresUserStore(
            settings.database, schema=settings.schema_name, max_pool=settings.max_pool
        )
    return UserStore(users_path(ctx))
