"""Whatever a client sends to the relationship and query endpoints, it gets a 4xx problem
naming the field that is wrong: never a 500, never a hang."""

from __future__ import annotations

import json

import pytest
from substrate_api import API, named, problem, relate

R = f"{API}/relationships"
Q = f"{API}/query"
GHOST = "0x0000000000000001"
# {a}, {b}: two substrates the scenario creates; {r}: a relationship from a to b
REL = {"source_id": "{a}", "target_id": "{b}", "relationship_type": "sibling"}


def raw(data: bytes, content_type: str | None = "application/json") -> dict:
    return {"data": data, "headers": {"Content-Type": content_type} if content_type else {}}


def qs(**params: str) -> dict:
    return {"query_string": params}


# (method, url, request keywords, status, problem type slug, field)
CASES = [
    # -- POST /relationships
    pytest.param("post", R, {"json": {}}, 422, "validation-failed", "source_id", id="empty"),
    pytest.param("post", R, {"json": {**REL, "relationship_type": None}}, 422,
                 "validation-failed", "relationship_type", id="type null"),
    pytest.param("post", R, {"json": {**REL, "relationship_type": "likes"}}, 422,
                 "unknown-relationship-type", "relationship_type", id="unknown type"),
    pytest.param("post", R, {"json": {**REL, "relationship_type": "x" * 65}}, 422,
                 "validation-failed", "relationship_type", id="type too long"),
    pytest.param("post", R, {"json": {**REL, "source_id": "parser"}}, 400, "invalid-id",
                 "source_id", id="malformed source"),
    pytest.param("post", R, {"json": {**REL, "target_id": "0x" + "F" * 17}}, 400, "invalid-id",
                 "target_id", id="target over 64 bits"),
    pytest.param("post", R, {"json": {**REL, "source_id": 7}}, 422, "validation-failed",
                 "source_id", id="source a number"),
    pytest.param("post", R, {"json": {**REL, "source_id": GHOST}}, 404, "not-found",
                 "source_id", id="unknown source"),
    pytest.param("post", R, {"json": {**REL, "target_id": GHOST}}, 404, "not-found",
                 "target_id", id="unknown target"),
    pytest.param("post", R, {"json": {**REL, "target_id": "{a}"}}, 422, "validation-failed",
                 "target_id", id="self-loop by sibling"),
    pytest.param("post", R, {"json": {**REL, "weight": -1}}, 422, "validation-failed", "weight",
                 id="negative weight"),
    pytest.param("post", R, {"json": {**REL, "weight": "heavy"}}, 422, "validation-failed",
                 "weight", id="weight a string"),
    pytest.param("post", R, {"json": {**REL, "weight": True}}, 422, "validation-failed",
                 "weight", id="weight true"),
    pytest.param("post", R, raw(b'{"source_id": "{a}", "target_id": "{b}", '
                                b'"relationship_type": "sibling", "weight": Infinity}'),
                 400, "malformed-json", None, id="weight Infinity"),
    pytest.param("post", R, raw(b'{"source_id": "{a}", "target_id": "{b}", '
                                b'"relationship_type": "sibling", "weight": 1e999}'),
                 400, "malformed-json", None, id="weight beyond a double"),
    pytest.param("post", R, {"json": {**REL, "bidirectional": "yes"}}, 422, "validation-failed",
                 "bidirectional", id="bidirectional a string"),
    pytest.param("post", R, {"json": {**REL, "metadata": [1]}}, 422, "validation-failed",
                 "metadata", id="metadata an array"),
    pytest.param("post", R, {"json": {**REL, "metadata": {"a": json.loads("[" * 40 + "]" * 40)}}},
                 422, "validation-failed", "metadata", id="metadata nested 41 deep"),
    pytest.param("post", R, {"json": {**REL, "kind": "x"}}, 422, "validation-failed", "kind",
                 id="unknown field"),
    pytest.param("post", R, raw(b"[]"), 422, "validation-failed", None, id="array body"),
    pytest.param("post", R, raw(b'{"source_id": ', None), 415, "unsupported-media-type", None,
                 id="no content type"),
    pytest.param("post", R, raw(b'{"source_id": '), 400, "malformed-json", None,
                 id="truncated JSON"),
    # -- /relationships/{id}
    pytest.param("get", f"{R}/nope", {}, 400, "invalid-id", "relationship_id", id="malformed id"),
    pytest.param("get", f"{R}/{GHOST}", {}, 404, "not-found", "relationship_id",
                 id="unknown relationship"),
    pytest.param("delete", f"{R}/{GHOST}", {}, 404, "not-found", "relationship_id",
                 id="delete unknown"),
    pytest.param("delete", f"{R}/%00", {}, 400, "invalid-id", "relationship_id", id="NUL id"),
    pytest.param("patch", f"{R}/{{r}}", {"json": {}}, 405, "method-not-allowed", None,
                 id="PATCH a relationship"),
    pytest.param("get", f"{R}/{{r}}/extra", {}, 404, "not-found", None, id="unknown route"),
    # -- /relationships/outgoing|incoming/{substrate_id}
    pytest.param("get", f"{R}/outgoing/xyz", {}, 400, "invalid-id", "substrate_id",
                 id="list malformed id"),
    pytest.param("get", f"{R}/incoming/{GHOST}", {}, 404, "not-found", "substrate_id",
                 id="list unknown substrate"),
    pytest.param("get", f"{R}/outgoing/{{a}}", qs(type="likes"), 422,
                 "unknown-relationship-type", "type", id="list unknown type"),
    pytest.param("get", f"{R}/outgoing/{{a}}", qs(type=","), 400, "bad-request", "type",
                 id="list type of commas"),
    pytest.param("get", f"{R}/outgoing/{{a}}", qs(limit="0"), 400, "bad-request", "limit",
                 id="list limit 0"),
    pytest.param("get", f"{R}/outgoing/{{a}}", qs(limit="-5"), 400, "bad-request", "limit",
                 id="list limit negative"),
    pytest.param("get", f"{R}/outgoing/{{a}}", qs(limit="1001"), 400, "bad-request", "limit",
                 id="list limit over a page"),
    pytest.param("get", f"{R}/outgoing/{{a}}", qs(limit="9" * 40), 400, "bad-request", "limit",
                 id="list limit 40 digits"),
    pytest.param("get", f"{R}/outgoing/{{a}}", qs(cursor="forged"), 400, "bad-request", "cursor",
                 id="list forged cursor"),
    pytest.param("get", f"{R}/incoming/{{a}}", qs(types="sibling"), 400, "bad-request", "types",
                 id="list unknown parameter"),
    # -- /relationships/graph
    pytest.param("get", f"{R}/graph", {}, 400, "bad-request", "root", id="graph without root"),
    pytest.param("get", f"{R}/graph", qs(root="zz"), 400, "invalid-id", "root",
                 id="graph malformed root"),
    pytest.param("get", f"{R}/graph", qs(root=GHOST), 404, "not-found", "root",
                 id="graph unknown root"),
    pytest.param("get", f"{R}/graph", qs(root="{a}", depth="two"), 400, "bad-request", "depth",
                 id="graph depth a word"),
    pytest.param("get", f"{R}/graph", qs(root="{a}", depth="7"), 422, "validation-failed",
                 "depth", id="graph depth over the ceiling"),
    pytest.param("get", f"{R}/graph", qs(root="{a}", depth="9" * 18), 422, "validation-failed",
                 "depth", id="graph depth huge"),
    pytest.param("get", f"{R}/graph", qs(root="{a}", max_nodes="0"), 422, "validation-failed",
                 "max_nodes", id="graph max_nodes 0"),
    pytest.param("get", f"{R}/graph", qs(root="{a}", max_nodes="10001"), 422,
                 "validation-failed", "max_nodes", id="graph max_nodes over the ceiling"),
    pytest.param("get", f"{R}/graph", qs(root="{a}", types="sibling,friend"), 422,
                 "unknown-relationship-type", "types", id="graph unknown type"),
    pytest.param("get", f"{R}/graph", qs(root="{a}", max_node="5"), 400, "bad-request",
                 "max_node", id="graph misspelt parameter"),
    # -- /query/traverse
    pytest.param("post", f"{Q}/traverse", {"json": {}}, 422, "validation-failed", "start_id",
                 id="traverse without start"),
    pytest.param("post", f"{Q}/traverse", {"json": {"start_id": "a"*20}}, 400, "invalid-id",
                 "start_id", id="traverse malformed start"),
    pytest.param("post", f"{Q}/traverse", {"json": {"start_id": GHOST}}, 404, "not-found",
                 "start_id", id="traverse unknown start"),
    pytest.param("post", f"{Q}/traverse", {"json": {"start_id": "{a}", "direction": "up"}},
                 422, "validation-failed", "direction", id="traverse direction up"),
    pytest.param("post", f"{Q}/traverse", {"json": {"start_id": "{a}", "max_depth": 7}}, 422,
                 "validation-failed", "max_depth", id="traverse depth over the ceiling"),
    pytest.param("post", f"{Q}/traverse", {"json": {"start_id": "{a}", "max_depth": -1}}, 422,
                 "validation-failed", "max_depth", id="traverse depth negative"),
    pytest.param("post", f"{Q}/traverse", {"json": {"start_id": "{a}", "max_depth": 2.5}}, 422,
                 "validation-failed", "max_depth", id="traverse depth a fraction"),
    pytest.param("post", f"{Q}/traverse", {"json": {"start_id": "{a}", "max_depth": "3"}}, 422,
                 "validation-failed", "max_depth", id="traverse depth a string"),
    pytest.param("post", f"{Q}/traverse", raw(b'{"start_id": "{a}", "max_depth": '
                                              b'123456789012345678901234567890}'), 422,
                 "validation-failed", "max_depth", id="traverse depth beyond 64 bits"),
    pytest.param("post", f"{Q}/traverse", {"json": {"start_id": "{a}", "limit": 0}}, 422,
                 "validation-failed", "limit", id="traverse limit 0"),
    pytest.param("post", f"{Q}/traverse", {"json": {"start_id": "{a}", "limit": 10**6}}, 422,
                 "validation-failed", "limit", id="traverse limit over the ceiling"),
    pytest.param("post", f"{Q}/traverse",
                 {"json": {"start_id": "{a}", "relationship_types": "sibling"}}, 422,
                 "validation-failed", "relationship_types", id="traverse types a string"),
    pytest.param("post", f"{Q}/traverse",
                 {"json": {"start_id": "{a}", "relationship_types": ["sibling", "foe"]}}, 422,
                 "unknown-relationship-type", "relationship_types[1]", id="traverse unknown type"),
    pytest.param("post", f"{Q}/traverse",
                 {"json": {"start_id": "{a}", "relationship_types": ["sibling"] * 65}}, 422,
                 "validation-failed", "relationship_types", id="traverse 65 types"),
    pytest.param("post", f"{Q}/traverse", {"json": {"start_id": "{a}", "depth": 2}}, 422,
                 "validation-failed", "depth", id="traverse unknown field"),
    pytest.param("get", f"{Q}/traverse", {}, 405, "method-not-allowed", None,
                 id="GET traverse"),
    # -- /query/path
    pytest.param("post", f"{Q}/path", {"json": {"source_id": "{a}"}}, 422, "validation-failed",
                 "target_id", id="path without target"),
    pytest.param("post", f"{Q}/path", {"json": {"source_id": "{a}", "target_id": "b!"}}, 400,
                 "invalid-id", "target_id", id="path malformed target"),
    pytest.param("post", f"{Q}/path", {"json": {"source_id": GHOST, "target_id": "{a}"}}, 404,
                 "not-found", "source_id", id="path unknown source"),
    pytest.param("post", f"{Q}/path", {"json": {"source_id": "{b}", "target_id": "{a}"}}, 404,
                 "no-path", "target_id", id="path against the arrow"),
    pytest.param("post", f"{Q}/path",
                 {"json": {"source_id": "{a}", "target_id": "{b}", "weighted": "yes"}}, 422,
                 "validation-failed", "weighted", id="path weighted a string"),
    pytest.param("post", f"{Q}/path",
                 {"json": {"source_id": "{a}", "target_id": "{b}", "max_depth": 100}}, 422,
                 "validation-failed", "max_depth", id="path depth over the ceiling"),
    # -- /query/search
    pytest.param("post", f"{Q}/search", {"json": {"expression_type": "cobol"}}, 422,
                 "unknown-expression-type", "expression_type", id="search unknown language"),
    pytest.param("post", f"{Q}/search", {"json": {"metadata": "name=a"}}, 422,
                 "validation-failed", "metadata", id="search metadata a string"),
    pytest.param("post", f"{Q}/search", {"json": {"created_after": "last week"}}, 422,
                 "validation-failed", "created_after", id="search date not ISO 8601"),
    pytest.param("post", f"{Q}/search", {"json": {"created_before": 1707480000}}, 422,
                 "validation-failed", "created_before", id="search date a number"),
    pytest.param("post", f"{Q}/search", {"json": {"has_relationship_type": "knows"}}, 422,
                 "unknown-relationship-type", "has_relationship_type",
                 id="search unknown relationship type"),
    pytest.param("post", f"{Q}/search", {"json": {"limit": 1001}}, 422, "validation-failed",
                 "limit", id="search limit over a page"),
    pytest.param("post", f"{Q}/search", {"json": {"cursor": "forged"}}, 400, "bad-request",
                 "cursor", id="search forged cursor"),
    pytest.param("post", f"{Q}/search", {"json": {"name": "a"}}, 422, "validation-failed",
                 "name", id="search unknown filter"),
    pytest.param("post", f"{Q}/search", {"json": {"code_contains": "x" * 5000}}, 422,
                 "validation-failed", "code_contains", id="search code 5000 characters"),
    pytest.param("post", f"{Q}/stats", {}, 405, "method-not-allowed", None, id="POST stats"),
]  # fmt: skip


def fill(value, ids):
    if isinstance(value, str):
        for key, identity in ids.items():
            value = value.replace(f"{{{key}}}", identity)
        return value
    if isinstance(value, bytes):
        return fill(value.decode(), ids).encode()
    if isinstance(value, dict):
        return {key: fill(item, ids) for key, item in value.items()}
    if isinstance(value, list):
        return [fill(item, ids) for item in value]
    return value


@pytest.mark.parametrize(("method", "url", "sent", "status", "slug", "field"), CASES)
def test_a_bad_request_gets_a_problem_naming_what_is_wrong(
    serve, method, url, sent, status, slug, field
):
    async def story(client):
        ids = await named(client, "a", "b")
        ids["r"] = (await relate(client, ids["a"], ids["b"]))["relationship_id"]
        response = await getattr(client, method)(fill(url, ids), **fill(sent, ids))
        found = await problem(response, status)
        assert found["type"] == f"https://butterflyfx.dev/problems/{slug}"
        assert found.get("field") == field, found
        if status == 405:
            assert "Allow" in response.headers
        if found["type"].endswith("/unknown-relationship-type"):
            assert "sibling" in found["known_types"]

    serve(story, "storage.memory,graph.memory,http")
