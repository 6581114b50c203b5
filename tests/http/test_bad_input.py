"""Whatever a client sends, it gets a problem it can act on: 4xx naming the field, never a 500."""

from __future__ import annotations

import pytest
from substrate_api import API, MULTIPLY_XY, body, create, problem

JSON = {"Content-Type": "application/json"}
SUBSTRATES = f"{API}/substrates"
ONE = f"{API}/substrates/{{id}}"  # {id}: a substrate the scenario created first
LAMBDA_1 = {"expression_type": "lambda", "expression_code": "lambda **kw: 1"}


def raw(data: bytes, content_type: str | None = "application/json") -> dict:
    return {"data": data, "headers": {"Content-Type": content_type} if content_type else {}}


# (method, url, request keywords, status, problem type slug, field or None)
CASES = [
    pytest.param("post", SUBSTRATES, raw(b'{"expression_type": '), 400, "malformed-json", None,
                 id="truncated JSON"),
    pytest.param("post", SUBSTRATES, raw(b"\xff\xfe{}"), 400, "malformed-json", None,
                 id="not UTF-8"),
    pytest.param("post", SUBSTRATES, raw(b"[" * 5000 + b"]" * 5000), 400, "malformed-json", None,
                 id="JSON nested 5000 deep"),
    pytest.param("post", SUBSTRATES, raw(b"NaN"), 400, "malformed-json", None, id="bare NaN"),
    pytest.param("post", SUBSTRATES, raw(b"[1, 2]"), 422, "validation-failed", None,
                 id="array body"),
    pytest.param("post", SUBSTRATES, raw(b'"lambda"'), 422, "validation-failed", None,
                 id="string body"),
    pytest.param("post", SUBSTRATES, raw(b"null"), 422, "validation-failed", None,
                 id="null body"),
    pytest.param("post", SUBSTRATES, raw(b'{"expression_type": "lambda"}', "text/plain"), 415,
                 "unsupported-media-type", None, id="text/plain"),
    pytest.param("post", SUBSTRATES, raw(b"expression_type=lambda", None), 415,
                 "unsupported-media-type", None, id="no content type"),
    pytest.param("post", SUBSTRATES, {"json": {"expression_type": "lambda"}}, 422,
                 "validation-failed", "expression_code", id="missing expression_code"),
    pytest.param("post", SUBSTRATES, {"json": {}}, 422, "validation-failed", "expression_type",
                 id="empty object"),
    pytest.param("post", SUBSTRATES, {"json": {**LAMBDA_1, "expression_type": 7}}, 422,
                 "validation-failed", "expression_type", id="expression_type a number"),
    pytest.param("post", SUBSTRATES, {"json": {**LAMBDA_1, "expression_code": ["lambda"]}}, 422,
                 "validation-failed", "expression_code", id="expression_code a list"),
    pytest.param("post", SUBSTRATES, {"json": {**LAMBDA_1, "metadata": [1, 2]}}, 422,
                 "validation-failed", "metadata", id="metadata an array"),
    pytest.param("post", SUBSTRATES, {"json": {**LAMBDA_1, "metadata": "name"}}, 422,
                 "validation-failed", "metadata", id="metadata a string"),
    pytest.param("post", SUBSTRATES, {"json": {**LAMBDA_1, "metadata": {"a": {"b": 3 * [[]]}}}},
                 None, None, None, id="metadata nested a little is fine"),
    pytest.param("post", SUBSTRATES, raw(b'{"expression_type":"lambda","expression_code":'
                 b'"lambda **kw: 1","metadata":{"a":' + b"[" * 40 + b"]" * 40 + b"}}"), 422,
                 "validation-failed", "metadata", id="metadata nested 42 deep"),
    pytest.param("post", SUBSTRATES, {"json": {**LAMBDA_1, "id": "0x1"}}, 422,
                 "validation-failed", "id", id="unknown field"),
    pytest.param("post", SUBSTRATES, {"json": {**LAMBDA_1, "expression_type": "cobol"}}, 422,
                 "unknown-expression-type", "expression_type", id="unknown expression type"),
    pytest.param("post", SUBSTRATES,
                 {"json": {**LAMBDA_1, "expression_code": "lambda **kw: __import__('os')"}},
                 422, "expression-rejected", "expression_code", id="dunder import"),
    pytest.param("post", SUBSTRATES, {"json": {**LAMBDA_1, "expression_code": "lambda **kw: ("}},
                 422, "expression-rejected", "expression_code", id="syntax error"),
    pytest.param("post", SUBSTRATES, {"json": {**LAMBDA_1, "expression_code": "1" * 100_000}},
                 422, "expression-rejected", "expression_code", id="100k characters of code"),
    pytest.param("get", f"{SUBSTRATES}/not-an-id", {}, 400, "invalid-id", "substrate_id",
                 id="malformed id"),
    pytest.param("get", f"{SUBSTRATES}/0x{'F' * 17}", {}, 400, "invalid-id", "substrate_id",
                 id="id over 64 bits"),
    pytest.param("delete", f"{SUBSTRATES}/%00", {}, 400, "invalid-id", "substrate_id",
                 id="NUL id"),
    pytest.param("get", f"{SUBSTRATES}/0x0000000000000001", {}, 404, "not-found",
                 "substrate_id", id="unknown id"),
    pytest.param("get", f"{SUBSTRATES}?limit=ten", {}, 400, "bad-request", "limit",
                 id="limit not a number"),
    pytest.param("get", f"{SUBSTRATES}?limit=0", {}, 400, "bad-request", "limit", id="limit 0"),
    pytest.param("get", f"{SUBSTRATES}?limit=99999999999999999999", {}, 400, "bad-request",
                 "limit", id="limit huge"),
    pytest.param("get", f"{SUBSTRATES}?cursor=forged", {}, 400, "bad-request", "cursor",
                 id="forged cursor"),
    pytest.param("post", f"{ONE}/invoke", {"json": {"parameters": [5, 7]}}, 422,
                 "validation-failed", "parameters", id="parameters an array"),
    pytest.param("post", f"{ONE}/invoke", {"json": {"parameters": "x=5"}}, 422,
                 "validation-failed", "parameters", id="parameters a string"),
    pytest.param("post", f"{ONE}/invoke", {"json": {"parameters": {"x": None, "y": 2}}}, 422,
                 "evaluation-error", None, id="None times int"),
    pytest.param("post", f"{ONE}/invoke", {"json": {"parameters": {"x": "ab" * 30_000, "y": 9}}},
                 422, "limit-exceeded", None, id="string blow-up"),
    pytest.param("post", f"{ONE}/invoke", raw(b'{"parameters": {"x": 1' + b"0" * 400 + b"}}"), 400,
                 "malformed-json", None, id="number beyond a double"),
    pytest.param("post", f"{ONE}/invoke",
                 raw(b'{"parameters": {"x": 123456789012345678901234567890, "y": 2}}'), None,
                 None, None, id="integer beyond 64 bits is read as a float"),
    pytest.param("post", f"{ONE}/divide", {"json": {"deep": True}}, 422, "validation-failed",
                 "deep", id="divide takes no options"),
    pytest.param("patch", ONE, {"json": {"metadata": [1]}}, 422, "validation-failed", "metadata",
                 id="patch metadata an array"),
    pytest.param("patch", ONE, {"json": {"expression_code": "lambda **kw: 2"}}, 422,
                 "validation-failed", "expression_code", id="patch the expression"),
    pytest.param("patch", ONE, raw(b"[]", "application/merge-patch+json"), 422,
                 "validation-failed", None, id="patch an array"),
    pytest.param("post", f"{SUBSTRATES}/multiply", {"json": {}}, 422, "validation-failed",
                 "dimensions", id="multiply with neither"),
    pytest.param("post", f"{SUBSTRATES}/multiply",
                 {"json": {"dimensions": [], "substrate_ids": ["{id}", "{id}"]}}, 422,
                 "validation-failed", "substrate_ids", id="multiply with both"),
    pytest.param("post", f"{SUBSTRATES}/multiply", {"json": {"substrate_ids": ["{id}"]}}, 422,
                 "validation-failed", "substrate_ids", id="product of one"),
    pytest.param("post", f"{SUBSTRATES}/multiply", {"json": {"substrate_ids": ["{id}", "x"]}},
                 400, "invalid-id", "substrate_ids[1]", id="product with a malformed id"),
    pytest.param("post", f"{SUBSTRATES}/multiply",
                 {"json": {"substrate_ids": ["{id}", "0x0000000000000001"]}}, 404, "not-found",
                 "substrate_ids[1]", id="product with an unknown id"),
    pytest.param("post", f"{SUBSTRATES}/multiply", {"json": {"substrate_ids": ["{id}", 5]}}, 422,
                 "validation-failed", "substrate_ids[1]", id="product with a number"),
    pytest.param("post", f"{SUBSTRATES}/multiply", {"json": {"dimensions": [1, 2]}}, 422,
                 "validation-failed", "dimensions[0]", id="dimensions not objects"),
    pytest.param("post", f"{SUBSTRATES}/multiply",
                 {"json": {"dimensions": [{"level": 0, "name": "Void", "content": {}}]}}, 422,
                 "inconsistent-dimensions", "dimensions", id="one dimension of nine"),
    pytest.param("put", ONE, {"json": {}}, 405, "method-not-allowed", None, id="PUT"),
    pytest.param("get", f"{ONE}/invoke", {}, 405, "method-not-allowed", None, id="GET invoke"),
    pytest.param("get", f"{API}/substrate", {}, 404, "not-found", None, id="unknown route"),
    pytest.param("get", f"{ONE}/", {}, 404, "not-found", None, id="trailing slash"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "url", "sent", "status", "slug", "field"), CASES)
def test_a_bad_request_gets_a_problem_naming_what_is_wrong(
    serve, method, url, sent, status, slug, field
):
    async def story(client):
        substrate = await create(client, MULTIPLY_XY)
        sid = substrate["substrate_id"]
        kwargs = dict(sent)
        if "json" in kwargs and kwargs["json"] and "substrate_ids" in kwargs["json"]:
            ids = [i.replace("{id}", sid) if isinstance(i, str) else i
                   for i in kwargs["json"]["substrate_ids"]]  # fmt: skip
            kwargs["json"] = {**kwargs["json"], "substrate_ids": ids}
        response = await getattr(client, method)(url.replace("{id}", sid), **kwargs)
        if status is None:  # hostile-looking but acceptable
            assert response.status_code in (200, 201), await response.get_data()
            return
        found = await problem(response, status)
        assert found["type"] == f"https://butterflyfx.dev/problems/{slug}"
        assert found.get("field") == field, found
        if status == 405:
            assert "Allow" in response.headers

    serve(story)


def test_a_validation_problem_lists_every_wrong_field(serve):
    async def story(client):
        response = await client.post(
            SUBSTRATES, json={"expression_type": 1, "expression_code": 2, "metadata": 3}
        )
        found = await problem(response, 422)
        assert [e["field"] for e in found["errors"]] == [
            "expression_type", "expression_code", "metadata",
        ]  # fmt: skip
        assert found["detail"] == "expression_type must be a string"

    serve(story)


def test_unknown_expression_type_lists_the_known_ones(serve):
    async def story(client):
        response = await client.post(SUBSTRATES, json={**LAMBDA_1, "expression_type": "cobol"})
        found = await problem(response, 422)
        assert "lambda" in found["known_types"]

    serve(story)


def test_a_rejected_expression_says_why_and_where(serve):
    async def story(client):
        code = "lambda **kw: open('/etc/passwd')"
        found = await problem(
            await client.post(SUBSTRATES, json={**LAMBDA_1, "expression_code": code}), 422
        )
        assert found["reason"] and found["line"] == 1 and isinstance(found["column"], int)

    serve(story)


def test_an_evaluation_limit_is_named(serve):
    async def story(client):
        substrate = await create(client, "lambda **kw: 10 ** kw.get('n', 1)")
        found = await problem(
            await client.post(
                f"{SUBSTRATES}/{substrate['substrate_id']}/invoke",
                json={"parameters": {"n": 10**6}},
            ),
            422,
        )
        assert found["type"].endswith("/limit-exceeded")
        assert found["limit"] == "max_int_bits"

    serve(story)


def test_an_evaluation_error_names_its_type(serve):
    async def story(client):
        substrate = await create(client, "lambda **kw: 1 / kw.get('d', 0)")
        found = await problem(
            await client.post(f"{SUBSTRATES}/{substrate['substrate_id']}/invoke", json={}), 422
        )
        assert found["error_type"] == "ZeroDivisionError"

    serve(story)


def test_a_body_announced_too_large_is_refused_before_it_is_read(serve):
    async def story(client):
        response = await client.post(
            SUBSTRATES, data=b"{}", headers={**JSON, "Content-Length": str(2 * 1024 * 1024)}
        )
        found = await problem(response, 413)
        assert found["limit_bytes"] == 1024 * 1024
        assert response.headers["X-Request-ID"]

    serve(story)


def test_a_body_too_large_without_content_length_is_refused_while_read(serve):
    async def story(client):
        big = b'{"expression_type": "lambda", "expression_code": "' + b"1" * 5000 + b'"}'
        found = await problem(await client.post(SUBSTRATES, data=big, headers=JSON), 413)
        assert found["limit_bytes"] == 4096

    serve(story, max_body_bytes=4096)


def test_a_body_just_under_the_limit_is_read(serve):
    async def story(client):
        padding = " " * (4096 - 200)
        data = (
            '{"expression_type": "lambda", "expression_code": "lambda **kw: 5"' + padding + "}"
        ).encode()
        assert len(data) < 4096
        response = await client.post(
            SUBSTRATES, data=data, headers={**JSON, "Content-Length": str(len(data))}
        )
        assert response.status_code == 201
        assert (await body(response))["expression_code"] == "lambda **kw: 5"

    serve(story, max_body_bytes=4096)


def test_metadata_cannot_be_smuggled_in_deeper_through_multiply(serve):
    async def story(client):
        substrate = await create(client)
        url = f"{SUBSTRATES}/{substrate['substrate_id']}"
        dimensions = (await body(await client.post(f"{url}/divide")))["dimensions"]
        deep: object = 1
        for _ in range(600):
            deep = [deep]
        dimensions[8]["content"]["metadata"] = {"deep": deep}  # Complete
        dimensions[3]["content"]["metadata_keys"] = ["deep"]  # Length, kept consistent
        await client.delete(url)
        found = await problem(
            await client.post(f"{SUBSTRATES}/multiply", json={"dimensions": dimensions}), 422
        )
        assert found["field"] == "dimensions[8].content"
        assert found["detail"] == "dimensions[8].content: may nest at most 33 levels deep"

    serve(story)
