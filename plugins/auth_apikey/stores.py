"""Where API keys are kept: what both key stores offer, and the one the settings choose.

:class:`~.keystore.KeyStore` is a SQLite file, shared by the workers and the ``keys``
command of one machine; :class:`~.postgres_keystore.PostgresKeyStore` is a PostgreSQL
table, shared by every instance that names the same database and schema.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from .keys import ApiKey, IssuedKey
from .keystore import KeyStore
from .postgres_keystore import PostgresKeyStore
from .settings import keys_path, settings_of

if TYPE_CHECKING:
    from butterflyfx.core.context import ServerContext


class KeyStorage(Protocol):
    """Create, find, list and revoke API keys, keeping only digests of their secrets.

    ``find`` reads the store itself on every call (no cache), so a key revoked anywhere
    is refused on its next request everywhere.
    """

    kind: str  # "sqlite" or "postgresql", as health reports it

    @property
    def where(self) -> str:
        """Where the keys are, for messages and health (never a password)."""
        ...

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def create(
        self, tenant: str, tier: str, scopes: Sequence[str], name: str | None = None
    ) -> IssuedKey: ...

    async def create_first(
        self, tenant: str, tier: str, scopes: Sequence[str], name: str | None = None
    ) -> IssuedKey | None:
        """A new key only if there is no key at all; of several servers starting at once
        on an empty store, exactly one gets it."""
        ...

    async def find(self, secret: str) -> ApiKey | None: ...

    async def get(self, key_id: str, tenant: str | None = None) -> ApiKey | None: ...

    async def list(self, tenant: str | None = None) -> list[ApiKey]: ...

    async def revoke(self, key_id: str, tenant: str | None = None) -> ApiKey | None: ...

    async def record_use(self, used: Mapping[str, int]) -> None:
        """Move each key's ``last_used_at`` forward (never back) to the epoch second given."""
        ...

    async def count(self) -> tuple[int, int]:
        """(keys in force, keys revoked)."""
        ...


def key_store(ctx: ServerContext) -> KeyStorage:
    """The store ``[auth.apikey]`` names (not yet open): PostgreSQL when ``database`` is
    set, else the SQLite file."""
    settings = settings_of(ctx)
    if settings.database is not None:
        return PostgresKeyStore(
            settings.database, schema=settings.schema_name, max_pool=settings.max_pool
        )
    return KeyStore(keys_path(ctx))
