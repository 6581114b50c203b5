"""Naming the tenants a Redis store holds (the optional ``TenantListing`` of the contract).

There is no set of tenants to read: each tenant with a substrate has a ``substrates`` index
under ``{prefix}:{tenant}``, so the tenants are found by SCAN over those keys, O(keys in
the database) and in pages, never blocking the server. ``butterflyfx copy`` is its user.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

from .connection import RedisConnection

_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")


class TenantMethods(RedisConnection):
    """Part of :class:`~butterflyfx.plugins.storage_redis.RedisStore`."""

    async def tenants(self) -> list[str]:
        """Every tenant with a substrate, sorted."""
        head, tail = f"{self.prefix}:", ":substrates"
        pattern = _GLOB_SPECIAL.sub(r"\\\1", head) + "*" + tail
        found: set[str] = set()
        async for key in self._redis().scan_iter(match=pattern, count=1000):
            name = key.decode() if isinstance(key, bytes) else str(key)
            encoded = name[len(head) : -len(tail)]
            if ":" not in encoded:  # a tenant is percent-encoded: no ':' (codec.tenant_base)
                found.add(unquote_to_bytes(encoded).decode("utf-8", "surrogatepass"))
        return sorted(found)
