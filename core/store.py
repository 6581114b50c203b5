"""The storage contract every backend implements, built-in or third-party.

A store keeps substrates per tenant, keyed by identity, and the invocation counts that
the Frequency dimension reports. Every method is async; a store is created by a
``butterflyfx_storage`` hook, opened once before serving and closed once after.
``butterflyfx.testing`` holds the conformance suite that proves a store keeps this
contract.

A store whose server goes away while it runs raises :class:`StoreUnavailable` in place
of its driver's connection errors (refused, lost mid-query, timed out), so every
interface answers "try again shortly" (HTTP: 503 with ``Retry-After``) rather than a
500, and the same store answers again once its server is back, without a restart.
:func:`unavailable_on` wraps every method of the contract with that translation.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

from butterflyfx.kernel import InvocationStats, JSONValue, Relationship, Substrate

Direction = Literal["outgoing", "incoming"]
StoreClass = TypeVar("StoreClass", bound=type)
RETRY_AFTER = 5  # seconds a client is asked to wait before retrying against a store that is away


class MissingEnd(LookupError):
    """``put_relationship`` found no substrate at one end: ``end`` is "source" or "target"."""

    def __init__(self, end: Literal["source", "target"], identity: int) -> None:
        super().__init__(f"no {end} substrate {identity:#018x}")
        self.end, self.identity = end, identity


class StoreUnavailable(Exception):
    """The store's server cannot be reached now (connection refused or lost, no pooled
    connection in time, a statement timed out); a retry in ``retry_after`` seconds may work.

    ``store`` names it (the storage plugin, ``"storage.postgres"``) and ``reason`` says what
    failed, for logs and readiness. Clients are told only the store and when to retry.
    """

    def __init__(self, store: str, reason: str, *, retry_after: int = RETRY_AFTER) -> None:
        super().__init__(f"{store} is unavailable: {reason}")
        self.store, self.reason, self.retry_after = store, reason, retry_after


@dataclass(frozen=True)
class SubstrateQuery:
    """What ``search_substrates`` filters on; every filter given must hold (AND).

    - ``expression_type``: equal.
    - ``metadata``: each key's value equal (as JSON: ``1`` is not ``true`` or ``1.0``)
      at the top level of the substrate's metadata.
    - ``name_prefix``: ``metadata["name"]`` is a string starting with it (case-sensitive).
    - ``code_contains``: ``expression_code`` contains it (case-sensitive, no wildcards).
    - ``created_after`` / ``created_before``: ``created_at`` >= / < the instant.
    - ``has_relationship_type``: the substrate is the source or the target of at least
      one relationship of this (normalised) type.
    """

    expression_type: str | None = None
    metadata: Mapping[str, JSONValue] = field(default_factory=dict)
    name_prefix: str | None = None
    code_contains: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    has_relationship_type: str | None = None


@runtime_checkable
class SubstrateStore(Protocol):
    """Where substrates live. Identities are 64-bit unsigned integers.

    A store whose data other server instances write too (a database server, Redis) says so
    with a class attribute ``shared_between_instances = True``: an engine that keeps a copy
    in its process (``graph.memory``) then warns that it sees only this instance's writes.
    """

    name: str

    async def open(self) -> None:
        """Connect, create the schema or migrate it; safe when several processes open at once."""

    async def close(self) -> None:
        """Release connections; after it returns every acknowledged write is durable."""

    async def put_substrate(self, tenant: str, substrate: Substrate) -> tuple[Substrate, bool]:
        """Store ``substrate`` unless the tenant already has its identity.

        Returns the stored substrate and True when it was created, or the one already
        stored (unchanged) and False. Once this returns, the write survives a crash.
        """
        ...

    async def put_substrates(
        self, tenant: str, substrates: Sequence[Substrate]
    ) -> list[tuple[Substrate, bool]]:
        """``put_substrate`` for each, in order, in one transaction: one answer per item.

        An identity that appears twice is created by its first occurrence; the second
        gets (the first, False). When the call raises, none of them is stored.
        """
        ...

    async def get_substrate(self, tenant: str, identity: int) -> Substrate | None:
        """The tenant's substrate with this identity, or None."""
        ...

    async def get_substrates(self, tenant: str, identities: Sequence[int]) -> dict[int, Substrate]:
        """The tenant's substrates among ``identities``, by identity; absent ones left out
        (a number no identity can have is simply absent)."""
        ...

    async def list_substrates(
        self, tenant: str, *, limit: int, after: int | None = None
    ) -> list[Substrate]:
        """Up to ``limit`` substrates in ascending identity order, after ``after`` if given."""
        ...

    async def update_metadata(
        self, tenant: str, identity: int, metadata: Mapping[str, JSONValue], *, now: datetime
    ) -> Substrate | None:
        """Replace the metadata, bump ``version`` and set ``updated_at``; None if absent."""
        ...

    async def delete_substrate(self, tenant: str, identity: int) -> bool:
        """Delete the substrate and everything kept about it, its relationships (both
        directions) included, in one transaction: no reader ever sees a relationship
        whose end is gone. False if it was absent."""
        ...

    async def count_substrates(self, tenant: str) -> int:
        """How many substrates the tenant has."""
        ...

    async def add_invocations(self, tenant: str, counts: Mapping[int, InvocationStats]) -> None:
        """Add these counts to each substrate's totals (absent substrates are skipped)."""
        ...

    async def invocation_stats(self, tenant: str, identity: int) -> InvocationStats | None:
        """The substrate's invocation totals, or None when it was never invoked."""
        ...

    async def invocation_totals(self, tenant: str) -> InvocationStats:
        """The sum of every substrate's invocation totals (zeros when none)."""
        ...

    async def search_substrates(
        self, tenant: str, query: SubstrateQuery, *, limit: int, after: int | None = None
    ) -> list[Substrate]:
        """Up to ``limit`` substrates matching ``query``, ascending identity after ``after``."""
        ...

    # -- relationships ---------------------------------------------------------------------
    async def put_relationship(
        self, tenant: str, relationship: Relationship
    ) -> tuple[Relationship, bool]:
        """Store it unless the tenant has its identity already: (stored, True) or
        (existing unchanged, False). Raises :class:`MissingEnd` when the source or the
        target substrate is absent (source checked first), atomically with the insert:
        a concurrent delete of an end cannot leave the relationship dangling."""
        ...

    async def put_relationships(
        self, tenant: str, relationships: Sequence[Relationship]
    ) -> list[tuple[Relationship, bool]]:
        """``put_relationship`` for each, in order, in one transaction: one answer per
        item, a repeated identity answered (the first, False). Raises :class:`MissingEnd`
        for the first relationship, in order, with an absent end, and then stores none
        of them: a batch lands whole or not at all."""
        ...

    async def get_relationship(self, tenant: str, identity: int) -> Relationship | None:
        """The tenant's relationship with this identity, or None."""
        ...

    async def delete_relationship(self, tenant: str, identity: int) -> bool:
        """Delete it; False if it was absent."""
        ...

    async def list_relationships(
        self,
        tenant: str,
        substrate: int,
        direction: Direction,
        *,
        types: Sequence[str] | None = None,
        limit: int,
        after: int | None = None,
    ) -> list[Relationship]:
        """Up to ``limit`` relationships of ``substrate`` in ascending relationship
        identity, after ``after``. ``outgoing``: those whose source it is, plus the
        bidirectional ones whose target it is; ``incoming``: those whose target it is,
        plus the bidirectional ones whose source it is. A bidirectional self-loop is
        listed once per direction. ``types`` (normalised names) filters when given."""
        ...

    async def all_relationships(
        self, tenant: str, *, limit: int, after: int | None = None
    ) -> list[Relationship]:
        """Every relationship of the tenant, ``limit`` at a time in ascending identity
        after ``after`` (an in-process graph index loads itself with this)."""
        ...

    async def count_relationships(self, tenant: str) -> Mapping[str, int]:
        """How many relationships the tenant has, by type (types with none are absent)."""
        ...

    async def health(self) -> Mapping[str, Any]:
        """A cheap check that the store answers; raises when it does not."""
        ...


@runtime_checkable
class TenantListing(Protocol):
    """A store that can name its tenants: optional beside :class:`SubstrateStore`, whose
    methods all take a tenant already known. ``butterflyfx copy`` uses it to copy every
    tenant; for a store without it the tenants must be named."""

    async def tenants(self) -> list[str]:
        """Every tenant holding at least one substrate, once each, in ascending order
        (Python's ``sorted``); a tenant whose substrates were all deleted is left out."""
        ...


@runtime_checkable
class SqlDatabase(Protocol):
    """A store whose data is in a SQL database with the shared relational schema
    (``substrates`` and ``relationships`` tables as in ``storage.sqlite``'s migrations),
    which lets ``graph.sql`` run recursive queries next to the data.

    The columns graph engines read: ``tenant``; ``identity_key``, ``source_key`` and
    ``target_key`` hold ``identity - 2**63`` (a signed 64-bit integer that sorts like the
    identity); ``relationship_type`` the normalised name; ``bidirectional`` 0 or 1;
    ``weight`` a float or NULL; ``metadata`` JSON text; ``created_at`` ISO 8601 text in UTC.

    ``sql_dialect`` is ``"sqlite"`` or ``"postgresql"``. ``sql_fetch`` runs one read-only
    statement with ``?`` placeholders (a PostgreSQL store rewrites them to ``$n``) and
    returns the rows as tuples.
    """

    sql_dialect: str

    async def sql_fetch(self, sql: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """The rows of one read-only statement."""
        ...


# The methods of the contracts that reach the store's server (open and close report
# their own errors: an outage at start-up stops the start).
CONTRACT_METHODS = tuple(
    name
    for protocol in (SubstrateStore, TenantListing, SqlDatabase)
    for name, member in vars(protocol).items()
    if inspect.iscoroutinefunction(member) and name not in ("open", "close")
)


def unavailable_on(
    outage: Callable[[Any, Exception], StoreUnavailable | None],
) -> Callable[[StoreClass], StoreClass]:
    """Class decorator for a store: each of its contract methods (all but ``open`` and
    ``close``) raises the :class:`StoreUnavailable` that ``outage(store, error)`` makes of
    an error, or the error unchanged when ``outage`` returns None (a bug, bad data).

    ``outage`` knows the driver: ``storage.postgres`` turns asyncpg's lost connections and
    timeouts into StoreUnavailable; the core never imports a driver.
    """

    def decorate(cls: StoreClass) -> StoreClass:
        for name in CONTRACT_METHODS:
            method = getattr(cls, name, None)
            if inspect.iscoroutinefunction(method) and not hasattr(method, _TRANSLATED):
                setattr(cls, name, _translating(method, outage))
        return cls

    return decorate


_TRANSLATED = "__butterflyfx_outage__"  # marks a wrapped method: a subclass is not wrapped twice


def _translating(
    method: Callable[..., Any], outage: Callable[[Any, Exception], StoreUnavailable | None]
) -> Callable[..., Any]:
    @functools.wraps(method)
    async def translated(store: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await method(store, *args, **kwargs)
        except StoreUnavailable:
            raise
        except Exception as error:
            unavailable = outage(store, error)
            if unavailable is None:
                raise
            raise unavailable from error

    setattr(translated, _TRANSLATED, True)
    return translated
