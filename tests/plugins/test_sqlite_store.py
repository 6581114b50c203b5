"""The SQLite store on its own: the file, its schema, worker processes, crashes, bad paths.

Several stories run real processes (``sys.executable``) on one file, the way Hypercorn
workers share it. Each waits for a "go" file so they start together; every wait has a
timeout, and nothing asserts how long anything took.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import pytest

from butterflyfx.core.config import ConfigError, read_config
from butterflyfx.core.context import ServerContext
from butterflyfx.core.store import MissingEnd, SqlDatabase, SubstrateQuery
from butterflyfx.kernel import InvocationStats
from butterflyfx.plugins import storage_sqlite
from butterflyfx.plugins.storage_sqlite import SqliteStore, SqliteStoreError
from butterflyfx.plugins.storage_sqlite.migrations import MIGRATIONS
from butterflyfx.testing.storage import make_relationship, make_substrate

TIMEOUT = 120  # seconds; a safety net for a stuck child, never a performance claim
TENANT = "default"

PRELUDE = """
import asyncio, os, sys, time
from butterflyfx.plugins.storage_sqlite import SqliteStore
from butterflyfx.testing.storage import make_substrate

def wait_for_go(go):
    print("ready", flush=True)
    deadline = time.monotonic() + 100
    while not os.path.exists(go):
        if time.monotonic() > deadline:
            sys.exit("never told to go")
        time.sleep(0.002)
"""

OPEN_WITH_LOGGED_MIGRATION = (
    PRELUDE
    + """
from butterflyfx.plugins.storage_sqlite.migrations import MIGRATIONS
db, go = sys.argv[1:3]
# One more step that records which process applied it.
logged = ("CREATE TABLE migration_log (pid INTEGER NOT NULL)",
          f"INSERT INTO migration_log (pid) VALUES ({os.getpid()})")

async def main():
    store = SqliteStore(db, migrations=[*MIGRATIONS, logged])
    await store.open()
    print("version", store.schema_version, flush=True)
    await store.close()

wait_for_go(go)
asyncio.run(main())
"""
)

PUT_RANGE = (
    PRELUDE
    + """
import json
db, go, start, stop = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

async def main():
    store = SqliteStore(db)
    await store.open()
    wait_for_go(go)
    created = {}
    for i in range(start, stop):
        substrate = make_substrate(i)
        created[substrate.identity] = (await store.put_substrate("default", substrate))[1]
    await store.close()
    print(json.dumps(sorted(created.items())), flush=True)

asyncio.run(main())
"""
)

PUT_UNTIL_KILLED = (
    PRELUDE
    + """
db = sys.argv[1]

async def main():
    store = SqliteStore(db)
    await store.open()
    for i in range(1_000_000):  # bounded, in case nobody kills it
        substrate = make_substrate(i)
        await store.put_substrate("default", substrate)
        print(substrate.identity, flush=True)  # only once put_substrate has returned

asyncio.run(main())
"""
)


# Relates random pairs of the first ``base`` substrates (and new ones to them) while a
# deleter removes base substrates. Nothing recreates a deleted base substrate, so an end
# a refusal names must still be absent when the refusal is checked.
RELATE_WHILE_OTHERS_DELETE = (
    PRELUDE
    + """
import json, random
from butterflyfx.core.store import MissingEnd
from butterflyfx.testing.storage import make_relationship
db, go, base, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
kinds = ["dependency", "sibling", "adjacency", "lineage"]

async def main():
    store = SqliteStore(db)
    await store.open()
    rng = random.Random(7)
    wait_for_go(go)
    created = refused = 0
    wrong = []
    for k in range(rounds):
        if k % 5 == 0:
            fresh = make_substrate(10_000 + k)
            await store.put_substrate("default", fresh)
            source, target = fresh, make_substrate(rng.randrange(base))
        else:
            source, target = (make_substrate(i) for i in rng.sample(range(base), 2))
        relationship = make_relationship(source, target, kinds[k % 4], bidirectional=k % 3 == 0)
        try:
            created += (await store.put_relationship("default", relationship))[1]
        except MissingEnd as refusal:
            refused += 1
            expected = relationship.source if refusal.end == "source" else relationship.target
            still_there = await store.get_substrate("default", refusal.identity)
            if refusal.identity != expected or still_there is not None:
                wrong.append([refusal.end, refusal.identity])
    await store.close()
    print(json.dumps({"created": created, "refused": refused, "wrong": wrong}), flush=True)

asyncio.run(main())
"""
)

DELETE_BASE = (
    PRELUDE
    + """
import random
db, go, base, doomed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

async def main():
    store = SqliteStore(db)
    await store.open()
    order = random.Random(11).sample(range(base), doomed)
    wait_for_go(go)
    deleted = 0
    for i in order:
        deleted += await store.delete_substrate("default", make_substrate(i).identity)
        await asyncio.sleep(0.002)  # let the relating worker get some writes in between
    await store.close()
    print(deleted, flush=True)

asyncio.run(main())
"""
)

# Every relationship joined to both of its ends: one statement, so one consistent snapshot.
DANGLING = """
SELECT COUNT(*), TOTAL(src.identity_key IS NULL OR dst.identity_key IS NULL)
FROM relationships AS r
LEFT JOIN substrates AS src ON src.tenant = r.tenant AND src.identity_key = r.source_key
LEFT JOIN substrates AS dst ON dst.tenant = r.tenant AND dst.identity_key = r.target_key
"""


class Child:
    """A Python process running ``script``, its stdout read line by line by a thread."""

    def __init__(self, script: str, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", script, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.endswith("\n"):  # a line cut short by SIGKILL was never acknowledged
                self.lines.put(line[:-1])
        self.lines.put(None)

    def next_line(self) -> str:
        try:
            line = self.lines.get(timeout=TIMEOUT)
        except queue.Empty:
            self.process.kill()
            raise AssertionError(f"no output from the child within {TIMEOUT}s") from None
        if line is None:
            raise AssertionError(f"the child ended early: {self.finish_errors()}")
        return line

    def finish_errors(self) -> str:
        self.process.wait(timeout=TIMEOUT)
        assert self.process.stderr is not None
        return f"exit {self.process.returncode}: {self.process.stderr.read()}"

    def finish(self) -> list[str]:
        """Wait for a clean exit and return the lines not read yet."""
        self.process.wait(timeout=TIMEOUT)
        assert self.process.returncode == 0, self.finish_errors()
        rest: list[str] = []
        while (line := self.lines.get(timeout=TIMEOUT)) is not None:
            rest.append(line)
        return rest


@pytest.fixture
def spawn() -> Iterator[type[Child]]:
    """Start children; any still running when the test ends is killed."""
    started: list[Child] = []

    class Tracked(Child):
        def __init__(self, script: str, *args: str) -> None:
            super().__init__(script, *args)
            started.append(self)

    yield Tracked
    for child in started:
        if child.process.poll() is None:
            child.process.kill()
            child.process.wait(timeout=TIMEOUT)


def start_together(children: list[Child], go: Path) -> None:
    for child in children:
        assert child.next_line() == "ready"
    go.touch()


def file_facts(path: Path) -> tuple[str, int, set[str]]:
    with sqlite3.connect(path) as db:
        mode = db.execute("PRAGMA journal_mode").fetchone()[0]
        version = db.execute("PRAGMA user_version").fetchone()[0]
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    return mode, version, tables


async def opened(path: Path, **options: object) -> SqliteStore:
    store = SqliteStore(path, **options)  # type: ignore[arg-type]
    await store.open()
    return store


# -- the file ---------------------------------------------------------------------------


def test_opening_creates_the_folders_and_a_wal_file_at_the_latest_schema(tmp_path: Path):
    path = tmp_path / "data" / "nested" / "butterflyfx.sqlite3"

    async def main() -> dict[str, object]:
        store = await opened(path)
        try:
            await store.put_substrate(TENANT, make_substrate(1))
            return dict(await store.health())
        finally:
            await store.close()

    health = asyncio.run(main())
    assert health == {
        "path": str(path),
        "schema_version": len(MIGRATIONS),
        "substrates": 1,
        "synchronous": "full",
    }
    mode, version, tables = file_facts(path)
    assert (mode, version) == ("wal", len(MIGRATIONS))
    assert {"substrates", "invocation_totals"} <= tables


def test_writes_are_fsynced_at_every_commit_unless_configured_otherwise(tmp_path: Path):
    async def synchronous(**options: object) -> int:
        store = await opened(tmp_path / "store.sqlite3", **options)
        try:
            # The writer connection is where durability is decided; PRAGMA is per connection.
            assert store._writer is not None
            return int(list(await store._writer.execute_fetchall("PRAGMA synchronous"))[0][0])
        finally:
            await store.close()

    assert asyncio.run(synchronous()) == 2  # FULL
    assert asyncio.run(synchronous(synchronous="normal")) == 1  # NORMAL


def test_identities_are_stored_as_signed_keys_in_identity_order(tmp_path: Path):
    path = tmp_path / "store.sqlite3"
    substrates = [make_substrate(i, identity=n) for i, n in enumerate([2**64 - 1, 0, 2**63])]

    async def main() -> None:
        store = await opened(path)
        try:
            for substrate in substrates:
                await store.put_substrate(TENANT, substrate)
        finally:
            await store.close()

    asyncio.run(main())
    with sqlite3.connect(path) as db:
        keys = [row[0] for row in db.execute("SELECT identity_key FROM substrates ORDER BY 1")]
    assert keys == [-(2**63), 0, 2**63 - 1]


# -- worker processes ---------------------------------------------------------------------


def test_four_workers_opening_a_new_file_at_once_apply_each_migration_once(
    tmp_path: Path, spawn: type[Child]
):
    path, go = tmp_path / "new.sqlite3", tmp_path / "go"
    workers = [spawn(OPEN_WITH_LOGGED_MIGRATION, str(path), str(go)) for _ in range(4)]
    start_together(workers, go)
    for worker in workers:
        assert worker.next_line() == f"version {len(MIGRATIONS) + 1}"
        worker.finish()
    mode, version, tables = file_facts(path)
    assert (mode, version) == ("wal", len(MIGRATIONS) + 1)
    with sqlite3.connect(path) as db:
        applied_by = [row[0] for row in db.execute("SELECT pid FROM migration_log")]
    assert len(applied_by) == 1
    assert applied_by[0] in {worker.process.pid for worker in workers}


def test_opening_waits_while_another_worker_switches_the_new_file_to_wal(tmp_path: Path):
    """Workers opening a new file at once: one holds the write lock while it switches the
    file to WAL. SQLite refuses the others' switch at once, without their busy timeout
    (waiting holding a read lock could deadlock); the store must wait all the same."""
    path = tmp_path / "new.sqlite3"
    other = sqlite3.connect(path, isolation_level=None)  # a new file: still rollback mode
    other.execute("BEGIN IMMEDIATE")  # the write lock, as another worker's switch holds it

    async def main() -> None:
        store = SqliteStore(path, busy_timeout_ms=TIMEOUT * 1000)
        opening = asyncio.create_task(store.open())
        try:
            await asyncio.sleep(0.2)  # time to be refused; a slower start only waits less
            other.rollback()
            await opening  # the store's own error, had it given up while the lock was held
            assert store.schema_version == len(MIGRATIONS)
        finally:
            await store.close()

    try:
        asyncio.run(main())
    finally:
        other.close()
    assert file_facts(path)[:2] == ("wal", len(MIGRATIONS))


def test_two_workers_inserting_overlapping_substrates_create_each_exactly_once(
    tmp_path: Path, spawn: type[Child]
):
    path, go = tmp_path / "shared.sqlite3", tmp_path / "go"
    # 0..199 and 100..299: the middle hundred are put by both at about the same time.
    workers = [
        spawn(PUT_RANGE, str(path), str(go), "0", "200"),
        spawn(PUT_RANGE, str(path), str(go), "100", "300"),
    ]
    start_together(workers, go)
    created_by: dict[int, int] = {}
    for worker in workers:
        for identity, created in json.loads(worker.next_line()):
            created_by[identity] = created_by.get(identity, 0) + int(created)
        worker.finish()
    expected = {make_substrate(i).identity for i in range(300)}
    assert set(created_by) == expected
    assert set(created_by.values()) == {1}

    async def count() -> int:
        store = await opened(path)
        try:
            return await store.count_substrates(TENANT)
        finally:
            await store.close()

    assert asyncio.run(count()) == 300


def test_every_acknowledged_write_survives_kill_9(tmp_path: Path, spawn: type[Child]):
    path = tmp_path / "crash.sqlite3"
    writer = spawn(PUT_UNTIL_KILLED, str(path))
    acknowledged = [int(writer.next_line()) for _ in range(50)]
    os.kill(writer.process.pid, signal.SIGKILL)
    writer.process.wait(timeout=TIMEOUT)
    assert writer.process.returncode == -signal.SIGKILL
    while (line := writer.lines.get(timeout=TIMEOUT)) is not None:
        acknowledged.append(int(line))  # printed before the kill landed: acknowledged too

    async def read_back() -> tuple[list[int], int]:
        store = await opened(path)
        try:
            missing = [i for i in acknowledged if await store.get_substrate(TENANT, i) is None]
            return missing, await store.count_substrates(TENANT)
        finally:
            await store.close()

    missing, count = asyncio.run(read_back())
    assert missing == []
    # At most one more: a put may have committed without living to print.
    assert count in (len(acknowledged), len(acknowledged) + 1)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


# -- paths that cannot be used --------------------------------------------------------------


def open_error(path: Path) -> str:
    with pytest.raises(SqliteStoreError) as caught:
        asyncio.run(opened(path))
    return str(caught.value)


def test_a_path_under_a_regular_file_is_refused_naming_the_path(tmp_path: Path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where a folder should be")
    path = blocker / "butterflyfx.sqlite3"
    message = open_error(path)
    assert str(path) in message and message.startswith("cannot open the SQLite store")


def test_a_folder_given_as_the_database_file_is_refused_naming_it(tmp_path: Path):
    assert str(tmp_path) in open_error(tmp_path)


def test_a_file_that_is_not_a_database_is_refused_naming_it(tmp_path: Path):
    path = tmp_path / "notes.txt"
    path.write_text("these are not the pages you are looking for\n" * 200)
    message = open_error(path)
    assert str(path) in message and "not a database" in message


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_a_read_only_folder_is_refused_naming_the_file(tmp_path: Path):
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        path = folder / "butterflyfx.sqlite3"
        assert str(path) in open_error(path)
    finally:
        folder.chmod(0o700)


def test_a_file_from_a_newer_butterflyfx_is_refused_rather_than_downgraded(tmp_path: Path):
    path = tmp_path / "future.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 5}")
    message = open_error(path)
    assert str(path) in message and "upgrade ButterflyFX" in message


def test_an_in_memory_database_is_refused_in_favour_of_storage_memory():
    with pytest.raises(ValueError, match="storage.memory"):
        SqliteStore(":memory:")


# -- as a plugin ----------------------------------------------------------------------------


def context(tmp_path: Path, section: str = "") -> ServerContext:
    config_file = tmp_path / "butterflyfx.toml"
    data_dir = (tmp_path / "data").as_posix()
    config_file.write_text(
        f'plugins = ["storage.sqlite"]\n[server]\ndata_dir = "{data_dir}"\n{section}'
    )
    return ServerContext.build(read_config(config_file))


def test_with_no_section_the_store_lives_in_the_data_folder_and_reports_healthy(tmp_path: Path):
    ctx = context(tmp_path)

    async def main() -> tuple[str, dict[str, object], object]:
        await ctx.start()
        try:
            await ctx.substrates.create(TENANT, "lambda", "lambda **kw: kw.get('x', 0) + 1")
            status, plugins = await ctx.health()
            return status, dict(plugins["storage.sqlite"].detail), ctx.store
        finally:
            await ctx.stop()

    status, detail, store = asyncio.run(main())
    path = tmp_path / "data" / "butterflyfx.sqlite3"
    assert isinstance(store, SqliteStore) and store.path == path
    assert status == "ok"
    assert detail == {
        "path": str(path),
        "schema_version": len(MIGRATIONS),
        "substrates": 1,
        "synchronous": "full",
    }


def test_the_section_sets_the_file_and_durability(tmp_path: Path):
    path = (tmp_path / "elsewhere" / "fx.db").as_posix()
    ctx = context(
        tmp_path,
        f'[storage.sqlite]\npath = "{path}"\nsynchronous = "normal"\nbusy_timeout_ms = 250\n',
    )
    store = storage_sqlite.butterflyfx_storage(ctx)
    assert (store.path, store.synchronous, store.busy_timeout_ms) == (Path(path), "normal", 250)


@pytest.mark.parametrize(
    ("line", "key"),
    [('synchronous = "off"', "synchronous"), ("busy_timeout_ms = -1", "busy_timeout_ms")],
)
def test_a_bad_setting_stops_start_up_naming_the_key(tmp_path: Path, line: str, key: str):
    with pytest.raises(ConfigError) as caught:
        context(tmp_path, f"[storage.sqlite]\n{line}\n")
    assert (caught.value.section, caught.value.key) == ("storage.sqlite", key)


def test_health_before_the_store_opens_is_down_and_names_the_file(tmp_path: Path):
    ctx = context(tmp_path)
    health = asyncio.run(storage_sqlite.butterflyfx_health(ctx))
    assert health is not None and health.status == "down"
    assert health.detail["path"] == str(tmp_path / "data" / "butterflyfx.sqlite3")


# -- relationships: the schema graph.sql reads ---------------------------------------------


def test_the_relationships_table_has_the_schema_graph_engines_query(tmp_path: Path):
    path = tmp_path / "store.sqlite3"

    async def migrate_a_new_file() -> None:
        await (await opened(path)).close()

    asyncio.run(migrate_a_new_file())
    with sqlite3.connect(path) as db:
        columns = [row[1:6] for row in db.execute("PRAGMA table_info(relationships)")]
        foreign = sorted(row[2:7] for row in db.execute("PRAGMA foreign_key_list(relationships)"))
        indexes = {
            name: [row[2] for row in db.execute(f"PRAGMA index_info({name})")]
            for name in ("relationships_by_source", "relationships_by_target")
        }
    assert columns == [
        ("tenant", "TEXT", 1, None, 1),
        ("identity_key", "BIGINT", 1, None, 2),
        ("source_key", "BIGINT", 1, None, 0),
        ("target_key", "BIGINT", 1, None, 0),
        ("relationship_type", "TEXT", 1, None, 0),
        ("bidirectional", "SMALLINT", 1, None, 0),
        ("weight", "DOUBLE PRECISION", 0, None, 0),
        ("metadata", "TEXT", 1, None, 0),
        ("created_at", "TEXT", 0, None, 0),
    ]
    # (table, from, to, on update, on delete) for each column of both foreign keys.
    assert foreign == sorted(
        [
            ("substrates", "tenant", "tenant", "NO ACTION", "CASCADE"),
            ("substrates", "source_key", "identity_key", "NO ACTION", "CASCADE"),
            ("substrates", "tenant", "tenant", "NO ACTION", "CASCADE"),
            ("substrates", "target_key", "identity_key", "NO ACTION", "CASCADE"),
        ]
    )
    assert indexes == {
        "relationships_by_source": ["tenant", "source_key", "relationship_type"],
        "relationships_by_target": ["tenant", "target_key", "relationship_type"],
    }


def test_a_relationship_row_holds_signed_keys_a_flag_json_and_the_substrates_time_format(
    tmp_path: Path,
):
    path = tmp_path / "store.sqlite3"
    low, high = make_substrate(1, identity=5), make_substrate(2, identity=2**64 - 3)
    plain = make_relationship(high, low, "sibling", bidirectional=True, metadata={"é": [1.5]})
    weighted = make_relationship(low, high, "dependency", weight=2, created_at=None)

    async def main() -> None:
        store = await opened(path)
        try:
            for item in (low, high):
                await store.put_substrate(TENANT, item)
            for relationship in (plain, weighted):
                await store.put_relationship(TENANT, relationship)
        finally:
            await store.close()

    asyncio.run(main())
    with sqlite3.connect(path) as db:
        rows = {
            row[0]: row[1:]
            for row in db.execute(
                "SELECT identity_key, tenant, source_key, target_key, relationship_type, "
                "bidirectional, weight, metadata, created_at FROM relationships"
            )
        }
        substrate_time = db.execute("SELECT created_at FROM substrates LIMIT 1").fetchone()[0]
    assert rows == {
        plain.identity - 2**63: (
            TENANT, 2**63 - 3, 5 - 2**63, "sibling", 1, None, '{"\\u00e9":[1.5]}', substrate_time
        ),
        weighted.identity - 2**63: (
            TENANT, 5 - 2**63, 2**63 - 3, "dependency", 0, 2.0, "{}", None
        ),
    }  # fmt: skip
    assert substrate_time == "2024-05-17T08:30:15Z"


def test_a_version_1_file_migrates_to_relationships_keeping_its_substrates(tmp_path: Path):
    path = tmp_path / "old.sqlite3"
    substrates = [make_substrate(i, {"n": i, "name": f"old-{i}"}) for i in range(5)]
    stats = InvocationStats(4, 1, 2.5, None)

    async def write_with_version_1() -> None:
        store = await opened(path, migrations=MIGRATIONS[:1])
        try:
            for substrate in substrates:
                await store.put_substrate(TENANT, substrate)
            await store.add_invocations(TENANT, {substrates[0].identity: stats})
        finally:
            await store.close()

    asyncio.run(write_with_version_1())
    assert file_facts(path)[1:] == (1, {"substrates", "invocation_totals"})

    async def open_with_version_2() -> None:
        store = await opened(path)
        try:
            assert store.schema_version == 2
            for substrate in substrates:
                assert await store.get_substrate(TENANT, substrate.identity) == substrate
            assert await store.invocation_stats(TENANT, substrates[0].identity) == stats
            relationship = make_relationship(substrates[0], substrates[1], "lineage")
            assert await store.put_relationship(TENANT, relationship) == (relationship, True)
            query = SubstrateQuery(name_prefix="old-", has_relationship_type="lineage")
            found = await store.search_substrates(TENANT, query, limit=10)
            assert found == sorted(substrates[:2], key=lambda s: s.identity)
            assert await store.delete_substrate(TENANT, substrates[1].identity)
            assert await store.get_relationship(TENANT, relationship.identity) is None
        finally:
            await store.close()

    asyncio.run(open_with_version_2())
    mode, version, tables = file_facts(path)
    assert (mode, version) == ("wal", 2) and "relationships" in tables
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []


# -- relationships: SQL for graph engines ---------------------------------------------------


def test_graph_engines_read_the_store_with_read_only_sql(tmp_path: Path):
    path = tmp_path / "store.sqlite3"
    chain = [make_substrate(i) for i in range(4)]
    links = [make_relationship(a, b, "dependency") for a, b in pairwise(chain)]

    async def main() -> None:
        store = await opened(path)
        try:
            assert isinstance(store, SqlDatabase) and store.sql_dialect == "sqlite"
            for substrate in chain:
                await store.put_substrate(TENANT, substrate)
            for link in links:
                await store.put_relationship(TENANT, link)
            walk = await store.sql_fetch(
                "WITH RECURSIVE reach(key, depth) AS ("
                " SELECT ?, 0 UNION"
                " SELECT r.target_key, reach.depth + 1 FROM relationships AS r"
                " JOIN reach ON r.tenant = ? AND r.source_key = reach.key"
                ") SELECT key, depth FROM reach ORDER BY depth",
                [chain[0].identity - 2**63, TENANT],
            )
            assert walk == [(s.identity - 2**63, depth) for depth, s in enumerate(chain)]
            assert all(type(row) is tuple for row in walk)
            # The reader is query_only: SQL handed in cannot write around the write lock.
            with pytest.raises(sqlite3.OperationalError, match="readonly"):
                await store.sql_fetch("DELETE FROM relationships")
            with pytest.raises((sqlite3.Warning, sqlite3.ProgrammingError)):
                await store.sql_fetch("SELECT 1; DELETE FROM relationships")
            assert len(await store.all_relationships(TENANT, limit=10)) == 3
            # The store's own writes still go through.
            assert await store.delete_substrate(TENANT, chain[1].identity)
            assert await store.sql_fetch("SELECT COUNT(*) FROM relationships") == [(1,)]
        finally:
            await store.close()

    asyncio.run(main())


def test_listing_a_substrates_relationships_reads_the_two_indexes_not_the_whole_table(
    tmp_path: Path,
):
    hub, others = make_substrate(0), [make_substrate(i) for i in range(1, 30)]
    relationships = [make_relationship(hub, o, "dependency") for o in others[:10]]
    relationships += [make_relationship(o, hub, "sibling", bidirectional=True) for o in others[10:]]
    relationships += [make_relationship(a, b, "lineage") for a, b in pairwise(others)]

    async def main() -> list[tuple[str, list[str]]]:
        store = await opened(tmp_path / "store.sqlite3")
        statements: list[tuple[str, tuple[object, ...]]] = []
        real_read = store._read

        async def recording_read(sql: str, parameters=()):  # the real read, remembered
            statements.append((sql, tuple(parameters)))
            return await real_read(sql, parameters)

        try:
            for substrate in (hub, *others):
                await store.put_substrate(TENANT, substrate)
            for relationship in relationships:
                await store.put_relationship(TENANT, relationship)
            store._read = recording_read  # type: ignore[method-assign]
            for direction in ("outgoing", "incoming"):
                await store.list_relationships(TENANT, hub.identity, direction, limit=5)
                await store.list_relationships(
                    TENANT, hub.identity, direction, types=["sibling"], limit=5, after=2**40
                )
            await store.search_substrates(
                TENANT, SubstrateQuery(has_relationship_type="dependency"), limit=5
            )
            store._read = real_read  # type: ignore[method-assign]
            plans = []
            for sql, parameters in statements:
                rows = await store.sql_fetch(f"EXPLAIN QUERY PLAN {sql}", parameters)
                plans.append((sql, [str(row[-1]) for row in rows]))
            return plans
        finally:
            await store.close()

    plans = asyncio.run(main())
    assert len(plans) == 5
    for sql, steps in plans:
        reads = [step for step in steps if "relationships" in step]
        assert reads, (sql, steps)
        for step in reads:
            assert "relationships_by_source" in step or "relationships_by_target" in step, steps
            assert "(tenant=? AND" in step, steps  # the end's key is used, not only the tenant


# -- relationships: deletes and creates racing ------------------------------------------------


def test_put_relationship_to_an_end_another_worker_just_deleted_names_that_end(tmp_path: Path):
    path = tmp_path / "store.sqlite3"
    kept, doomed = make_substrate(1), make_substrate(2)

    async def main() -> None:
        one, two = await opened(path), await opened(path)
        try:
            for substrate in (kept, doomed):
                await one.put_substrate(TENANT, substrate)
            assert await one.delete_substrate(TENANT, doomed.identity)
            for relationship, end in (
                (make_relationship(kept, doomed), "target"),
                (make_relationship(doomed, kept), "source"),
            ):
                with pytest.raises(MissingEnd) as caught:
                    await two.put_relationship(TENANT, relationship)
                assert (caught.value.end, caught.value.identity) == (end, doomed.identity)
            assert await two.count_relationships(TENANT) == {}
        finally:
            await two.close()
            await one.close()

    asyncio.run(main())


def test_concurrent_deletes_and_creates_never_leave_a_dangling_relationship_visible(
    tmp_path: Path, spawn: type[Child]
):
    """Two worker processes share the file: one relates substrates, the other deletes
    them. Meanwhile this process reads through ``sql_fetch`` (what graph.sql sees) and
    joins every relationship to its two ends, again and again: none is ever missing."""
    path, go = tmp_path / "race.sqlite3", tmp_path / "go"
    base, doomed, rounds = 120, 90, 600

    async def put_base() -> None:
        store = await opened(path)
        try:
            for i in range(base):
                await store.put_substrate(TENANT, make_substrate(i))
        finally:
            await store.close()

    asyncio.run(put_base())
    relater = spawn(RELATE_WHILE_OTHERS_DELETE, str(path), str(go), str(base), str(rounds))
    deleter = spawn(DELETE_BASE, str(path), str(go), str(base), str(doomed))
    start_together([relater, deleter], go)

    async def watch() -> tuple[int, int, float]:
        reader = await opened(path)
        checks, most_seen, dangling = 0, 0, 0.0
        try:
            deadline = asyncio.get_running_loop().time() + TIMEOUT
            while relater.process.poll() is None or deleter.process.poll() is None:
                assert asyncio.get_running_loop().time() < deadline, "the workers never ended"
                [(seen, missing)] = await reader.sql_fetch(DANGLING)
                checks, most_seen, dangling = checks + 1, max(most_seen, seen), dangling + missing
                await asyncio.sleep(0)
            [(seen, missing)] = await reader.sql_fetch(DANGLING)
            return checks, most_seen, dangling + missing
        finally:
            await reader.close()

    checks, most_seen, dangling = asyncio.run(watch())
    assert dangling == 0
    outcome = json.loads(relater.next_line())
    relater.finish()
    assert int(deleter.next_line()) == doomed
    deleter.finish()
    # The race really ran: relationships were there to see, and each refusal was right.
    assert checks > 0 and most_seen > 0
    assert outcome["wrong"] == []
    assert outcome["created"] > 0 and outcome["created"] + outcome["refused"] <= rounds

    async def survivors() -> tuple[set[int], list[tuple[int, int]]]:
        store = await opened(path)
        try:
            present = set()
            after = None
            while page := await store.list_substrates(TENANT, limit=100, after=after):
                present |= {s.identity for s in page}
                after = page[-1].identity
            edges = await store.all_relationships(TENANT, limit=10_000)
            return present, [(r.source, r.target) for r in edges]
        finally:
            await store.close()

    present, edges = asyncio.run(survivors())
    assert all(source in present and target in present for source, target in edges)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
