"""Tenants: a store that offers the optional ``tenants()`` (:class:`TenantListing`) names
every tenant holding a substrate, once, sorted; ``butterflyfx copy`` relies on it to copy a
whole store. A store without the method skips these stories."""

from __future__ import annotations

from typing import Any

import pytest

from butterflyfx.core.store import SubstrateStore, TenantListing

from .support import _factory, make_relationship, make_substrate, on_store

# Sorted as Python sorts: upper case before lower, code point order beyond ASCII; ':' and
# '/' and spaces are ordinary characters of a tenant's name.
TENANTS = ["Zeta", "acme", "globex", "team ops", "team:ops/ü", "émile"]


def _listing(given: Any) -> None:
    if not isinstance(_factory(given).make(), TenantListing):
        pytest.skip("the store does not offer tenants() (optional: name tenants to copy)")


class TenantStories:
    """Part of :class:`~butterflyfx.testing.storage.StoreConformance`."""

    def test_every_tenant_holding_a_substrate_is_named_once_in_order(
        self, substrate_store_factory: Any
    ) -> None:
        _listing(substrate_store_factory)
        a, b = make_substrate(1), make_substrate(2)

        async def story(store: SubstrateStore) -> None:
            assert isinstance(store, TenantListing)
            assert await store.tenants() == []
            for tenant in reversed(TENANTS):
                await store.put_substrates(tenant, [a, b])
            await store.put_relationship("acme", make_relationship(a, b))
            await store.put_substrates("nobody", [])  # an empty batch makes no tenant
            assert await store.tenants() == TENANTS

        on_store(substrate_store_factory, story)

    def test_a_tenant_whose_substrates_are_all_deleted_is_no_longer_named(
        self, substrate_store_factory: Any
    ) -> None:
        _listing(substrate_store_factory)
        a, b = make_substrate(1), make_substrate(2)

        async def story(store: SubstrateStore) -> None:
            assert isinstance(store, TenantListing)
            await store.put_substrates("acme", [a, b])
            await store.put_substrates("globex", [a])
            await store.put_relationship("globex", make_relationship(a, a, "recursion"))
            assert await store.delete_substrate("globex", a.identity) is True
            assert await store.tenants() == ["acme"]
            await store.delete_substrate("acme", a.identity)
            assert await store.tenants() == ["acme"]
            await store.delete_substrate("acme", b.identity)
            assert await store.tenants() == []

        on_store(substrate_store_factory, story)
