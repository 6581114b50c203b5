"""What the journal file promises beyond the conformance suite: a crash's torn last line
loses nothing acknowledged, a damaged file is refused with its line named, compaction
shrinks the file under the feet of another open store, and two processes writing at
once create each substrate exactly once."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from butterflyfx_storage_example import JournalError, JournalStore

from butterflyfx.kernel import Relationship, Substrate
from butterflyfx.testing.storage import make_relationship, make_substrate

TENANT = "acme"
PROCESS_TIMEOUT = 120.0  # only keeps a stuck run from hanging; nothing here is timed


def lines_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="ascii").splitlines()]


async def write(path: Path, *items: Substrate | Relationship, **options) -> None:
    store = JournalStore(path, **options)
    await store.open()
    try:
        for item in items:
            if isinstance(item, Substrate):
                await store.put_substrate(TENANT, item)
            else:
                await store.put_relationship(TENANT, item)
    finally:
        await store.close()


async def everything(path: Path, **options) -> tuple[list[Substrate], list[Relationship]]:
    store = JournalStore(path, **options)
    await store.open()
    try:
        substrates = await store.list_substrates(TENANT, limit=1000)
        relationships = await store.all_relationships(TENANT, limit=1000)
        return substrates, relationships
    finally:
        await store.close()


def test_a_torn_last_line_is_ignored_and_cut_off_by_the_next_write(tmp_path):
    path = tmp_path / "store.jsonl"
    first, second, third = make_substrate(1), make_substrate(2), make_substrate(3)
    asyncio.run(write(path, first, second, compact_at_close=False))
    whole = path.read_bytes()
    # A writer that died in the middle of its line: the write was never acknowledged.
    path.write_bytes(whole + b'{"op":"substrates","tenant":"acme","items":[{"id":4')

    substrates, _ = asyncio.run(everything(path, compact_at_close=False))
    asyncio.run(write(path, third, compact_at_close=False))

    assert {s.identity for s in substrates} == {first.identity, second.identity}
    assert path.read_bytes().startswith(whole)
    assert [record.get("op") for record in lines_of(path)] == [
        None, "substrates", "substrates", "substrates"
    ]  # fmt: skip
    substrates, _ = asyncio.run(everything(path))
    assert {s.identity for s in substrates} == {first.identity, second.identity, third.identity}


def test_a_damaged_line_stops_the_open_naming_the_file_and_the_line(tmp_path):
    path = tmp_path / "store.jsonl"
    asyncio.run(write(path, make_substrate(1), make_substrate(2), compact_at_close=False))
    lines = path.read_text(encoding="ascii").splitlines(keepends=True)
    lines[2] = lines[2].replace('"items"', '"itemz"')
    path.write_text("".join(lines), encoding="ascii")

    with pytest.raises(JournalError, match=r"store\.jsonl', line 3: a damaged record"):
        asyncio.run(everything(path))


def test_a_file_that_is_not_a_journal_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("shopping: eggs, flour\n", encoding="utf-8")

    with pytest.raises(JournalError, match=r"notes\.txt' is not a storage\.example journal"):
        asyncio.run(everything(path))
    assert path.read_text(encoding="utf-8") == "shopping: eggs, flour\n"


def test_closing_compacts_the_journal_to_its_live_data(tmp_path):
    path = tmp_path / "store.jsonl"
    a, b, c = make_substrate(1), make_substrate(2), make_substrate(3)
    kept = make_relationship(a, b)

    async def churn() -> None:
        store = JournalStore(path)
        await store.open()
        try:
            for substrate in (a, b, c):
                await store.put_substrate(TENANT, substrate)
            await store.put_relationship(TENANT, kept)
            await store.put_relationship(TENANT, make_relationship(b, c))
            await store.delete_substrate(TENANT, c.identity)  # and b -> c with it
            for version in range(5):
                await store.update_metadata(TENANT, a.identity, {"v": version}, now=a.created_at)
            assert len(lines_of(path)) == 1 + 5 + 1 + 5
        finally:
            await store.close()

    asyncio.run(churn())

    assert [record.get("op") for record in lines_of(path)] == [None, "substrates", "relationships"]
    substrates, relationships = asyncio.run(everything(path))
    assert [s.identity for s in substrates] == sorted([a.identity, b.identity])
    assert next(s for s in substrates if s.identity == a.identity).metadata == {"v": 4}
    assert relationships == [kept]


def test_a_store_open_while_another_compacts_reads_the_new_file_and_writes_on(tmp_path):
    path = tmp_path / "store.jsonl"
    a, b, c = make_substrate(1), make_substrate(2), make_substrate(3)

    async def story() -> None:
        staying, leaving = JournalStore(path), JournalStore(path)
        await staying.open()
        await leaving.open()
        await leaving.put_substrate(TENANT, a)
        await leaving.put_substrate(TENANT, b)
        await leaving.delete_substrate(TENANT, b.identity)
        await leaving.close()  # compacts: the journal is a new file now
        try:
            assert await staying.get_substrate(TENANT, a.identity) == a
            assert await staying.get_substrate(TENANT, b.identity) is None
            assert await staying.put_substrate(TENANT, c) == (c, True)
        finally:
            await staying.close()

    asyncio.run(story())

    substrates, _ = asyncio.run(everything(path))
    assert {s.identity for s in substrates} == {a.identity, c.identity}


WRITER = textwrap.dedent(
    """
    import asyncio, json, sys
    from pathlib import Path
    from butterflyfx_storage_example import JournalStore
    from butterflyfx.testing.storage import make_substrate

    async def main(path, first, last):
        store = JournalStore(Path(path))
        await store.open()
        try:
            created = []
            for i in range(first, last):
                _, new = await store.put_substrate("acme", make_substrate(i))
                created.append([i, new])
            return created
        finally:
            await store.close()

    print(json.dumps(asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))))
    """
)


def test_two_processes_writing_one_journal_create_each_substrate_exactly_once(tmp_path):
    path = tmp_path / "store.jsonl"
    # Substrates 0-119 and 60-179: the middle sixty are put by both processes at once.
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), str(first), str(first + 120)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for first in (0, 60)
    ]
    answers = []
    for writer in writers:
        out, err = writer.communicate(timeout=PROCESS_TIMEOUT)
        assert writer.returncode == 0, err
        answers.extend(json.loads(out))

    created = [i for i, new in answers if new]
    assert sorted(created) == list(range(180))
    substrates, _ = asyncio.run(everything(path))
    expected = sorted(make_substrate(i).identity for i in range(180))
    assert [s.identity for s in substrates] == expected
