"""auth.jwt in process: users log in for tokens that act for their tenant, forged or stale
tokens get 401, password guessing is slowed to 429, passwords never appear in clear."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import stat
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
from joserfc import jwt
from joserfc.jwk import OctKey
from jwt_server import (
    LOGIN,
    SECRET_FILE,
    USERS_FILE,
    UserPlace,
    add_user,
    bearer,
    change_users,
    claims,
    context,
    login,
    part,
    redis_or_skip,
    serve,
    server_secret,
    signed,
    start_and_stop,
    stored_secret,
    unpart,
)
from postgres_service import POSTGRES_DSN, postgres_schema
from ratelimit_proxy import CuttableLink
from structlog.testing import capture_logs

from butterflyfx.core.config import ConfigError
from butterflyfx.core.plugins import PluginError
from butterflyfx.plugins.auth_jwt.passwords import hash_password
from butterflyfx.plugins.auth_jwt.secret import signing_secret
from butterflyfx.plugins.auth_jwt.settings import JwtSettings
from butterflyfx.plugins.http.app import create_app

PASSWORD = "correct horse battery staple"
SUBSTRATE = {"expression_type": "lambda", "expression_code": "lambda: 7"}


POSTGRES = urlsplit(POSTGRES_DSN)


def through_port(port: int) -> str:
    """The test database's URL, reached through a loopback port of the test's own."""
    user = POSTGRES.netloc.rpartition("@")[0]
    place = f"127.0.0.1:{port}"
    return POSTGRES._replace(netloc=f"{user}@{place}" if user else place).geturl()


@pytest.fixture(params=["sqlite", "postgresql"])
def place(request, tmp_path):
    """Where the server's users are: its data folder's SQLite file, or PostgreSQL."""
    if request.param == "sqlite":
        yield UserPlace(tmp_path)
        return
    with postgres_schema() as schema:
        yield UserPlace(tmp_path, POSTGRES_DSN, schema)


def test_a_user_logs_in_and_the_token_acts_for_their_tenant(place):
    add_user(place, "alice", PASSWORD, tenant="acme", tier="pro")
    add_user(place, "bob", "bobs own password", tenant="globex", tier="free")

    async def scenario(client):
        answer = await login(client, "alice", PASSWORD)
        alice = (await answer.get_json())["access_token"]
        made = await client.post("/api/v1/substrates", json=SUBSTRATE, headers=bearer(alice))
        listed = await client.get("/api/v1/substrates", headers=bearer(alice))
        bob = (await (await login(client, "bob", "bobs own password")).get_json())["access_token"]
        seen_by_bob = await client.get("/api/v1/substrates", headers=bearer(bob))
        anonymous = await client.get("/api/v1/substrates")
        return (
            answer,
            await answer.get_json(),
            [
                (reply.status_code, await reply.get_data(as_text=True), reply.headers)
                for reply in (made, listed, seen_by_bob, anonymous)
            ],
        )

    answer, body, [made, listed, seen_by_bob, anonymous] = serve(place, scenario)

    assert answer.status_code == 200
    assert body == {"access_token": body["access_token"], "token_type": "bearer",
                    "expires_in": 3600}  # fmt: skip
    assert answer.headers["Cache-Control"] == "no-store"
    assert made[0] == 201
    substrate_id = json.loads(made[1])["substrate_id"]
    assert listed[0] == 200 and substrate_id in listed[1]
    assert seen_by_bob[0] == 200 and substrate_id not in seen_by_bob[1]  # another tenant's
    assert anonymous[0] == 401 and anonymous[2]["WWW-Authenticate"].startswith("Bearer")
    alice = body["access_token"]
    said = unpart(alice.split(".")[1])
    assert said["sub"] == "alice" and said["tenant"] == "acme" and said["tier"] == "pro"
    assert said["scopes"] == ["read", "write", "invoke"]
    assert said["iss"] == "butterflyfx" and said["aud"] == "butterflyfx-api"
    assert said["exp"] - said["iat"] == 3600 and said["jti"]
    assert unpart(alice.split(".")[0])["alg"] == "HS256"


def forgeries(secret: bytes, genuine: str) -> dict[str, tuple[str, str]]:
    """Tokens a server must refuse, each with a word its 401 should say."""
    header, payload, signature = genuine.split(".")
    tampered = part({**unpart(payload), "tenant": "globex"})
    other_secret = b"not the server's secret, but long enough for HS256"
    deep = base64.urlsafe_b64encode(b"[" * 5000).rstrip(b"=").decode()
    return {
        "alg none": (f"{part({'alg': 'none', 'typ': 'JWT'})}.{payload}.", "algorithm"),
        "wrong secret": (signed(other_secret, claims()), "signature"),
        "tampered payload": (f"{header}.{tampered}.{signature}", "signature"),
        "expired": (signed(secret, claims(iat=1_600_000_000, exp=1_600_003_600)), "expired"),
        "other audience": (signed(secret, claims(aud="another-api")), "audience"),
        "other issuer": (signed(secret, claims(iss="someone-else")), "issuer"),
        "HS512": (signed(secret, claims(), "HS512"), "algorithm"),
        "RS256 header": (f"{part({'alg': 'RS256'})}.{payload}.{signature}", "algorithm"),
        "issued in the future": (
            signed(secret, claims(iat=int(time.time()) + 3600, exp=int(time.time()) + 7200)),
            "future",
        ),
        "no tenant": (signed(secret, claims(tenant=None)), "tenant"),
        "unknown scope": (signed(secret, claims(scopes=["read", "root"])), "scopes"),
        "unknown user": (signed(secret, claims(sub="mallory")), "no longer exists"),
        "tier as a list": (signed(secret, claims(tier=["pro"])), "tier"),
        # Not a JWT (its header is no JSON): left to other plugins, none of which knows it.
        "not even JSON": ("eyJub3Q.anNvbg.c2ln", "not recognised"),
        "a header nested 5000 deep": (f"{deep}.{payload}.{signature}", "malformed"),
    }


def test_forged_tampered_expired_and_foreign_tokens_all_get_401(place):
    add_user(place, "alice", PASSWORD)

    async def scenario(client):
        genuine = (await (await login(client, "alice", PASSWORD)).get_json())["access_token"]
        secret = await server_secret(place)
        built_right = signed(secret, claims())  # the forging kit itself makes good tokens
        answers = {"built right": await client.get("/api/v1/substrates",
                                                    headers=bearer(built_right))}  # fmt: skip
        for name, (token, _) in forgeries(secret, genuine).items():
            answers[name] = await client.get("/api/v1/substrates", headers=bearer(token))
        return answers, forgeries(secret, genuine)

    answers, cases = serve(place, scenario)

    assert answers.pop("built right").status_code == 200
    for name, answer in answers.items():
        problem = asyncio.run(answer.get_json())
        assert answer.status_code == 401, (name, problem)
        assert answer.headers["WWW-Authenticate"].startswith("Bearer"), name
        assert answer.headers["Content-Type"] == "application/problem+json", name
        assert cases[name][1] in problem["detail"], (name, problem["detail"])


def test_a_removed_or_disabled_users_token_stops_working(place):
    add_user(place, "alice", PASSWORD)

    async def scenario(client):
        token = (await (await login(client, "alice", PASSWORD)).get_json())["access_token"]

        async def status() -> int:
            return (await client.get("/api/v1/substrates", headers=bearer(token))).status_code

        seen = [await status()]
        await change_users(place, lambda store: store.set_disabled("alice", True))
        seen.append(await status())
        seen.append((await login(client, "alice", PASSWORD)).status_code)
        await change_users(place, lambda store: store.set_disabled("alice", False))
        seen.append(await status())
        await change_users(place, lambda store: store.remove("alice"))
        seen.append(await status())
        return seen

    assert serve(place, scenario) == [200, 401, 401, 200, 401]


def test_a_wrong_password_and_an_unknown_user_get_the_same_401(tmp_path):
    add_user(tmp_path, "alice", PASSWORD)

    async def scenario(client):
        wrong = await login(client, "alice", "not the password", address="192.0.2.10")
        unknown = await login(client, "nobody", PASSWORD, address="192.0.2.11")
        return [(a.status_code, await a.get_json(), a.headers.get("WWW-Authenticate"))
                for a in (wrong, unknown)]  # fmt: skip

    wrong, unknown = serve(tmp_path, scenario)

    assert wrong == unknown
    assert wrong[0] == 401 and wrong[2].startswith("Bearer")


def test_a_login_body_that_is_not_a_name_and_password_is_refused_naming_the_field(tmp_path):
    async def scenario(client):
        sent = {
            "password": await client.post(LOGIN, json={"username": "alice"}),
            "username": await client.post(LOGIN, json={"username": 7, "password": PASSWORD}),
            "role": await client.post(LOGIN, json={"username": "a", "password": "b", "role": 1}),
            "body": await client.post(LOGIN, json=["alice", PASSWORD]),
            "broken": await client.post(LOGIN, data="{", headers={"Content-Type":
                                                                   "application/json"}),
        }  # fmt: skip
        return {name: (a.status_code, await a.get_json()) for name, a in sent.items()}

    answers = serve(tmp_path, scenario)

    for field in ("password", "username", "role", "body"):
        assert answers[field][0] == 422, answers[field]
        assert answers[field][1]["field"] == field
    assert answers["broken"][0] == 400
    assert PASSWORD not in str(answers)  # a refused body is never echoed


def statuses(answers):
    return [answer.status_code for answer in answers]


def test_the_sixth_failed_login_for_one_username_in_a_minute_is_429(tmp_path):
    add_user(tmp_path, "alice", PASSWORD)
    add_user(tmp_path, "bob", "bobs own password")

    async def scenario(client):
        # From six addresses, so only the username's count can fill.
        failures = [await login(client, "alice", f"guess {n}", f"198.51.100.{n}") for n in range(5)]
        sixth = await login(client, "alice", "guess 5", "198.51.100.5")
        right_now = await login(client, "alice", PASSWORD, "198.51.100.6")
        bob = await login(client, "bob", "bobs own password", "198.51.100.7")
        return failures, sixth, await sixth.get_json(), right_now, bob

    failures, sixth, problem, right_now, bob = serve(tmp_path, scenario)

    assert statuses(failures) == [401] * 5
    assert sixth.status_code == 429
    assert sixth.headers["Content-Type"] == "application/problem+json"
    assert 1 <= int(sixth.headers["Retry-After"]) <= 61  # the window, in whole seconds up
    assert "username" in problem["detail"]
    assert right_now.status_code == 429  # even the right password waits: guessing is slowed
    assert bob.status_code == 200  # other users are not locked out


def test_the_sixth_failed_login_from_one_address_is_429_whatever_the_username(tmp_path):
    add_user(tmp_path, "alice", PASSWORD)

    async def scenario(client):
        sprayed = [await login(client, f"user{n}", PASSWORD, "203.0.113.9") for n in range(5)]
        sixth = await login(client, "alice", PASSWORD, "203.0.113.9")
        elsewhere = await login(client, "alice", PASSWORD, "203.0.113.10")
        return sprayed, sixth, await sixth.get_json(), elsewhere

    sprayed, sixth, problem, elsewhere = serve(tmp_path, scenario)

    assert statuses(sprayed) == [401] * 5
    assert sixth.status_code == 429 and int(sixth.headers["Retry-After"]) >= 1
    assert "client address" in problem["detail"]
    assert elsewhere.status_code == 200


def test_a_password_is_never_stored_or_logged_in_clear(tmp_path, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    secret_password = "Tr0ub4dor&3-never-in-clear"
    add_user(tmp_path, "alice", secret_password)

    async def scenario(client):
        answers = [await login(client, "alice", secret_password),
                   await login(client, "alice", secret_password + "x"),
                   await login(client, "bob", secret_password),
                   await client.post(LOGIN, json={"username": "alice",
                                                  "password": secret_password * 100})]  # fmt: skip
        return [answer.status_code for answer in answers]

    assert serve(tmp_path, scenario) == [200, 401, 401, 422]

    assert stat.S_IMODE((tmp_path / USERS_FILE).stat().st_mode) == 0o600  # hashes stay private
    stored = b"".join(path.read_bytes() for path in tmp_path.glob(f"{USERS_FILE}*"))
    assert b"$argon2id$" in stored
    assert secret_password.encode() not in stored
    captured = capsys.readouterr()
    logged = captured.out + captured.err + caplog.text
    assert "login_failed" in logged  # the log was captured at all
    assert secret_password not in logged


def test_a_generated_secret_is_kept_private_and_reused_after_a_restart(tmp_path):
    add_user(tmp_path, "alice", PASSWORD)

    async def first_life(client):
        return (await (await login(client, "alice", PASSWORD)).get_json())["access_token"]

    token = serve(tmp_path, first_life)
    secret_file = tmp_path / SECRET_FILE
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert len(secret_file.read_text().strip()) >= 32
    kept = secret_file.read_bytes()

    async def second_life(client):
        return (await client.get("/api/v1/substrates", headers=bearer(token))).status_code

    assert serve(tmp_path, second_life) == 200
    assert secret_file.read_bytes() == kept


def test_a_configured_secret_wins_over_the_file(tmp_path):
    add_user(tmp_path, "alice", PASSWORD)
    configured = "a configured secret of well over thirty-two characters"
    env = {"BUTTERFLYFX_AUTH_JWT__SECRET": configured}

    async def scenario(client):
        token = (await (await login(client, "alice", PASSWORD)).get_json())["access_token"]
        by_file_secret = signed(b"x" * 64, claims())
        by_configured = signed(configured.encode(), claims())
        statuses = [(await client.get("/api/v1/substrates", headers=bearer(t))).status_code
                    for t in (token, by_configured, by_file_secret)]  # fmt: skip
        return statuses

    assert serve(tmp_path, scenario, env) == [200, 200, 401]
    assert not (tmp_path / SECRET_FILE).exists()  # nothing generated


def test_a_configured_secret_too_short_for_hs256_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError) as refused:
        context(tmp_path, {"BUTTERFLYFX_AUTH_JWT__SECRET": "hunter2"})
    assert "auth.jwt" in str(refused.value) and "'secret'" in str(refused.value)
    assert "hunter2" not in str(refused.value)


def test_workers_starting_at_once_all_sign_with_one_generated_secret(tmp_path):
    path = tmp_path / "shared" / SECRET_FILE
    with ThreadPoolExecutor(8) as pool:
        secrets = set(pool.map(lambda _: signing_secret(JwtSettings(), path), range(16)))

    assert len(secrets) == 1
    assert sorted(os.listdir(path.parent)) == [SECRET_FILE]  # no drafts left behind


def test_two_workers_with_memory_counters_refuse_to_start_and_name_redis(tmp_path):
    ctx = context(tmp_path, workers=2)

    with pytest.raises(PluginError) as refused:
        asyncio.run(start_and_stop(ctx))
    assert "auth.jwt" in str(refused.value) and "Redis" in str(refused.value)
    assert "attempts_storage" in str(refused.value)


def test_a_server_whose_redis_does_not_answer_refuses_to_start(tmp_path):
    ctx = context(tmp_path, {"BUTTERFLYFX_AUTH_JWT__ATTEMPTS_STORAGE": "redis://127.0.0.1:1/0"})

    with pytest.raises(PluginError) as refused:
        asyncio.run(start_and_stop(ctx))
    assert "Redis at redis://127.0.0.1:1" in str(refused.value)


def test_health_reports_the_user_count(place):
    add_user(place, "alice", PASSWORD)
    add_user(place, "bob", "bobs own password")

    async def scenario(client):
        return await (await client.get("/api/v1/health")).get_json()

    health = serve(place, scenario)
    plugin = health["plugins"]["auth.jwt"]
    assert plugin["status"] == "ok" and plugin["users"] == 2, plugin
    assert plugin["store"] == ("sqlite" if place.database is None else "postgresql")


def test_two_servers_sharing_redis_count_one_set_of_failed_logins(tmp_path):
    # Two contexts on one data folder stand for two workers; they share only Redis.
    env = {"BUTTERFLYFX_AUTH_JWT__ATTEMPTS_STORAGE": redis_or_skip()}
    name = f"carol-{uuid.uuid4().hex[:8]}"  # fresh counters, whatever ran before
    address = f"10.{os.getpid() % 250}.{uuid.uuid4().int % 250}.7"
    add_user(tmp_path, name, PASSWORD)

    async def both():
        first, second = create_app(context(tmp_path, env)), create_app(context(tmp_path, env))
        async with first.test_app() as one, second.test_app() as two:
            clients = [one.test_client(), two.test_client()]
            failures = [await login(clients[n % 2], name, f"guess {n}", address) for n in range(5)]
            later = [await login(client, name, PASSWORD, address) for client in clients]
            health = await (await clients[0].get("/api/v1/health")).get_json()
            return failures, later, health

    failures, later, health = asyncio.run(both())

    assert statuses(failures) == [401] * 5
    assert statuses(later) == [429, 429]  # each server heard of the other's failures
    assert health["plugins"]["auth.jwt"]["attempts_storage"] == "redis://127.0.0.1:6379"


# -- users in PostgreSQL, shared by instances ----------------------------------------------


@pytest.fixture
def database(tmp_path):
    """Users in a new PostgreSQL schema, seen from the data folder ``tmp_path / "a"``."""
    with postgres_schema() as schema:
        yield UserPlace(tmp_path / "a", POSTGRES_DSN, schema)


def test_servers_on_one_database_share_its_users_and_one_generated_secret(database, tmp_path):
    # Four servers with data folders of their own start together on a new schema and no
    # configured secret: the first to ask generates the secret there, the others read it.
    places = [database.in_place(tmp_path / name) for name in "abcd"]

    async def all_at_once():
        apps = [create_app(context(place)) for place in places]
        async with contextlib.AsyncExitStack() as running:
            started = await asyncio.gather(
                *(running.enter_async_context(app.test_app()) for app in apps)
            )
            clients = [app.test_client() for app in started]
            await change_users(database, add_alice)
            answer = await login(clients[0], "alice", PASSWORD)
            token = (await answer.get_json())["access_token"]
            used = [
                (await client.get("/api/v1/substrates", headers=bearer(token))).status_code
                for client in clients
            ]
            await change_users(database, lambda store: store.remove("alice"))
            after_removal = [
                (await client.get("/api/v1/substrates", headers=bearer(token))).status_code
                for client in clients
            ]
            return token, used, after_removal, await stored_secret(database)

    with capture_logs() as logs:
        token, used, after_removal, secret = asyncio.run(all_at_once())

    assert used == [200] * 4 and after_removal == [401] * 4
    assert len(secret) >= 32
    assert jwt.decode(token, OctKey.import_key(secret), ["HS256"]).claims["sub"] == "alice"
    (generated,) = [event for event in logs if event["event"] == "jwt_secret_generated"]
    assert generated["database"].endswith(f", schema {database.schema}")
    # Failed logins are still counted per process: each server says so at start.
    assert sum(event["event"] == "jwt_attempts_counted_per_instance" for event in logs) == 4
    assert all(not place.data_dir.exists() or not any(place.data_dir.iterdir()) for place in places)


async def add_alice(store):
    await store.add("alice", "acme", "pro", ["read"], await hash_password(PASSWORD))


def test_with_a_configured_secret_nothing_is_stored_and_tokens_use_it(database):
    configured = "a configured secret of well over thirty-two characters"
    add_user(database, "alice", PASSWORD)

    async def scenario(client):
        token = (await (await login(client, "alice", PASSWORD)).get_json())["access_token"]
        forged = signed(configured.encode(), claims(sub="alice"))
        return [
            (await client.get("/api/v1/substrates", headers=bearer(t))).status_code
            for t in (token, forged)
        ]

    assert serve(database, scenario, {"BUTTERFLYFX_AUTH_JWT__SECRET": configured}) == [200, 200]
    assert asyncio.run(stored_secret(database)) is None


def test_a_users_database_that_goes_away_answers_503_then_serves_again(database):
    add_user(database, "alice", PASSWORD)

    async def story():
        link = CuttableLink(POSTGRES.hostname or "127.0.0.1", POSTGRES.port or 5432)
        port = await link.open()
        behind_link = UserPlace(database.data_dir, through_port(port), database.schema)
        app = create_app(context(behind_link))
        async with app.test_app() as running:
            client = running.test_client()
            token = (await (await login(client, "alice", PASSWORD)).get_json())["access_token"]
            await link.cut()
            during = [
                await client.get("/api/v1/substrates", headers=bearer(token)),
                await login(client, "alice", PASSWORD),
            ]
            await link.restore()
            after = await client.get("/api/v1/substrates", headers=bearer(token))
        await link.cut()
        return [(r.status_code, r.headers, await r.get_json()) for r in during], after.status_code

    during, after = asyncio.run(story())

    for status, headers, problem in during:
        assert status == 503 and int(headers["Retry-After"]) >= 1, problem
        assert headers["Content-Type"] == "application/problem+json"
        assert problem["store"] == "auth.jwt"
    assert after == 200


def test_an_unreachable_users_database_stops_the_start_naming_it_without_its_password(tmp_path):
    place = UserPlace(tmp_path, "postgresql://postgres:hunter2@127.0.0.1:1/test", "users")

    with pytest.raises(PluginError) as refused:
        asyncio.run(start_and_stop(context(place)))
    message = str(refused.value)
    assert message.startswith("plugin 'auth.jwt' failed to start")
    assert "cannot open the users database at 127.0.0.1:1/test, schema users" in message
    assert "hunter2" not in message


@pytest.mark.parametrize(
    ("settings", "said"),
    [
        ({"PATH": "/tmp/users.sqlite3", "DATABASE": POSTGRES_DSN}, "not both"),
        ({"SECRET_FILE": "/tmp/jwt-secret", "DATABASE": POSTGRES_DSN}, "secret_file"),
        ({"DATABASE": "sqlite:///users.db"}, "postgresql://"),
    ],
)
def test_a_users_store_named_twice_or_wrongly_is_a_config_error(tmp_path, settings, said):
    env = {f"BUTTERFLYFX_AUTH_JWT__{key}": value for key, value in settings.items()}
    with pytest.raises(ConfigError) as refused:
        context(tmp_path, env)
    assert "auth.jwt" in str(refused.value) and said in str(refused.value)
