"""``butterflyfx export`` and ``butterflyfx import`` as the real command: a tenant written as
NDJSON by one real server and read into another, failures reported, an import resumed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from butterflyfx.interface.client import ButterflyFX
from butterflyfx.kernel import Substrate
from butterflyfx.testing.pytest_plugin import RunningServer, ServerLauncher

COMMAND = str(Path(sys.executable).with_name("butterflyfx"))
TIMEOUT = 90.0


def butterflyfx(target: RunningServer, *argv: str):
    return subprocess.run(
        [COMMAND, *argv, "--url", target.url, "--key", str(target.admin_key)],
        env={**os.environ, "NO_COLOR": "1"}, capture_output=True, text=True, timeout=TIMEOUT,
    )  # fmt: skip


@pytest.fixture(scope="module")
def other(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A second, empty server to import into."""
    launcher = ServerLauncher(tmp_path_factory.mktemp("import-server"))
    try:
        yield launcher.start(["storage.sqlite", "graph.sql", "http", "auth.apikey"])
    finally:
        launcher.kill_all()


def tenant(target: RunningServer) -> tuple[dict[str, dict], set[tuple]]:
    """The tenant's substrates (id: metadata) and relationships, to compare two servers."""
    with ButterflyFX(target.url, api_key=target.admin_key, retries=0) as client:
        substrates = {s.substrate_id: s.metadata for s in client.list_substrates()}
        relationships = {
            (r.relationship_id, r.source_id, r.target_id, r.relationship_type, r.bidirectional)
            for substrate_id in substrates
            for r in client.outgoing(substrate_id)
        }
    return substrates, relationships


def test_a_tenant_exported_from_one_server_is_imported_into_another(
    server, other, client, tmp_path
):
    made = [
        client.create_substrate("lambda", f"lambda **kw: {n} * kw.get('x', 1)", {"name": f"s{n}"})
        for n in range(3)
    ]
    ids = [s.substrate_id for s in made]
    client.create_relationship(ids[0], ids[1], "dependency", weight=2.0)
    client.create_relationship(ids[1], ids[2], "sibling", bidirectional=True)

    dump = tmp_path / "tenant.ndjson"
    exported = butterflyfx(server, "export", "--output", str(dump))
    assert exported.returncode == 0, exported.stderr
    assert exported.stderr == "butterflyfx: exported 3 substrates and 2 relationships\n"
    records = [json.loads(line) for line in dump.read_text(encoding="utf-8").splitlines()]
    assert [r["kind"] for r in records] == ["substrate"] * 3 + ["relationship"] * 2
    streamed = butterflyfx(server, "export")
    assert streamed.stdout == dump.read_text(encoding="utf-8")

    imported = butterflyfx(other, "import", str(dump), "--json")
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout) == {
        "substrates": 3, "relationships": 2, "failed": 0, "skipped": 0,
    }  # fmt: skip
    assert tenant(other) == tenant(server)
    assert not Path(f"{dump}.failed").exists()


def test_failed_lines_are_reported_and_an_import_resumes(other, tmp_path):
    with ButterflyFX(other.url, api_key=other.admin_key, retries=0) as client:
        known = client.create_substrate("lambda", "lambda **kw: 'known'").substrate_id
    source = tmp_path / "batch.ndjson"
    lines = [
        {"kind": "substrate", "expression_type": "lambda", "expression_code": "lambda **kw: 7"},
        {"kind": "relationship", "source_id": known, "target_id": known,
         "relationship_type": "likes"},
        {"expression_type": "lambda", "expression_code": "lambda **kw: 8"},
    ]  # fmt: skip
    text = [json.dumps(lines[0]), json.dumps(lines[1]), "{not json", json.dumps(lines[2])]
    source.write_text("\n".join(text) + "\n", encoding="utf-8")

    first = butterflyfx(other, "import", str(source), "--batch", "2")
    assert first.returncode == 1
    assert first.stderr == (
        "butterflyfx: imported 2 substrates and 0 relationships; "
        f"2 lines failed, see {source}.failed\n"
    )
    failures = [json.loads(line) for line in Path(f"{source}.failed").read_text().splitlines()]
    assert [f["line"] for f in failures] == [2, 3]
    assert failures[0]["error"].startswith("422 unknown-relationship-type: ")
    assert failures[1]["error"].startswith("JSONDecodeError: ")
    assert Path(f"{source}.checkpoint").read_text() == "4\n"

    more = {"expression_type": "lambda", "expression_code": "lambda **kw: 9"}
    with source.open("a", encoding="utf-8") as out:
        out.write(json.dumps(more) + "\n")
    resumed = butterflyfx(other, "import", str(source), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stderr == (
        "butterflyfx: imported 1 substrate and 0 relationships"
        " (the first 4 lines were done before)\n"
    )
    assert not Path(f"{source}.failed").exists()


def test_an_unreadable_file_is_a_usage_error(other, tmp_path):
    done = butterflyfx(other, "import", str(tmp_path / "absent.ndjson"))
    assert done.returncode == 2 and done.stderr.startswith("butterflyfx: cannot read ")


def test_a_batch_with_one_bad_line_stores_the_others_and_names_the_line(other, tmp_path):
    good = [Substrate.create("lambda", f"lambda **kw: kw.get('x', 0) + {n}") for n in range(4)]
    lines = [
        {"kind": "substrate", "expression_type": "lambda", "expression_code": s.expression_code,
         "substrate_id": s.substrate_id}
        for s in good
    ]  # fmt: skip
    lines.insert(2, {"kind": "substrate", "expression_type": "lambda",
                     "expression_code": "lambda **kw: __import__('os')"})  # fmt: skip
    lines.append(
        {
            "kind": "relationship",
            "source_id": good[0].substrate_id,
            "target_id": good[1].substrate_id,
            "relationship_type": "dependency",
        }
    )
    lines.append(
        {
            "kind": "relationship",
            "source_id": good[0].substrate_id,
            "target_id": "0x00000000000000AB",
            "relationship_type": "dependency",
        }
    )
    source = tmp_path / "one-bad.ndjson"
    text = [json.dumps(line) for line in lines]
    source.write_text("\n".join(text) + "\n", encoding="utf-8")

    done = butterflyfx(other, "import", str(source), "--json")

    assert done.returncode == 1
    assert json.loads(done.stdout) == {
        "substrates": 4, "relationships": 1, "failed": 2, "skipped": 0,
    }  # fmt: skip
    failures = [json.loads(line) for line in Path(f"{source}.failed").read_text().splitlines()]
    assert [(f["line"], f["text"]) for f in failures] == [(3, text[2]), (7, text[6])]
    assert failures[0]["error"].startswith("422 expression-rejected: ")
    assert failures[1]["error"] == ("404 not-found: target_id: no substrate 0x00000000000000AB")
    assert Path(f"{source}.checkpoint").read_text() == "7\n"
    with ButterflyFX(other.url, api_key=other.admin_key, retries=0) as client:
        for substrate in good:
            assert client.get_substrate(substrate.substrate_id).version == 1
        (related,) = client.outgoing(good[0].substrate_id)
        assert related.target_id == good[1].substrate_id


def test_a_batch_larger_than_the_server_takes_is_a_usage_error(other, tmp_path):
    source = tmp_path / "any.ndjson"
    source.write_text("{}\n", encoding="utf-8")
    done = butterflyfx(other, "import", str(source), "--batch", "501")
    assert done.returncode == 2
    assert done.stderr == "butterflyfx: --batch must be from 1 to 500\n"


def test_export_piped_into_import_copies_a_tenant_between_servers(server, other, client, tmp_path):
    made = client.create_substrate("lambda", "lambda **kw: kw.get('km', 0) * 0.621371",
                                   {"name": "miles"})  # fmt: skip
    source = [COMMAND, "export", "--url", server.url, "--key", str(server.admin_key)]
    target = [COMMAND, "import", "-", "--json", "--url", other.url, "--key", str(other.admin_key)]
    environment = {**os.environ, "NO_COLOR": "1"}
    with subprocess.Popen(source, stdout=subprocess.PIPE, env=environment) as exporting:
        imported = subprocess.run(
            target, stdin=exporting.stdout, capture_output=True, text=True,
            timeout=TIMEOUT, cwd=tmp_path, env=environment,
        )  # fmt: skip
    assert exporting.returncode == 0 and imported.returncode == 0, imported.stderr
    counts = json.loads(imported.stdout)
    everything = client.stats()
    assert counts["substrates"] == everything.substrates
    assert counts["relationships"] == everything.relationships.total
    with ButterflyFX(other.url, api_key=other.admin_key, retries=0) as copy:
        assert copy.get_substrate(made.substrate_id).metadata == {"name": "miles"}
    assert not (tmp_path / "import.failed").exists() and not list(tmp_path.glob("*.checkpoint"))

    again = butterflyfx(other, "import", "-", "--resume")
    assert again.returncode == 2 and "--resume needs a FILE" in again.stderr
