"""What a client of a server with API keys sees, and what the key file keeps.

Each story runs a real app (Quart's test client) over a real SQLite key file in tmp_path.
"""

from __future__ import annotations

import asyncio
import hashlib
import re

from apikey_world import (
    API,
    KEY_FILE,
    bearer,
    body,
    create_substrate,
    issue,
    problem,
    run_server,
)

from butterflyfx.plugins.auth_apikey import KeyStore

MULTIPLY = "lambda **kw: kw.get('x', 0) * kw.get('y', 0)"
MISSING_ID = "0x" + "ab" * 8
KEY = re.compile(r"sk-butterflyfx-[A-Za-z0-9_-]{43}")


def test_without_a_key_the_api_answers_401_with_a_bearer_challenge(tmp_path):
    async def story(client):
        refused = await problem(await client.get(f"{API}/substrates"), 401)
        assert "Authorization: Bearer" in refused["detail"]
        response = await client.post(f"{API}/substrates", json={})
        await problem(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")

        forged = "sk-butterflyfx-" + "A" * 43
        response = await client.get(f"{API}/substrates", headers=bearer(forged))
        assert "not known" in (await problem(response, 401))["detail"]
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        other_scheme = await client.get(f"{API}/substrates", headers=bearer("eyJhbGciOi.x.y"))
        await problem(other_scheme, 401)

    run_server(tmp_path, story)


def test_health_docs_and_the_openapi_document_need_no_key(tmp_path):
    async def story(client):
        await issue(tmp_path, "acme")
        health = await client.get(f"{API}/health")
        assert health.status_code == 200
        apikey = (await body(health))["plugins"]["auth.apikey"]
        assert apikey["status"] == "ok" and apikey["keys"] == 1
        assert (await client.get(f"{API}/openapi.json")).status_code == 200
        assert (await client.get(f"{API}/docs")).status_code == 200

    run_server(tmp_path, story)


def test_a_read_only_key_can_read_but_not_create(tmp_path):
    async def story(client):
        reader = await issue(tmp_path, "acme", scopes=("read",))
        listed = await client.get(f"{API}/substrates", headers=bearer(reader))
        assert listed.status_code == 200
        refused = await client.post(
            f"{API}/substrates", headers=bearer(reader),
            json={"expression_type": "lambda", "expression_code": MULTIPLY},
        )  # fmt: skip
        assert "may not write" in (await problem(refused, 403))["detail"]

    run_server(tmp_path, story)


def test_a_key_of_one_tenant_cannot_reach_another_tenants_substrate(tmp_path):
    async def story(client):
        alice, bob = await issue(tmp_path, "acme"), await issue(tmp_path, "globex")
        mine = await body(await create_substrate(client, alice, MULTIPLY))
        theirs_path = f"{API}/substrates/{mine['substrate_id']}"
        missing_path = f"{API}/substrates/{MISSING_ID}"
        as_bob = bearer(bob)
        for method, suffix, sent in [
            ("GET", "", {}),
            ("POST", "/invoke", {"json": {"parameters": {"x": 2, "y": 3}}}),
            ("DELETE", "", {}),
        ]:
            hidden = await client.open(theirs_path + suffix, method=method, headers=as_bob, **sent)
            absent = await client.open(missing_path + suffix, method=method, headers=as_bob, **sent)
            hidden_problem, absent_problem = await problem(hidden, 404), await problem(absent, 404)
            assert hidden_problem["type"] == absent_problem["type"]
            assert hidden_problem["title"] == absent_problem["title"]

        own = await body(await create_substrate(client, bob, "lambda: 1"))
        relate = await client.post(
            f"{API}/relationships", headers=as_bob,
            json={"source_id": own["substrate_id"], "target_id": mine["substrate_id"],
                  "relationship_type": "dependency"},
        )  # fmt: skip
        await problem(relate, 404)

        # The same expression in globex is a second substrate with the same identity.
        copy = await create_substrate(client, bob, MULTIPLY)
        assert copy.status_code == 201
        assert (await body(copy))["substrate_id"] == mine["substrate_id"]
        assert (await client.delete(theirs_path, headers=as_bob)).status_code == 204
        still = await client.get(theirs_path, headers=bearer(alice))
        assert still.status_code == 200 and (await body(still)) == mine
        invoked = await client.post(
            f"{theirs_path}/invoke", headers=bearer(alice), json={"parameters": {"x": 2, "y": 3}}
        )
        assert invoked.status_code == 200 and (await body(invoked))["result"] == 6

    run_server(tmp_path, story)


def test_a_revoked_key_gets_401_on_its_very_next_request(tmp_path):
    async def story(client):
        secret = await issue(tmp_path, "acme")
        assert (await client.get(f"{API}/substrates", headers=bearer(secret))).status_code == 200
        async with KeyStore(tmp_path / KEY_FILE) as store:  # as `keys revoke` does, beside it
            (key,) = await store.list("acme")
            await store.revoke(key.id)
        response = await client.get(f"{API}/substrates", headers=bearer(secret))
        refused = await problem(response, 401)
        assert "revoked" in refused["detail"] and key.id in refused["detail"]
        assert response.headers["WWW-Authenticate"].startswith("Bearer")

    run_server(tmp_path, story)


def test_an_admin_key_manages_its_own_tenants_keys_over_http(tmp_path):
    async def story(client):
        admin = bearer(await issue(tmp_path, "acme", "pro", ("read", "write", "invoke", "admin")))
        writer = await issue(tmp_path, "acme")
        outsider = await issue(tmp_path, "globex")

        listed = await client.get(f"{API}/keys", headers=admin)
        text = (await listed.get_data()).decode()
        assert listed.status_code == 200 and "sk-butterflyfx-" not in text
        assert {key["tenant"] for key in (await body(listed))["keys"]} == {"acme"}
        assert len((await body(listed))["keys"]) == 2

        made = await client.post(
            f"{API}/keys",
            headers=admin,
            json={"tier": "free", "scopes": ["read"], "name": "dashboard"},
        )
        assert made.status_code == 201 and made.headers["Cache-Control"] == "no-store"
        new = await body(made)
        assert KEY.fullmatch(new["key"])
        assert made.headers["Location"] == f"{API}/keys/{new['id']}"
        assert (new["tenant"], new["tier"], new["scopes"], new["name"]) == (
            "acme", "free", ["read"], "dashboard",
        )  # fmt: skip
        assert (
            await client.get(f"{API}/substrates", headers=bearer(new["key"]))
        ).status_code == 200
        listed = await client.get(f"{API}/keys", headers=admin)
        assert new["key"] not in (await listed.get_data()).decode()

        revoked = await client.delete(f"{API}/keys/{new['id']}", headers=admin)
        assert revoked.status_code == 204
        await problem(await client.get(f"{API}/substrates", headers=bearer(new["key"])), 401)

        async with KeyStore(tmp_path / KEY_FILE) as store:
            (globex_key,) = await store.list("globex")
        gone = await client.delete(f"{API}/keys/{globex_key.id}", headers=admin)
        assert (await problem(gone, 404))["field"] == "key_id"
        await problem(await client.delete(f"{API}/keys/key_000000000000", headers=admin), 404)
        assert (await client.get(f"{API}/substrates", headers=bearer(outsider))).status_code == 200

        for secret in (writer, outsider):
            await problem(await client.get(f"{API}/keys", headers=bearer(secret)), 403)
            await problem(await client.post(f"{API}/keys", headers=bearer(secret), json={}), 403)

    run_server(tmp_path, story)


def test_a_new_key_over_http_is_checked_field_by_field(tmp_path):
    async def story(client):
        admin = bearer(await issue(tmp_path, "acme", "pro", ("read", "write", "invoke", "admin")))
        for sent, field in [
            ({"tier": "gold"}, "tier"),
            ({"scopes": ["read", "fly"]}, "scopes"),
            ({"scopes": []}, "scopes"),
            ({"scopes": 7}, "scopes"),
            ({"name": 42}, "name"),
            ({"tenant": "globex"}, "tenant"),
        ]:
            refused = await problem(await client.post(f"{API}/keys", headers=admin, json=sent), 422)
            assert refused["field"] == field, refused
        above = await client.post(f"{API}/keys", headers=admin, json={"tier": "enterprise"})
        assert (await problem(above, 403))["field"] == "tier"
        not_json = await client.post(
            f"{API}/keys", headers={**admin, "Content-Type": "application/json"}, data="tier=pro"
        )
        await problem(not_json, 400)
        default = await body(await client.post(f"{API}/keys", headers=admin))
        assert (default["tier"], default["scopes"]) == ("pro", ["read", "write", "invoke"])

    run_server(tmp_path, story)


def test_the_key_file_holds_only_digests_and_remembers_last_use(tmp_path):
    admin = asyncio.run(issue(tmp_path, "acme", "pro", ("read", "write", "invoke", "admin")))
    secrets = [admin]

    async def story(client):
        secrets.append(await issue(tmp_path, "acme"))
        assert (
            await client.get(f"{API}/substrates", headers=bearer(secrets[1]))
        ).status_code == 200
        made = await client.post(f"{API}/keys", headers=bearer(admin), json={})
        secrets.append((await body(made))["key"])  # made, never used

    run_server(tmp_path, story)  # stopping writes the last-use times

    stored = b"".join(path.read_bytes() for path in tmp_path.glob(f"{KEY_FILE}*"))
    for secret in secrets:
        assert secret.encode() not in stored
        assert secret.removeprefix("sk-butterflyfx-").encode() not in stored
        assert hashlib.sha256(secret.encode()).hexdigest().encode() in stored

    async def last_used():
        async with KeyStore(tmp_path / KEY_FILE) as store:
            return [(await store.find(secret)).last_used_at for secret in secrets]

    admin_used, reader_used, unused = asyncio.run(last_used())
    assert admin_used is not None and reader_used is not None and unused is None


def test_the_first_start_prints_one_admin_key_and_later_starts_print_none(tmp_path, capsys):
    async def story(client):
        return await body(await client.get(f"{API}/keys", headers=bearer(printed[-1])))

    run_server(tmp_path, lambda client: client.get(f"{API}/health"), bootstrap=True)
    printed = KEY.findall(capsys.readouterr().out)
    assert len(printed) == 1
    (admin_key,) = run_server(tmp_path, story, bootstrap=True)["keys"]
    assert (admin_key["tenant"], admin_key["tier"]) == ("default", "enterprise")
    assert admin_key["scopes"] == ["read", "write", "invoke", "admin"]
    assert KEY.findall(capsys.readouterr().out) == []
