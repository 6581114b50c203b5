"""The running side of the plugin: keys checked per request, last use written in batches."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING

import structlog

from butterflyfx.core.auth import Principal, unauthenticated
from butterflyfx.core.store import StoreUnavailable

from .keys import ADMIN_SCOPES, PREFIX, IssuedKey

if TYPE_CHECKING:
    from .stores import KeyStorage

log = structlog.get_logger("butterflyfx.auth.apikey")

PLUGIN = "auth.apikey"
FLUSH_SECONDS = 5.0  # last_used_at is good to the second, written at most this often
BOOTSTRAP_TENANT = "default"


class ApiKeyService:
    """One server's keys: the store, read on every request (so a revocation counts at
    once, through whichever worker or instance it was made), and the last-use times
    waiting to be written: at most ``flush_seconds`` of them, lost only to a SIGKILL."""

    def __init__(self, store: KeyStorage, flush_seconds: float = FLUSH_SECONDS) -> None:
        self.store = store
        self.flush_seconds = flush_seconds
        self._used: dict[str, int] = {}
        self._flusher: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.store.open()
        self._flusher = asyncio.create_task(self._flush_periodically())

    async def stop(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None
        try:
            await self.flush()
        except StoreUnavailable as error:  # last-use times are worth no failed stop
            log.warning("api_key_last_used_lost", keys=len(self._used), error=str(error))
        finally:
            await self.store.close()

    async def bootstrap(self, tier: str) -> IssuedKey | None:
        """The first admin key for tenant ``default``, if there is no key at all."""
        return await self.store.create_first(
            BOOTSTRAP_TENANT, tier, ADMIN_SCOPES, name="bootstrap admin key"
        )

    async def authenticate(self, token: str | None) -> Principal | None:
        """The principal of an ``sk-butterflyfx-`` key; None for any other credential."""
        if token is None or not token.startswith(PREFIX):
            return None
        key = await self.store.find(token)
        if key is None:
            raise unauthenticated("this API key is not known: it was never issued here")
        if key.revoked:
            raise unauthenticated(f"this API key ({key.id}) was revoked")
        self._used[key.id] = int(time.time())
        return Principal(key.tenant, key.id, key.tier, frozenset(key.scopes), PLUGIN)

    async def flush(self) -> None:
        """Write the buffered last-use times (one transaction for all of them)."""
        used, self._used = self._used, {}
        try:
            await self.store.record_use(used)
        except BaseException:
            for key_id, moment in used.items():  # keep them for the next try
                self._used[key_id] = max(moment, self._used.get(key_id, 0))
            raise

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.flush_seconds)
            try:
                await self.flush()
            except StoreUnavailable as error:  # kept for the next try; one line, no traceback
                log.warning("api_key_last_used_flush_failed", error=str(error))
            except Exception:
                log.exception("api_key_last_used_flush_failed")
