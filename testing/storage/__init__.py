"""The storage conformance suite: does a store keep the :class:`SubstrateStore` contract?

A store plugin passes it by subclassing :class:`StoreConformance` in one of its test
files and providing one fixture, ``substrate_store_factory``, that returns a
:class:`StoreFactory`::

    # tests/test_conformance.py of the plugin "butterflyfx-storage-acme"
    import pytest

    from butterflyfx.testing.storage import StoreConformance, StoreFactory
    from butterflyfx_storage_acme import AcmeStore


    class TestAcmeStore(StoreConformance):
        @pytest.fixture
        def substrate_store_factory(self, tmp_path):
            # Every call makes a new, unopened store on the same data (here: one file).
            return StoreFactory(lambda: AcmeStore(tmp_path / "acme.db"), persistent=True)

pytest collects the inherited test methods as the subclass's own; ``StoreConformance``
itself is not collected because its name does not start with ``Test``. (Test functions
in a plugin module enabled by ``pytest_plugins`` are never collected, so the suite is a
class to subclass rather than a pytest plugin.) The fixture may also live in the
module or in a ``conftest.py``.

``persistent=True`` says that a store made later in the same test sees what an earlier
one wrote (a file or a server behind them). The suite then also checks that closing
keeps every write and that two stores open at once (two workers) agree. A store that
keeps nothing, like ``storage.memory``, says ``persistent=False`` and those stories skip.

The suite opens and closes every store itself, runs each story with ``asyncio.run`` (no
pytest asyncio plugin needed), and builds some substrates with chosen identities: a
store keeps the identity it is given and never recomputes it.

The stories cover substrates, invocation counts, relationships (the ends must exist;
deleting a substrate takes its relationships with it, in both directions; bidirectional
ones list both ways) and ``search_substrates`` (every filter alone and together,
metadata compared as JSON values), and the batch methods (``put_substrates``,
``put_relationships``, ``get_substrates``: item by item like the single ones, a batch
whole or not at all), and the optional ``tenants()`` (every tenant holding a substrate,
sorted; skipped for a store without it). Timestamps in the stories are whole seconds: a
store may drop fractions of a second (``storage.sqlite`` does), since the API serves none.
"""

from __future__ import annotations

from .batches import BatchStories
from .relationships import RelationshipStories
from .search import SearchStories
from .substrates import SubstrateStories
from .support import StoreFactory, make_relationship, make_substrate
from .tenants import TenantStories

__all__ = ["StoreConformance", "StoreFactory", "make_relationship", "make_substrate"]


class StoreConformance(
    SubstrateStories, RelationshipStories, SearchStories, BatchStories, TenantStories
):
    """Stories every :class:`SubstrateStore` must pass; subclass it as ``Test<YourStore>``."""
