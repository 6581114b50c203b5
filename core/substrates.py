"""The substrate service: what the API does with substrates, on any store."""

from __future__ import annotations

import base64
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from butterflyfx.kernel import (
    DEFAULT_LIMITS,
    CompiledExpression,
    Division,
    EvaluationError,
    EvaluationLimitExceeded,
    ExpressionLanguage,
    InvalidSubstrateId,
    InvocationStats,
    JSONValue,
    KernelError,
    Limits,
    Relationship,
    Substrate,
    SubstrateFacts,
    compile_expression,
    divide,
    format_id,
    multiply,
    parse_id,
)

from . import events
from .matching import same_json
from .problems import Problem, ProblemError, invalid, not_found, problem_for
from .store import Direction, StoreUnavailable, SubstrateStore

EmitEvent = Callable[[events.Event], Awaitable[None]]
MAX_PAGE = 1000
MAX_BATCH = 500  # items in one batch create: one store transaction, one request's worth
# Relationships read per direction for the Area dimension: a hub's counts stop here.
AREA_RELATIONSHIPS = 10_000


@dataclass(frozen=True)
class Page:
    items: list[Substrate]
    next_cursor: str | None


Stored = TypeVar("Stored")


@dataclass(frozen=True)
class BatchOutcome(Generic[Stored]):
    """What became of one item of a batch create: the stored object and whether this
    call created it, or the problem that refused this item (and no other)."""

    stored: Stored | None = None
    created: bool = False
    problem: Problem | None = None


# One outcome per item, in order (a module-level name: ``list`` is a method of the services).
SubstrateOutcomes = list[BatchOutcome[Substrate]]


@dataclass(frozen=True)
class NewSubstrate:
    """One item of :meth:`SubstrateService.create_many`: what ``create`` takes."""

    expression_type: str
    expression_code: str
    metadata: Mapping[str, JSONValue] | None = None


def refusal(error: Exception, field_name: str | None = None) -> Problem:
    """The problem of an item refused on its own (bad input); re-raises anything else
    (a store outage, a bug), which fails the whole call as it would a single create."""
    problem = problem_for(error, field_name)
    if problem is None or isinstance(error, StoreUnavailable):
        raise error
    return problem


@dataclass(frozen=True)
class Invocation:
    substrate_id: str
    result: JSONValue
    invocation_time_ms: float


def encode_cursor(identity: int) -> str:
    return base64.urlsafe_b64encode(f"v1:{identity:016x}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        version, hex_id = text.split(":", 1)
        if version != "v1" or len(hex_id) != 16:
            raise ValueError
        return int(hex_id, 16)
    except (ValueError, UnicodeDecodeError):
        raise invalid("cursor", "cursor is not one this server gave out", status=400) from None


def parse_substrate_id(substrate_id: str, field_name: str = "substrate_id") -> int:
    """The identity an id names; a malformed id is a 400 naming the field it came in."""
    try:
        return parse_id(substrate_id)
    except InvalidSubstrateId as error:
        problem = problem_for(error, field_name)
        assert problem is not None
        raise ProblemError(problem) from None


def failure_data(
    error: EvaluationError | EvaluationLimitExceeded, elapsed_ms: float
) -> dict[str, Any]:
    """What a ``substrate.invocation_failed`` event tells: the kind of failure, never the
    parameters or the message (which may quote them)."""
    if isinstance(error, EvaluationLimitExceeded):
        return {"error_type": type(error).__name__, "limit": error.limit,
                "invocation_time_ms": elapsed_ms}  # fmt: skip
    return {"error_type": error.error_type, "invocation_time_ms": elapsed_ms}


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def merge_patch(target: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """RFC 7396 JSON merge patch: null removes a key, objects merge, the rest replaces."""
    result = dict(target)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = merge_patch(result[key], value)
        else:
            result[key] = value
    return result


class CompiledCache:
    """A bounded LRU of compiled expressions keyed by identity (same identity, same code)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, int], CompiledExpression] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, expression_type: str, identity: int) -> CompiledExpression | None:
        key = (expression_type, identity)
        compiled = self._items.get(key)
        if compiled is None:
            self.misses += 1
            return None
        self.hits += 1
        self._items.move_to_end(key)
        return compiled

    def put(self, compiled: CompiledExpression) -> None:
        self._items[(compiled.expression_type, compiled.identity)] = compiled
        self._items.move_to_end((compiled.expression_type, compiled.identity))
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


class SubstrateService:
    """Create, read, update, delete, divide, multiply and invoke substrates of a tenant."""

    def __init__(
        self,
        store: SubstrateStore,
        emit: EmitEvent,
        *,
        limits: Limits = DEFAULT_LIMITS,
        languages: Mapping[str, ExpressionLanguage] | None = None,
        cache_size: int = 4096,
    ) -> None:
        self.store = store
        self.emit = emit
        self.limits = limits
        self.languages = languages
        self.cache = CompiledCache(cache_size)
        self._pending: dict[tuple[str, int], InvocationStats] = {}

    # -- compiling -------------------------------------------------------------------
    def compiled(self, substrate: Substrate) -> CompiledExpression:
        found = self.cache.get(substrate.expression_type, substrate.identity)
        if found is None:
            found = compile_expression(
                substrate.expression_type, substrate.expression_code, self.limits, self.languages
            )
            self.cache.put(found)
        return found

    # -- reading ---------------------------------------------------------------------
    async def get(
        self, tenant: str, substrate_id: str, field_name: str = "substrate_id"
    ) -> Substrate:
        identity = parse_substrate_id(substrate_id, field_name)
        found = await self.store.get_substrate(tenant, identity)
        if found is None:
            raise not_found("substrate", format_id(identity), field_name)
        return found

    async def list(self, tenant: str, *, limit: int = 100, cursor: str | None = None) -> Page:
        if not 1 <= limit <= MAX_PAGE:
            raise invalid("limit", f"limit must be from 1 to {MAX_PAGE}", status=400)
        after = decode_cursor(cursor) if cursor else None
        items = await self.store.list_substrates(tenant, limit=limit + 1, after=after)
        more = len(items) > limit
        items = items[:limit]
        return Page(items, encode_cursor(items[-1].identity) if more and items else None)

    # -- writing ---------------------------------------------------------------------
    async def create(
        self,
        tenant: str,
        expression_type: str,
        expression_code: str,
        metadata: Mapping[str, JSONValue] | None = None,
    ) -> tuple[Substrate, bool]:
        """Check and store an expression; an existing one is returned unchanged."""
        compiled = compile_expression(expression_type, expression_code, self.limits, self.languages)
        self.cache.put(compiled)
        stamp = now()
        substrate = Substrate(
            expression_type, expression_code, compiled.identity, dict(metadata or {}), stamp, stamp
        )
        return await self._store(tenant, substrate)

    async def create_many(self, tenant: str, items: Sequence[NewSubstrate]) -> SubstrateOutcomes:
        """Check each item as :meth:`create` does and store those that pass in one
        ``put_substrates`` call (one transaction); one outcome per item, in order. An
        item the kernel refuses fails alone; an item repeated answers the first one
        (not created). Each substrate created emits ``substrate.created``, in order."""
        if len(items) > MAX_BATCH:
            raise invalid("substrates", f"a batch holds at most {MAX_BATCH} items")
        outcomes: SubstrateOutcomes = [BatchOutcome() for _ in items]
        ready: list[tuple[int, Substrate]] = []
        stamp = now()
        for index, item in enumerate(items):
            try:
                compiled = compile_expression(
                    item.expression_type, item.expression_code, self.limits, self.languages
                )
            except (KernelError, ProblemError) as error:
                outcomes[index] = BatchOutcome(problem=refusal(error))
                continue
            self.cache.put(compiled)
            ready.append((index, Substrate(
                item.expression_type, item.expression_code, compiled.identity,
                dict(item.metadata or {}), stamp, stamp,
            )))  # fmt: skip
        if ready:
            stored = await self.store.put_substrates(tenant, [s for _, s in ready])
            for (index, _), (substrate, created) in zip(ready, stored, strict=True):
                outcomes[index] = BatchOutcome(substrate, created)
                if created:
                    await self._created(tenant, substrate)
        return outcomes

    async def _store(self, tenant: str, substrate: Substrate) -> tuple[Substrate, bool]:
        stored, created = await self.store.put_substrate(tenant, substrate)
        if created:
            await self._created(tenant, stored)
        return stored, created

    async def _created(self, tenant: str, stored: Substrate) -> None:
        await self.emit(
            events.Event(
                events.SUBSTRATE_CREATED, tenant, stored.substrate_id,
                {"expression_type": stored.expression_type},
            )
        )  # fmt: skip

    async def update_metadata(
        self, tenant: str, substrate_id: str, patch: Mapping[str, Any]
    ) -> Substrate:
        current = await self.get(tenant, substrate_id)
        merged = merge_patch(current.metadata, patch)
        if same_json(merged, current.metadata):
            return current  # nothing changes: no new version, no event
        updated = await self.store.update_metadata(tenant, current.identity, merged, now=now())
        if updated is None:  # deleted between the two calls
            raise not_found("substrate", current.substrate_id, "substrate_id")
        await self.emit(
            events.Event(events.SUBSTRATE_UPDATED, tenant, updated.substrate_id,
                         {"version": updated.version})
        )  # fmt: skip
        return updated

    async def delete(self, tenant: str, substrate_id: str) -> None:
        identity = parse_substrate_id(substrate_id)
        if not await self.store.delete_substrate(tenant, identity):
            raise not_found("substrate", format_id(identity), "substrate_id")
        self._pending.pop((tenant, identity), None)
        await self.emit(events.Event(events.SUBSTRATE_DELETED, tenant, format_id(identity)))

    # -- the dimensional operations ----------------------------------------------------
    async def divide(self, tenant: str, substrate_id: str) -> Division:
        substrate = await self.get(tenant, substrate_id)
        stats = await self.invocation_stats(tenant, substrate.identity)
        facts = SubstrateFacts(
            relationships=await self.relationships_of(tenant, substrate.identity),
            invocations=stats or InvocationStats(),
        )
        return divide(
            substrate, facts, compiled=self.compiled(substrate),
            limits=self.limits, languages=self.languages,
        )  # fmt: skip

    async def relationships_of(self, tenant: str, identity: int) -> Sequence[Relationship]:
        """The substrate's relationships, outgoing then incoming, each once (a bidirectional
        one is listed in both directions), at most ``AREA_RELATIONSHIPS`` each way."""
        found: dict[int, Relationship] = {}
        directions: tuple[Direction, ...] = ("outgoing", "incoming")
        for direction in directions:
            listed = await self.store.list_relationships(
                tenant, identity, direction, limit=AREA_RELATIONSHIPS
            )
            for relationship in listed:
                found.setdefault(relationship.identity, relationship)
        return list(found.values())

    async def multiply_dimensions(
        self, tenant: str, dimensions: Sequence[Mapping[str, Any]]
    ) -> tuple[Substrate, bool]:
        """Rebuild the substrate the dimensions came from; store it if the tenant lacks it."""
        rebuilt = multiply(dimensions, limits=self.limits, languages=self.languages)
        existing = await self.store.get_substrate(tenant, rebuilt.identity)
        if existing is not None:
            return existing, False
        stamp = now()
        return await self._store(tenant, replace(rebuilt, created_at=stamp, updated_at=stamp))

    async def multiply_substrates(
        self, tenant: str, substrate_ids: Sequence[str]
    ) -> tuple[Substrate, bool]:
        """Compose the product of two or more of the tenant's substrates, and store it."""
        if len(substrate_ids) < 2:
            raise invalid("substrate_ids", "a product needs at least two substrate ids")
        factors = []
        for index, substrate_id in enumerate(substrate_ids):
            factors.append(await self.get(tenant, substrate_id, f"substrate_ids[{index}]"))
        product = multiply(*factors, limits=self.limits, languages=self.languages)
        return await self.create(
            tenant, product.expression_type, product.expression_code, product.metadata
        )

    async def invoke(
        self, tenant: str, substrate_id: str, parameters: Mapping[str, Any]
    ) -> Invocation:
        substrate = await self.get(tenant, substrate_id)
        compiled = self.compiled(substrate)
        started = time.perf_counter()
        try:
            result = compiled.invoke(dict(parameters))
        except BaseException as error:
            elapsed_ms = (time.perf_counter() - started) * 1000
            self._count(tenant, substrate.identity, elapsed_ms, False)
            if isinstance(error, EvaluationError | EvaluationLimitExceeded):
                await self.emit(
                    events.Event(events.SUBSTRATE_INVOCATION_FAILED, tenant,
                                 substrate.substrate_id, failure_data(error, elapsed_ms))
                )  # fmt: skip
            raise
        elapsed_ms = (time.perf_counter() - started) * 1000
        self._count(tenant, substrate.identity, elapsed_ms, True)
        await self.emit(
            events.Event(events.SUBSTRATE_INVOKED, tenant, substrate.substrate_id,
                         {"invocation_time_ms": elapsed_ms})
        )  # fmt: skip
        return Invocation(substrate.substrate_id, result, round(elapsed_ms, 6))

    # -- invocation statistics: counted in memory, flushed to the store ----------------
    def _count(self, tenant: str, identity: int, elapsed_ms: float, ok: bool) -> None:
        key = (tenant, identity)
        call = InvocationStats(1, 0 if ok else 1, elapsed_ms, now())
        old = self._pending.get(key)
        self._pending[key] = call if old is None else old.plus(call)

    async def flush_invocations(self) -> int:
        """Write the counts gathered since the last flush; returns how many substrates."""
        pending, self._pending = self._pending, {}
        by_tenant: dict[str, dict[int, InvocationStats]] = {}
        for (tenant, identity), stats in pending.items():
            by_tenant.setdefault(tenant, {})[identity] = stats
        written: set[str] = set()
        try:
            for tenant, counts in by_tenant.items():
                await self.store.add_invocations(tenant, counts)
                written.add(tenant)
        except BaseException:
            # The store is away (or we are cancelled): the counts not written wait for the
            # next flush, merged with those gathered meanwhile.
            for (tenant, identity), stats in pending.items():
                if tenant not in written:
                    newer = self._pending.get((tenant, identity))
                    self._pending[(tenant, identity)] = (
                        stats if newer is None else stats.plus(newer)
                    )
            raise
        return len(pending)

    async def invocation_totals(self, tenant: str) -> InvocationStats:
        """Every invocation of the tenant's substrates: the store's totals and the counts
        this process has not flushed yet."""
        total = await self.store.invocation_totals(tenant)
        for (owner, _), stats in self._pending.items():
            if owner == tenant:
                total = total.plus(stats)
        return total

    async def invocation_stats(self, tenant: str, identity: int) -> InvocationStats | None:
        stored = await self.store.invocation_stats(tenant, identity)
        pending = self._pending.get((tenant, identity))
        if pending is None:
            return stored
        return pending if stored is None else stored.plus(pending)
