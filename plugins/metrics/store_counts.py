"""How many substrates and relationships the store holds, all tenants together, asked
when scraped (never cached, never estimated).

The store protocol counts per tenant only. Substrates come from the store's ``health()``
(both built-in stores report ``substrates`` there, over every tenant); relationships from
one ``COUNT(*)`` on stores that expose their SQL database (``SqlDatabase``: SQLite,
PostgreSQL). A store offering neither leaves that series out rather than guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

from butterflyfx.core.store import SqlDatabase

if TYPE_CHECKING:
    from butterflyfx.core.context import ServerContext

log = structlog.get_logger("butterflyfx.metrics")
COUNT_RELATIONSHIPS = "SELECT COUNT(*) FROM relationships"


@dataclass(frozen=True)
class StoreCounts:
    store: str  # the storage plugin's name: the series' only label
    substrates: int | None
    relationships: int | None


async def count_store(ctx: ServerContext) -> StoreCounts | None:
    """The counts now, or None when the store does not answer (logged; the scrape goes on)."""
    store = ctx.store
    try:
        substrates = (await store.health()).get("substrates")
        relationships = None
        if isinstance(store, SqlDatabase):
            rows = await store.sql_fetch(COUNT_RELATIONSHIPS)
            relationships = int(rows[0][0])
    except Exception as error:
        log.warning("metrics_store_unavailable", error=f"{type(error).__name__}: {error}")
        return None
    if not isinstance(substrates, int) or isinstance(substrates, bool):
        substrates = None
    return StoreCounts(ctx.storage_plugin or "unknown", substrates, relationships)
