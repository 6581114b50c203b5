"""``storage.example``: a ButterflyFX Server store in one append-only journal file.

Each acknowledged write is one JSON line, appended and ``fsync``ed; the store keeps every
tenant's substrates and relationships in memory, indexed, rebuilt from the journal when it
opens, and rewrites the journal as its live data when it closes. Several processes (the
server's workers) share one journal: a lock file orders their writes and each reads the
others' lines before it answers. Config section ``[storage.example]``::

    path = "example-store.jsonl"   # relative: inside the server's data_dir
    fsync = true                   # false: survives a server crash, not a power loss
    compact_at_close = true

This module holds the hook implementations; the store is :mod:`.store`, the file
:mod:`.journal`, the lines :mod:`.records`, the in-memory index :mod:`.tenants`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from butterflyfx.core.hookspecs import hookimpl

from .journal import JournalError
from .settings import SECTION, ExampleSettings, journal_path, settings_of
from .store import JournalStore

if TYPE_CHECKING:
    from butterflyfx.core.context import ServerContext

__all__ = ["SECTION", "ExampleSettings", "JournalError", "JournalStore"]


@hookimpl
def butterflyfx_config_model() -> tuple[str, type[ExampleSettings]]:
    return SECTION, ExampleSettings


@hookimpl
def butterflyfx_storage(ctx: ServerContext) -> JournalStore:
    # Not trylast, unlike the built-in stores: a server that loads this plugin wants it.
    settings = settings_of(ctx)
    return JournalStore(
        journal_path(ctx), fsync=settings.fsync, compact_at_close=settings.compact_at_close
    )
