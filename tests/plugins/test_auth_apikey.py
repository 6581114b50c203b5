"""What a client of a server with API keys sees, and what the key store keeps.

Each story runs a real app (Quart's test client) over a real SQLite key file in tmp_path;
the stories where the store matters run again over PostgreSQL (``[auth.apikey]
database``), in a schema of the test's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
from urllib.parse import urlsplit

import pytest
from apikey_world import (
    API,
    KeyPlace,
    bearer,
    body,
    create_substrate,
    issue,
    problem,
    run_server,
    server_context,
)
from postgres_service import POSTGRES_DSN, postgres_schema
from ratelimit_proxy import CuttableLink

from butterflyfx.core.config import ConfigError
from butterflyfx.core.plugins import PluginError
from butterflyfx.plugins.http.app import create_app

MULTIPLY = "lambda **kw: kw.get('x', 0) * kw.get('y', 0)"
MISSING_ID = "0x" + "ab" * 8
KEY = re.compile(r"sk-butterflyfx-[A-Za-z0-9_-]{43}")


POSTGRES = urlsplit(POSTGRES_DSN)


def through_port(port: int) -> str:
    """The test database's URL, reached through a loopback port of the test's own."""
    user = POSTGRES.netloc.rpartition("@")[0]
    place = f"127.0.0.1:{port}"
    return POSTGRES._replace(netloc=f"{user}@{place}" if user else place).geturl()


@pytest.fixture(params=["sqlite", "postgresql"])
def place(request, tmp_path):
    """Where the server's keys are: its data folder's SQLite file, or PostgreSQL."""
    if request.param == "sqlite":
        yield KeyPlace(tmp_path)
        return
    with postgres_schema() as schema:
        yield KeyPlace(tmp_path, POSTGRES_DSN, schema)


async def revoke_beside(place: KeyPlace, tenant: str):
    """Revoke the tenant's one key with a store of its own, as ``keys revoke`` does."""
    store = place.store()
    await store.open()
    try:
        (key,) = await store.list(tenant)
        await store.revoke(key.id)
    finally:
        await store.close()
    return key


async def keys_of(place: KeyPlace, tenant: str):
    store = place.store()
    await store.open()
    try:
        return await store.list(tenant)
    finally:
        await store.close()


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


def test_health_docs_and_the_openapi_document_need_no_key(place):
    async def story(client):
        await issue(place, "acme")
        health = await client.get(f"{API}/health")
        assert health.status_code == 200
        apikey = (await body(health))["plugins"]["auth.apikey"]
        assert apikey["status"] == "ok" and apikey["keys"] == 1
        assert apikey["store"] == ("sqlite" if place.database is None else "postgresql")
        assert (await client.get(f"{API}/openapi.json")).status_code == 200
        assert (await client.get(f"{API}/docs")).status_code == 200

    run_server(place, story)


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


def test_a_revoked_key_gets_401_on_its_very_next_request(place):
    async def story(client):
        secret = await issue(place, "acme")
        assert (await client.get(f"{API}/substrates", headers=bearer(secret))).status_code == 200
        key = await revoke_beside(place, "acme")
        response = await client.get(f"{API}/substrates", headers=bearer(secret))
        refused = await problem(response, 401)
        assert "revoked" in refused["detail"] and key.id in refused["detail"]
        assert response.headers["WWW-Authenticate"].startswith("Bearer")

    run_server(place, story)


def test_an_admin_key_manages_its_own_tenants_keys_over_http(place):
    async def story(client):
        admin = bearer(await issue(place, "acme", "pro", ("read", "write", "invoke", "admin")))
        writer = await issue(place, "acme")
        outsider = await issue(place, "globex")

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

        (globex_key,) = await keys_of(place, "globex")
        gone = await client.delete(f"{API}/keys/{globex_key.id}", headers=admin)
        assert (await problem(gone, 404))["field"] == "key_id"
        await problem(await client.delete(f"{API}/keys/key_000000000000", headers=admin), 404)
        assert (await client.get(f"{API}/substrates", headers=bearer(outsider))).status_code == 200

        for secret in (writer, outsider):
            await problem(await client.get(f"{API}/keys", headers=bearer(secret)), 403)
            await problem(await client.post(f"{API}/keys", headers=bearer(secret), json={}), 403)

    run_server(place, story)


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


def test_the_key_store_holds_only_digests_and_remembers_last_use(place):
    admin = asyncio.run(issue(place, "acme", "pro", ("read", "write", "invoke", "admin")))
    secrets = [admin]

    async def story(client):
        secrets.append(await issue(place, "acme"))
        assert (
            await client.get(f"{API}/substrates", headers=bearer(secrets[1]))
        ).status_code == 200
        made = await client.post(f"{API}/keys", headers=bearer(admin), json={})
        secrets.append((await body(made))["key"])  # made, never used

    run_server(place, story)  # stopping writes the last-use times

    stored = place.stored()
    for secret in secrets:
        assert secret.encode() not in stored
        assert secret.removeprefix("sk-butterflyfx-").encode() not in stored
        assert hashlib.sha256(secret.encode()).hexdigest().encode() in stored

    async def last_used():
        store = place.store()
        await store.open()
        try:
            return [(await store.find(secret)).last_used_at for secret in secrets]
        finally:
            await store.close()

    admin_used, reader_used, unused = asyncio.run(last_used())
    assert admin_used is not None and reader_used is not None and unused is None


def test_the_first_start_prints_one_admin_key_and_later_starts_print_none(place, capsys):
    async def story(client):
        return await body(await client.get(f"{API}/keys", headers=bearer(printed[-1])))

    run_server(place, lambda client: client.get(f"{API}/health"), bootstrap=True)
    printed = KEY.findall(capsys.readouterr().out)
    assert len(printed) == 1
    (admin_key,) = run_server(place, story, bootstrap=True)["keys"]
    assert (admin_key["tenant"], admin_key["tier"]) == ("default", "enterprise")
    assert admin_key["scopes"] == ["read", "write", "invoke", "admin"]
    assert KEY.findall(capsys.readouterr().out) == []


# -- keys in PostgreSQL, shared by instances -----------------------------------------------


def test_servers_starting_at_once_on_an_empty_database_print_exactly_one_admin_key(
    tmp_path, capsys
):
    # Six servers, each with a data folder of its own, start together on one new schema:
    # each creates the table (or waits for the one creating it) and looks for a key.
    with postgres_schema() as schema:
        places = [KeyPlace(tmp_path / f"server{n}", POSTGRES_DSN, schema) for n in range(6)]

        async def all_at_once():
            apps = [create_app(server_context(place, bootstrap=True)) for place in places]
            async with contextlib.AsyncExitStack() as running:
                started = await asyncio.gather(
                    *(running.enter_async_context(app.test_app()) for app in apps)
                )
                (admin,) = KEY.findall(capsys.readouterr().out)
                listed = [
                    await body(await app.test_client().get(f"{API}/keys", headers=bearer(admin)))
                    for app in started
                ]
                gone = await app_revokes_its_own_key(started[0], admin, listed[0])
            return listed, gone

        listed, gone = asyncio.run(all_at_once())
        # A revoked key still counts: no new admin key on the next start.
        run_server(places[0], lambda client: client.get(f"{API}/health"), bootstrap=True)

    for keys in listed:
        assert [(key["tenant"], key["tier"]) for key in keys["keys"]] == [("default", "enterprise")]
    assert gone == 204
    assert KEY.findall(capsys.readouterr().out) == []
    assert all(not place.data_dir.exists() or not any(place.data_dir.iterdir()) for place in places)


async def app_revokes_its_own_key(app, admin, listed):
    (key,) = listed["keys"]
    revoked = await app.test_client().delete(f"{API}/keys/{key['id']}", headers=bearer(admin))
    return revoked.status_code


def test_a_key_database_that_goes_away_answers_503_then_serves_again_when_it_returns(tmp_path):
    with postgres_schema() as schema:
        secret = asyncio.run(issue(KeyPlace(tmp_path, POSTGRES_DSN, schema), "acme"))

        async def story():
            link = CuttableLink("127.0.0.1", 5432)
            port = await link.open()
            behind_link = through_port(port)
            place = KeyPlace(tmp_path, behind_link, schema)
            app = create_app(server_context(place))
            async with app.test_app() as running:
                client = running.test_client()
                before = await client.get(f"{API}/substrates", headers=bearer(secret))
                await link.cut()
                during = await client.get(f"{API}/substrates", headers=bearer(secret))
                during_body = await during.get_json()
                await link.restore()
                after = await client.get(f"{API}/substrates", headers=bearer(secret))
            await link.cut()
            return before.status_code, during, during_body, after.status_code

        before, during, problem_body, after = asyncio.run(story())

    assert before == 200
    assert during.status_code == 503
    assert during.headers["Content-Type"] == "application/problem+json"
    assert int(during.headers["Retry-After"]) >= 1
    assert problem_body["store"] == "auth.apikey"
    assert after == 200


def test_an_unreachable_key_database_stops_the_start_naming_it_without_its_password(tmp_path):
    place = KeyPlace(tmp_path, "postgresql://postgres:hunter2@127.0.0.1:1/test", "keys")
    ctx = server_context(place)

    async def start():
        try:
            await ctx.start()
        finally:
            await ctx.stop()

    with pytest.raises(PluginError) as refused:
        asyncio.run(start())
    message = str(refused.value)
    assert message.startswith("plugin 'auth.apikey' failed to start")
    assert "cannot open the API key database at 127.0.0.1:1/test, schema keys" in message
    assert "hunter2" not in message


@pytest.mark.parametrize(
    ("settings", "said"),
    [
        ({"PATH": "/tmp/keys.sqlite3", "DATABASE": POSTGRES_DSN}, "not both"),
        ({"DATABASE": "mysql://db/keys"}, "postgresql://"),
        ({"DATABASE": POSTGRES_DSN, "SCHEMA": "keys; DROP"}, "schema"),
    ],
)
def test_a_key_store_named_twice_or_wrongly_is_a_config_error(tmp_path, settings, said):
    env = {f"BUTTERFLYFX_AUTH_APIKEY__{key}": value for key, value in settings.items()}
    with pytest.raises(ConfigError) as refused:
        server_context(tmp_path, env=env)
    assert "auth.apikey" in str(refused.value) and said in str(refused.value)
