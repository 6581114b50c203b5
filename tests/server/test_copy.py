"""``butterflyfx copy``: the path from one SQLite file to PostgreSQL to partitioned PostgreSQL,
and between any two stores (SQLite to Redis and back).

A SQLite store with three tenants (substrates, an edited one, invocation totals,
relationships of every kind) is copied by the real CLI into a plain PostgreSQL schema, again
(nothing new the second time), then from there into a schema partitioned by tenant; then a
real server on the SQLite file and one on the partitioned schema answer every read the same.
Nothing is timed; deadlines only keep a broken run from hanging.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_process import Butterflyfx

from butterflyfx.kernel import InvocationStats, Relationship, Substrate
from butterflyfx.plugins.storage_sqlite import SqliteStore
from butterflyfx.testing import services
from butterflyfx.testing.storage import make_relationship, make_substrate

sys.path.append(str(Path(__file__).parents[1] / "plugins"))  # where postgres_service is
from postgres_service import POSTGRES_DSN, postgres_schema

TENANTS = ("Zeta-1", "acme", "team-ops.eu")  # as the stores sort them (Python order)
SUBSTRATES = 23  # per tenant; batches of 7 leave a short last one
BATCH = "7"


def world(tenant: str, offset: int) -> tuple[list[Substrate], list[Relationship]]:
    """A tenant's substrates and relationships: a chain, both-way siblings, a self-loop,
    weights and metadata; the tenants share one substrate (same identity, own rows)."""
    substrates = [make_substrate(0, {"shared": True})]
    substrates += [make_substrate(offset + i, {"n": i, "of": tenant}) for i in range(1, SUBSTRATES)]
    chain = [
        make_relationship(a, b, "dependency", weight=float(i % 3) or None, metadata={"i": i})
        for i, (a, b) in enumerate(zip(substrates, substrates[1:], strict=False))
    ]
    extra = [
        make_relationship(substrates[2], substrates[9], "sibling", bidirectional=True),
        make_relationship(substrates[5], substrates[5], "recursion"),
        make_relationship(substrates[9], substrates[0], "lineage", weight=0.5),
    ]
    return substrates, chain + extra


async def seed(path: Path) -> dict[str, tuple[int, int, int]]:
    """The SQLite source; per tenant, (substrates, invoked substrates, relationships)."""
    store = SqliteStore(path)
    await store.open()
    made: dict[str, tuple[int, int, int]] = {}
    try:
        for n, tenant in enumerate(TENANTS):
            substrates, relationships = world(tenant, 1000 * (n + 1))
            await store.put_substrates(tenant, substrates)
            await store.put_relationships(tenant, relationships)
            edited = substrates[3].identity
            when = datetime(2024, 8, 1, 9, 0, 0, tzinfo=UTC)
            await store.update_metadata(tenant, edited, {"edited": tenant}, now=when)
            invoked = {
                s.identity: InvocationStats(i + 1, i % 2, 2.5 * (i + 1), when)
                for i, s in enumerate(substrates[: 4 + n])
            }
            await store.add_invocations(tenant, invoked)
            made[tenant] = (len(substrates), len(invoked), len(relationships))
    finally:
        await store.close()
    return made


def config(folder: Path, name: str, storage: str, keys: Path, *, served: bool = False) -> Path:
    plugins = [storage, "graph.sql", "http", "auth.apikey"] if served else [storage]
    text = f"plugins = {plugins!r}\n\n"
    if storage == "storage.sqlite":
        text += f'[storage.sqlite]\npath = "{folder / "source.sqlite3"}"\n\n'
    else:
        schema, partitions = name.split(":")
        text += f'[storage.postgres]\ndsn = "{POSTGRES_DSN}"\nschema = "{schema}"\n'
        text += f"partitions = {partitions}\n\n"
    if served:
        text += f'[auth.apikey]\npath = "{keys}"\nbootstrap = false\n'
    path = folder / f"{name.split(':')[0]}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def expected_output(made: dict[str, tuple[int, int, int]], *, again: bool, what: str) -> list[str]:
    lines = []
    total = [0, 0, 0]
    for tenant, (substrates, invoked, relationships) in made.items():
        new_s, new_r, copied_i = (0, 0, 0) if again else (substrates, relationships, invoked)
        lines.append(
            f"{tenant}: {substrates} substrates ({new_s} new), {copied_i} invocation totals, "
            f"{relationships} relationships ({new_r} new)"
        )
        total = [total[0] + substrates, total[1] + copied_i, total[2] + relationships]
    new_s, new_r = (0, 0) if again else (total[0], total[2])
    lines.append(
        f"copied {len(made)} tenants from {what}: {total[0]} substrates ({new_s} new), "
        f"{total[1]} invocation totals, {total[2]} relationships ({new_r} new)"
    )
    return lines


@pytest.fixture
def schemas() -> Iterator[tuple[str, str]]:
    with postgres_schema() as plain, postgres_schema() as partitioned:
        yield plain, partitioned


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def everything(client: httpx.Client) -> dict[str, Any]:
    """All a tenant can read through the API, in a form to compare (ids, not cursors)."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 5}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/api/v1/substrates", params=params)
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if not cursor:
            break
    seen: dict[str, Any] = {"substrates": items}
    for item in items:
        sid = item["substrate_id"]
        seen[f"get {sid}"] = ok(client.get(f"/api/v1/substrates/{sid}"))
        seen[f"divide {sid}"] = ok(client.post(f"/api/v1/substrates/{sid}/divide"))
        for side in ("outgoing", "incoming"):
            seen[f"{side} {sid}"] = ok(client.get(f"/api/v1/relationships/{side}/{sid}"))
    walk = {"start_id": items[0]["substrate_id"], "direction": "both", "max_depth": 4}
    seen["traverse"] = ok(client.post("/api/v1/query/traverse", json=walk))
    stats = ok(client.get("/api/v1/query/stats"))
    seen["stats"] = {key: stats[key] for key in ("substrates", "relationships", "invocations")}
    return seen


def test_sqlite_to_postgres_to_partitioned_postgres_serves_the_same_data(
    butterflyfx: Butterflyfx, tmp_path: Path, schemas: tuple[str, str]
) -> None:
    plain, partitioned = schemas
    made = asyncio.run(seed(tmp_path / "source.sqlite3"))
    keys = tmp_path / "keys.sqlite3"
    source = config(tmp_path, "source", "storage.sqlite", keys, served=True)
    middle = config(tmp_path, f"{plain}:0", "storage.postgres", keys)
    target = config(tmp_path, f"{partitioned}:4", "storage.postgres", keys, served=True)

    first = butterflyfx.run("copy", "--from", str(source), "--to", str(middle), "--batch", BATCH)
    assert first.returncode == 0, first.stderr
    what = f"storage.sqlite ({source}) to storage.postgres ({middle})"
    assert first.stdout.splitlines() == expected_output(made, again=False, what=what)
    again = butterflyfx.run("copy", "--from", str(source), "--to", str(middle), "--batch", BATCH)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == expected_output(made, again=True, what=what)

    onward = butterflyfx.run("copy", "--from", str(middle), "--to", str(target))
    assert onward.returncode == 0, onward.stderr
    what = f"storage.postgres ({middle}) to storage.postgres ({target})"
    assert onward.stdout.splitlines() == expected_output(made, again=False, what=what)

    keys_of = {}
    for tenant in TENANTS:
        made_key = butterflyfx.run(
            "keys", "create", "--config", str(source), "--tenant", tenant, "--tier", "enterprise"
        )
        assert made_key.returncode == 0, made_key.stderr
        keys_of[tenant] = made_key.stdout.splitlines()[-1]
    on_sqlite = butterflyfx.start("--config", str(source), "--data-dir", str(tmp_path / "a"))
    on_partitions = butterflyfx.start("--config", str(target), "--data-dir", str(tmp_path / "b"))
    on_sqlite.wait_ready(), on_partitions.wait_ready()
    for tenant, key in keys_of.items():
        with on_sqlite.client(key) as before, on_partitions.client(key) as after:
            there = everything(after)
            assert len(there["substrates"]) == made[tenant][0]
            assert there["stats"]["invocations"]["count"] > 0
            assert len(there["traverse"]["results"]) > 3
            edited = [s for s in there["substrates"] if s["metadata"] == {"edited": tenant}]
            assert len(edited) == 1 and edited[0]["version"] == 2
            assert there == everything(before), tenant


def test_a_copy_of_named_tenants_leaves_the_others_and_refuses_a_wrong_layout(
    butterflyfx: Butterflyfx, tmp_path: Path, schemas: tuple[str, str]
) -> None:
    partitioned = schemas[1]
    made = asyncio.run(seed(tmp_path / "source.sqlite3"))
    keys = tmp_path / "keys.sqlite3"
    source = config(tmp_path, "source", "storage.sqlite", keys)
    target = config(tmp_path, f"{partitioned}:4", "storage.postgres", keys)
    copied = butterflyfx.run("copy", "--from", str(source), "--to", str(target), "--tenant", "acme")
    assert copied.returncode == 0, copied.stderr
    substrates, invoked, relationships = made["acme"]
    assert copied.stdout.splitlines()[0] == (
        f"acme: {substrates} substrates ({substrates} new), {invoked} invocation totals, "
        f"{relationships} relationships ({relationships} new)"
    )
    assert copied.stdout.splitlines()[1].startswith("copied 1 tenant from storage.sqlite")

    (tmp_path / "wrong").mkdir()
    wrong = config(tmp_path / "wrong", f"{partitioned}:0", "storage.postgres", keys, served=True)
    refused = butterflyfx.run("copy", "--from", str(source), "--to", str(wrong))
    assert refused.returncode == 2
    assert refused.stdout == ""
    assert "Traceback" not in refused.stderr
    assert refused.stderr.startswith("butterflyfx: cannot open the target store (storage.postgres")
    assert "holds 4 hash partitions by tenant (partitions = 4)" in refused.stderr
    served = butterflyfx.run("serve", "--config", str(wrong), "--port", "0")  # nor serve it
    assert served.returncode == 2
    last = served.stderr.strip().splitlines()[-1]
    assert last.startswith("butterflyfx: cannot start: plugin 'storage.postgres' failed to open")
    assert "holds 4 hash partitions by tenant (partitions = 4), but [storage.postgres] asks" in last

    round_trip = tmp_path / "round-trip"
    round_trip.mkdir()
    home = config(round_trip, "source", "storage.sqlite", keys)  # a new, empty file
    returned = butterflyfx.run("copy", "--from", str(target), "--to", str(home))
    assert returned.returncode == 0, returned.stderr
    assert returned.stdout.splitlines()[0].startswith("acme: ")
    assert len(returned.stdout.splitlines()) == 2  # only acme is on the target

    async def tenants_there() -> list[str]:
        store = SqliteStore(round_trip / "source.sqlite3")
        await store.open()
        try:
            return await store.tenants()
        finally:
            await store.close()

    assert asyncio.run(tenants_there()) == ["acme"]


def test_bad_arguments_are_refused_with_a_message(butterflyfx: Butterflyfx, tmp_path: Path) -> None:
    source = config(tmp_path, "source", "storage.sqlite", tmp_path / "keys.sqlite3")
    too_big = butterflyfx.run("copy", "--from", str(source), "--to", str(source), "--batch", "0")
    assert too_big.returncode == 2
    assert too_big.stderr.strip() == "butterflyfx: --batch must be 1 to 5000, not 0"
    missing = butterflyfx.run("copy", "--from", str(tmp_path / "nope.toml"), "--to", str(source))
    assert missing.returncode == 2
    assert "nope.toml" in missing.stderr and "Traceback" not in missing.stderr
    no_to = butterflyfx.run("copy", "--from", str(source))
    assert no_to.returncode == 2 and "--to" in no_to.stderr


async def contents(path: Path) -> dict[str, Any]:
    """Everything a SQLite store holds, tenant by tenant, to compare two of them."""
    store = SqliteStore(path)
    await store.open()
    try:
        held: dict[str, Any] = {}
        for tenant in await store.tenants():
            substrates = await store.list_substrates(tenant, limit=10_000)
            held[tenant] = {
                "substrates": substrates,
                "totals": [await store.invocation_stats(tenant, s.identity) for s in substrates],
                "relationships": await store.all_relationships(tenant, limit=10_000),
            }
        return held
    finally:
        await store.close()


def test_a_round_trip_through_redis_gives_back_the_same_store(
    butterflyfx: Butterflyfx, tmp_path: Path
) -> None:
    """copy works between any two storage plugins: SQLite to Redis and back is lossless,
    invocation totals to the millisecond included."""
    made = asyncio.run(seed(tmp_path / "source.sqlite3"))
    keys = tmp_path / "keys.sqlite3"
    source = config(tmp_path, "source", "storage.sqlite", keys)
    home = tmp_path / "home"
    home.mkdir()
    back = config(home, "source", "storage.sqlite", keys)
    with services.redis_prefix(services.REDIS_URL) as prefix:
        redis_config = tmp_path / "redis.toml"
        redis_config.write_text(
            'plugins = ["storage.redis"]\n'
            f'[storage.redis]\nurl = "{services.REDIS_URL}"\nprefix = "{prefix}"\n',
            encoding="utf-8",
        )
        there = butterflyfx.run("copy", "--from", str(source), "--to", str(redis_config))
        assert there.returncode == 0, there.stderr
        what = f"storage.sqlite ({source}) to storage.redis ({redis_config})"
        assert there.stdout.splitlines() == expected_output(made, again=False, what=what)
        returned = butterflyfx.run("copy", "--from", str(redis_config), "--to", str(back))
        assert returned.returncode == 0, returned.stderr
    original = asyncio.run(contents(tmp_path / "source.sqlite3"))
    assert sorted(original) == sorted(TENANTS)
    assert asyncio.run(contents(home / "source.sqlite3")) == original
