"""The relationship service, as the HTTP API uses it: a real context on the in-memory store."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from butterflyfx.core.config import read_config
from butterflyfx.core.context import ServerContext
from butterflyfx.core.events import Event
from butterflyfx.core.hookspecs import hookimpl
from butterflyfx.core.problems import ProblemError
from butterflyfx.kernel import RELATIONSHIP_TYPES, Relationship, format_id

T = "default"


class Listener:
    """Hears every event the server emits."""

    def __init__(self) -> None:
        self.heard: list[Event] = []

    @hookimpl
    def butterflyfx_on_event(self, event: Event) -> None:
        self.heard.append(event)


def run(
    tmp_path: Path,
    story: Callable[[ServerContext, list[Event]], Awaitable[Any]],
    plugins: str = "storage.memory",
    **server: Any,
) -> Any:
    listener = Listener()
    config = read_config(
        None,
        {"BUTTERFLYFX_PLUGINS": f"{plugins},listener"},
        {"data_dir": tmp_path / "data", **server},
    )
    ctx = ServerContext.build(config, {"listener": listener})

    async def main() -> Any:
        await ctx.start()
        try:
            return await story(ctx, listener.heard)
        finally:
            await ctx.stop()

    return asyncio.run(main())


async def substrates(ctx: ServerContext, count: int) -> list[str]:
    made = []
    for n in range(count):
        s, _ = await ctx.substrates.create(T, "lambda", f"lambda **kw: kw.get('x', 0) + {n}")
        made.append(s.substrate_id)
    return made


async def refused(call: Awaitable[Any]) -> Any:
    with pytest.raises(ProblemError) as caught:
        await call
    return caught.value.problem


def test_relating_two_substrates_stores_the_kernels_relationship_and_says_so(tmp_path):
    async def story(ctx, heard):
        a, b = await substrates(ctx, 2)
        made, created = await ctx.relationships.create(
            T, a, b, " Dependency ", weight=2, metadata={"why": "imports"}
        )
        fetched = await ctx.relationships.get(T, made.relationship_id.lower())
        return a, b, made, created, fetched, heard

    a, b, made, created, fetched, heard = run(tmp_path, story)
    assert created
    assert made.relationship_type == "dependency"
    expected = Relationship.create(int(a, 16), int(b, 16), "dependency")
    assert made.relationship_id == expected.relationship_id
    assert (made.weight, made.metadata, made.bidirectional) == (2.0, {"why": "imports"}, False)
    assert made.created_at is not None and made.created_at.microsecond == 0
    assert fetched == made
    event = heard[-1]
    assert event.kind == "relationship.created" and event.subject_id == made.relationship_id
    assert event.data == {
        "source": int(a, 16), "target": int(b, 16), "relationship_type": "dependency",
        "bidirectional": False, "weight": 2.0,
    }  # fmt: skip


def test_relating_the_same_pair_again_returns_the_first_unchanged_and_emits_nothing(tmp_path):
    async def story(ctx, heard):
        a, b = await substrates(ctx, 2)
        first, _ = await ctx.relationships.create(T, a, b, "sibling", metadata={"n": 1})
        again, created = await ctx.relationships.create(
            T, a.lower(), b, "SIBLING", bidirectional=True, weight=9, metadata={"n": 2}
        )
        return first, again, created, [e.kind for e in heard]

    first, again, created, kinds = run(tmp_path, story)
    assert not created and again == first and again.metadata == {"n": 1}
    assert kinds.count("relationship.created") == 1


def test_an_unknown_type_is_refused_listing_the_kernels_and_the_configured_ones(tmp_path):
    async def story(ctx, heard):
        a, b = await substrates(ctx, 2)
        problem = await refused(ctx.relationships.create(T, a, b, "likes"))
        uses, _ = await ctx.relationships.create(T, a, b, "USES")
        return problem, uses

    problem, uses = run(tmp_path, story, relationship_types=["Uses", "calls"])
    assert (problem.status, problem.slug, problem.extra["field"]) == (
        422, "unknown-relationship-type", "relationship_type",
    )  # fmt: skip
    assert problem.extra["known_types"] == [*RELATIONSHIP_TYPES, "uses", "calls"]
    assert "'likes'" in problem.detail and "calls" in problem.detail
    assert uses.relationship_type == "uses"


def test_a_substrate_relates_to_itself_only_by_recursion_or_cycle(tmp_path):
    async def story(ctx, heard):
        (a,) = await substrates(ctx, 1)
        problem = await refused(ctx.relationships.create(T, a, a, "dependency"))
        loops = [await ctx.relationships.create(T, a, a, kind) for kind in ("recursion", "Cycle")]
        return problem, loops

    problem, loops = run(tmp_path, story)
    assert (problem.status, problem.extra["field"]) == (422, "target_id")
    assert all(created for _, created in loops)


@pytest.mark.parametrize("weight", [-1, -0.5, math.inf, -math.inf, math.nan, True, "1"])
def test_a_weight_must_be_a_finite_number_not_below_zero(tmp_path, weight):
    async def story(ctx, heard):
        a, b = await substrates(ctx, 2)
        problem = await refused(ctx.relationships.create(T, a, b, "adjacency", weight=weight))
        page = await ctx.relationships.list(T, a, "outgoing")
        return problem, page.items

    problem, stored = run(tmp_path, story)
    assert (problem.status, problem.extra["field"]) == (422, "weight")
    assert stored == []


def test_a_missing_end_is_a_404_naming_which_end(tmp_path):
    async def story(ctx, heard):
        (a,) = await substrates(ctx, 1)
        ghost = "0x0000000000000001"
        return [
            await refused(ctx.relationships.create(T, ghost, a, "lineage")),
            await refused(ctx.relationships.create(T, a, ghost, "lineage")),
            await refused(ctx.relationships.create(T, ghost, "0x2", "lineage")),
            await refused(ctx.relationships.create(T, "0xZZ", a, "lineage")),
        ]

    missing_source, missing_target, both, malformed = run(tmp_path, story)
    assert (missing_source.status, missing_source.extra["field"]) == (404, "source_id")
    assert "0x0000000000000001" in missing_source.detail
    assert (missing_target.status, missing_target.extra["field"]) == (404, "target_id")
    assert both.extra["field"] == "source_id"
    assert (malformed.status, malformed.extra["field"]) == (400, "source_id")


def test_deleting_a_relationship_emits_what_it_joined_and_a_second_delete_is_404(tmp_path):
    async def story(ctx, heard):
        a, b = await substrates(ctx, 2)
        made, _ = await ctx.relationships.create(T, a, b, "embedding", bidirectional=True)
        await ctx.relationships.delete(T, made.relationship_id)
        again = await refused(ctx.relationships.delete(T, made.relationship_id))
        gone = await refused(ctx.relationships.get(T, made.relationship_id))
        return made, heard[-1], again, gone

    made, event, again, gone = run(tmp_path, story)
    assert event.kind == "relationship.deleted" and event.subject_id == made.relationship_id
    assert event.data["bidirectional"] is True and event.data["source"] == made.source
    assert (again.status, again.extra["field"]) == (404, "relationship_id")
    assert gone.status == 404


def test_a_bidirectional_relationship_is_listed_in_both_directions_at_both_ends(tmp_path):
    async def story(ctx, heard):
        a, b, c = await substrates(ctx, 3)
        both, _ = await ctx.relationships.create(T, a, b, "sibling", bidirectional=True)
        one_way, _ = await ctx.relationships.create(T, a, c, "dependency")
        lists = {}
        for who, name in ((a, "a"), (b, "b"), (c, "c")):
            for direction in ("outgoing", "incoming"):
                page = await ctx.relationships.list(T, who, direction)
                lists[name, direction] = {r.relationship_id for r in page.items}
        typed = await ctx.relationships.list(T, a, "outgoing", types=["DEPENDENCY"])
        return both.relationship_id, one_way.relationship_id, lists, typed.items

    both, one_way, lists, typed = run(tmp_path, story)
    assert lists["a", "outgoing"] == {both, one_way}
    assert lists["a", "incoming"] == {both}
    assert lists["b", "outgoing"] == lists["b", "incoming"] == {both}
    assert (lists["c", "outgoing"], lists["c", "incoming"]) == (set(), {one_way})
    assert [r.relationship_id for r in typed] == [one_way]


def test_paging_through_25_outgoing_relationships_sees_each_once_in_id_order(tmp_path):
    async def story(ctx, heard):
        hub, *others = await substrates(ctx, 26)
        for other in others:
            await ctx.relationships.create(T, hub, other, "containment")
        seen, cursor, pages = [], None, 0
        while True:
            page = await ctx.relationships.list(T, hub, "outgoing", limit=10, cursor=cursor)
            seen += [r.identity for r in page.items]
            pages += 1
            if page.next_cursor is None:
                return seen, pages
            cursor = page.next_cursor

    seen, pages = run(tmp_path, story)
    assert len(seen) == 25 and seen == sorted(set(seen)) and pages == 3


def test_listing_needs_an_existing_substrate_known_types_and_sane_paging(tmp_path):
    async def story(ctx, heard):
        (a,) = await substrates(ctx, 1)
        listing = ctx.relationships.list
        return [
            await refused(listing(T, "0x0000000000000001", "outgoing")),
            await refused(listing(T, a, "incoming", types=["friend"])),
            await refused(listing(T, a, "outgoing", limit=0)),
            await refused(listing(T, a, "outgoing", limit=1001)),
            await refused(listing(T, a, "outgoing", cursor="forged")),
        ]

    problems = run(tmp_path, story)
    assert [(p.status, p.extra["field"]) for p in problems] == [
        (404, "substrate_id"), (422, "type"), (400, "limit"), (400, "limit"), (400, "cursor"),
    ]  # fmt: skip


def test_tenants_relate_only_their_own_substrates(tmp_path):
    async def story(ctx, heard):
        a, b = await substrates(ctx, 2)
        problem = await refused(ctx.relationships.create("other", a, b, "sibling"))
        mine, _ = await ctx.relationships.create(T, a, b, "sibling")
        hidden = await refused(ctx.relationships.get("other", mine.relationship_id))
        return problem, hidden

    problem, hidden = run(tmp_path, story)
    assert (problem.status, problem.extra["field"]) == (404, "source_id")
    assert hidden.status == 404


def test_divide_fills_the_area_dimension_with_the_substrates_real_relationships(tmp_path):
    async def story(ctx, heard):
        a, b, c = await substrates(ctx, 3)
        before = await ctx.substrates.divide(T, a)
        await ctx.relationships.create(T, a, b, "dependency")
        await ctx.relationships.create(T, c, a, "sibling", bidirectional=True)
        await ctx.relationships.create(T, a, a, "recursion")
        during = await ctx.substrates.divide(T, a)
        await ctx.substrates.delete(T, c)
        after = await ctx.substrates.divide(T, a)
        return a, b, c, [{d.name: d.content for d in x.dimensions}["Area"]
                         for x in (before, during, after)]  # fmt: skip

    a, b, c, (before, during, after) = run(tmp_path, story)
    assert before == {
        "available": True, "outgoing": 0, "incoming": 0, "by_type": {}, "neighbours": [],
    }  # fmt: skip
    assert (during["outgoing"], during["incoming"]) == (3, 2)
    assert during["by_type"] == {
        "dependency": {"outgoing": 1, "incoming": 0},
        "recursion": {"outgoing": 1, "incoming": 1},
        "sibling": {"outgoing": 1, "incoming": 1},
    }
    neighbours = {(n["substrate_id"], n["relationship_type"], n["direction"])
                  for n in during["neighbours"]}  # fmt: skip
    assert (b, "dependency", "outgoing") in neighbours
    assert {(c, "sibling", "incoming"), (c, "sibling", "outgoing")} <= neighbours
    assert len(during["neighbours"]) == 5
    # the sibling went with c: a substrate's deletion takes its relationships along
    assert after["by_type"] == {
        "dependency": {"outgoing": 1, "incoming": 0},
        "recursion": {"outgoing": 1, "incoming": 1},
    }
    assert all(n["substrate_id"] != c for n in after["neighbours"])


def test_stats_count_invocations_not_yet_flushed(tmp_path):
    async def story(ctx, heard):
        a, b = await substrates(ctx, 2)
        await ctx.relationships.create(T, a, b, "lineage")
        await ctx.relationships.create(T, b, a, "lineage")
        await ctx.relationships.create(T, a, b, "attribute")
        for x in range(3):
            await ctx.substrates.invoke(T, a, {"x": x})
        unflushed = await ctx.queries.stats(T)
        await ctx.substrates.flush_invocations()
        await ctx.substrates.invoke(T, b, {"x": 1})
        flushed = await ctx.queries.stats(T)
        other = await ctx.queries.stats("other")
        return unflushed, flushed, other

    unflushed, flushed, other = run(tmp_path, story, invocation_flush_seconds=3600)
    assert unflushed.substrates == 2
    assert dict(unflushed.relationships) == {"attribute": 1, "lineage": 2}
    assert unflushed.invocations.count == 3 and flushed.invocations.count == 4
    assert flushed.invocations.last_invoked_at is not None
    assert (flushed.storage, flushed.graph_engine) == ("storage.memory", None)
    assert flushed.uptime_seconds >= 0
    assert (other.substrates, dict(other.relationships), other.invocations.count) == (0, {}, 0)


def test_every_id_the_service_hands_out_is_in_canonical_form(tmp_path):
    async def story(ctx, heard):
        a, b = await substrates(ctx, 2)
        made, _ = await ctx.relationships.create(T, a.lower(), b.lower(), "boundary")
        return made, a, b

    made, a, b = run(tmp_path, story)
    assert format_id(made.source) == a and format_id(made.target) == b
    assert made.relationship_id == format_id(made.identity)
