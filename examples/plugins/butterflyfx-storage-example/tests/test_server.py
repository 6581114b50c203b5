"""storage.example behind real ``butterflyfx serve`` processes, started by the
``butterflyfx_server`` fixture of butterflyfx's pytest plugin: servers and workers share
one journal, a restarted server finds every write, and mistakes stop the start with the
plugin's own words."""

from __future__ import annotations

import json

import httpx
import pytest

from butterflyfx.testing.process import ProcessNotReady

PLUGINS = ["storage.example", "http"]
SECTION = '[storage.example]\npath = "journal.jsonl"\n'
TIMEOUT = 60.0  # only keeps a stuck request from hanging; nothing here is timed


def substrate(n: int) -> dict:
    return {"expression_type": "lambda", "expression_code": f"lambda **kw: kw.get('x', 0) * {n}"}


def test_two_servers_on_one_journal_see_each_others_writes_and_a_restart_keeps_them(
    butterflyfx_server,
):
    # Two instances on one data folder, the first with two workers: three processes share
    # the journal, and what each acknowledged is what the others answer.
    one = butterflyfx_server.start(PLUGINS, sections=SECTION, workers=2)
    two = butterflyfx_server.start(config=one.config, data_dir=one.data_dir)
    with (
        httpx.Client(base_url=one.url, timeout=TIMEOUT) as a,
        httpx.Client(base_url=two.url, timeout=TIMEOUT) as b,
    ):
        created = [
            (a if n % 2 else b).post("/api/v1/substrates", json=substrate(n)) for n in range(1, 9)
        ]
        ids = [answer.json()["substrate_id"] for answer in created]
        read_on_the_other = [(b if n % 2 else a).get(f"/api/v1/substrates/{i}") for n, i in
                             enumerate(ids, start=1)]  # fmt: skip
        related = [
            b.post(
                "/api/v1/relationships",
                json={"source_id": source, "target_id": target, "relationship_type": "sibling"},
            )
            for source, target in zip(ids, ids[1:], strict=False)
        ]
        outgoing_on_a = a.get(f"/api/v1/relationships/outgoing/{ids[0]}").json()["items"]
        deleted_on_a = a.delete(f"/api/v1/substrates/{ids[-1]}")
        gone_on_b = b.get(f"/api/v1/substrates/{ids[-1]}")
        invoked_on_b = b.post(f"/api/v1/substrates/{ids[2]}/invoke", json={"parameters": {"x": 5}})

    assert [answer.status_code for answer in created] == [201] * 8
    assert [answer.status_code for answer in read_on_the_other] == [200] * 8
    assert [answer.status_code for answer in related] == [201] * 7
    assert [item["target_id"] for item in outgoing_on_a] == [ids[1]]
    assert deleted_on_a.status_code == 204 and gone_on_b.status_code == 404
    assert invoked_on_b.status_code == 200 and invoked_on_b.json()["result"] == 15

    assert two.stop() == 0
    again = one.restart()  # the last to close compacts the journal; the new server reads it
    with httpx.Client(base_url=again.url, timeout=TIMEOUT) as client:
        listed = client.get("/api/v1/substrates", params={"limit": 100}).json()["items"]
        outgoing = client.get(f"/api/v1/relationships/outgoing/{ids[-2]}").json()["items"]
        health = client.get("/api/v1/health").json()["plugins"]["storage.example"]
        stats = client.get("/api/v1/query/stats").json()

    assert sorted(item["substrate_id"] for item in listed) == sorted(ids[:-1])
    assert outgoing == []  # the relationship to the deleted substrate went with it
    assert health["status"] == "ok"
    assert (health["substrates"], health["relationships"]) == (7, 6)
    assert stats["storage"] == "storage.example" and stats["invocations"]["count"] == 1
    journal = (one.data_dir / "journal.jsonl").read_text(encoding="ascii").splitlines()
    assert json.loads(journal[0]) == {"journal": "butterflyfx-storage-example", "format": 1}
    # Compacted by the last server to close: one line per kind of data, nothing deleted.
    assert [json.loads(entry)["op"] for entry in journal[1:]] == [
        "substrates", "invocations", "relationships"
    ]  # fmt: skip


def test_a_mistake_in_the_section_stops_the_start_naming_the_key(butterflyfx_server):
    with pytest.raises(ProcessNotReady) as refused:
        butterflyfx_server.start(PLUGINS, sections="[storage.example]\nfsnyc = false\n")

    assert "section [storage.example], key 'fsnyc': unknown key" in str(refused.value)


def test_a_file_that_is_not_a_journal_stops_the_start_naming_the_plugin(
    butterflyfx_server, tmp_path
):
    notes = tmp_path / "notes.txt"
    notes.write_text("shopping: eggs, flour\n", encoding="utf-8")

    with pytest.raises(ProcessNotReady) as refused:
        butterflyfx_server.start(PLUGINS, sections=f'[storage.example]\npath = "{notes}"\n')

    message = str(refused.value)
    assert "plugin 'storage.example' failed to open its store" in message
    assert f"'{notes}' is not a storage.example journal" in message
    assert notes.read_text(encoding="utf-8") == "shopping: eggs, flour\n"
