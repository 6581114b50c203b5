"""`butterflyfx serve` as an operator meets it: start, answer, stop gracefully, restart."""

from __future__ import annotations

import json
import signal
import socket

import pytest
from server_process import INSTALLED_SCRIPT, STOP_DEADLINE, free_port, wait_for

LAMBDA = {
    "expression_type": "lambda",
    "expression_code": "lambda **kw: kw.get('x', 0) * kw.get('y', 0)",
    "metadata": {"name": "multiply_substrate"},
}


def test_with_no_config_it_serves_sqlite_in_a_local_folder_and_answers_health(butterflyfx):
    butterflyfx.use_installed_script = INSTALLED_SCRIPT.exists()  # the console script itself
    server = butterflyfx.start().wait_ready()

    health = server.client().get("/api/v1/health")

    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    assert set(health.json()["plugins"]) == {
        "storage.sqlite", "graph.sql", "http", "auth.apikey", "auth.jwt", "ratelimit",
    }  # fmt: skip
    assert (butterflyfx.cwd / "butterflyfx-data" / "butterflyfx.sqlite3").is_file()
    # Secure by default: the first start prints the one admin key, and it works.
    told, key, line = server.output().splitlines()
    assert "an admin key was created for tenant 'default'" in told
    assert key == server.admin_key and key.startswith("sk-butterflyfx-")
    assert line.startswith(f"ButterflyFX Server listening on {server.url} (1 worker;")
    assert "config: <embedded defaults>" in line
    assert server.client(key="none").get("/api/v1/substrates").status_code == 401
    assert server.client().get("/api/v1/substrates").status_code == 200
    assert key not in server.log_text()
    assert server.events("no_authentication") == []


def test_a_config_without_an_auth_plugin_warns_that_the_server_is_open(butterflyfx, tmp_path):
    config = tmp_path / "open.toml"
    config.write_text('plugins = ["storage.sqlite", "http"]\n')
    server = butterflyfx.start("--config", str(config), "--data-dir", str(tmp_path)).wait_ready()

    [warning] = server.events("no_authentication")
    assert warning["level"] == "warning" and "every scope" in warning["detail"]
    assert server.client().get("/api/v1/substrates").status_code == 200


def test_a_substrate_survives_a_graceful_restart(butterflyfx, tmp_path):
    data = tmp_path / "data"
    first = butterflyfx.start("--data-dir", str(data)).wait_ready()
    created = first.client().post("/api/v1/substrates", json=LAMBDA)
    assert created.status_code == 201
    substrate_id = created.json()["substrate_id"]

    assert first.stop(signal.SIGTERM) == 0
    [requested] = first.events("shutdown_requested")
    assert requested["signal"] == "SIGTERM"
    [stopped] = first.events("worker_stopped")  # the app's after_serving ran: stores closed
    assert stopped["graceful"] is True
    assert first.events("server_stopped")[0]["exit_code"] == 0

    second = butterflyfx.start("--data-dir", str(data)).wait_ready()
    fetched = second.client().get(f"/api/v1/substrates/{substrate_id}")
    assert fetched.status_code == 200
    assert fetched.json()["expression_code"] == LAMBDA["expression_code"]
    assert fetched.json()["metadata"] == LAMBDA["metadata"]


def read_until(conn: socket.socket, end: bytes | None) -> bytes:
    """Bytes from ``conn`` up to and including ``end``, or to the end of the stream."""
    received = b""
    while end is None or end not in received:
        chunk = conn.recv(65536)
        if not chunk:
            break
        received += chunk
    return received


def refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def test_a_request_in_flight_when_sigterm_arrives_still_completes(butterflyfx, tmp_path):
    data = tmp_path / "data"
    server = butterflyfx.start("--data-dir", str(data)).wait_ready()
    port = int(server.url.rsplit(":", 1)[1])
    body = json.dumps(LAMBDA).encode()
    head = (
        "POST /api/v1/substrates HTTP/1.1\r\nHost: localhost\r\n"
        f"Authorization: Bearer {server.admin_key}\r\n"
        "Content-Type: application/json\r\nExpect: 100-continue\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()

    with socket.create_connection(("127.0.0.1", port), timeout=STOP_DEADLINE) as conn:
        conn.sendall(head)
        # "100 Continue" means the server has read the request line and headers: in flight.
        assert read_until(conn, b"\r\n\r\n").startswith(b"HTTP/1.1 100")
        server.send(signal.SIGTERM)
        wait_for(lambda: server.events("shutdown_requested"), STOP_DEADLINE, "the signal")
        wait_for(lambda: refuses_connections(port), STOP_DEADLINE, "the listener to close")
        conn.sendall(body)
        response = read_until(conn, None)

    assert response.startswith(b"HTTP/1.1 201")
    assert server.wait() == 0
    substrate_id = json.loads(response.split(b"\r\n\r\n", 1)[1])["substrate_id"]
    restarted = butterflyfx.start("--data-dir", str(data)).wait_ready()
    assert restarted.client().get(f"/api/v1/substrates/{substrate_id}").status_code == 200


def test_ctrl_c_stops_it_gracefully_too(butterflyfx, tmp_path):
    server = butterflyfx.start("--data-dir", str(tmp_path / "data")).wait_ready()

    assert server.stop(signal.SIGINT) == 0
    assert server.events("shutdown_requested")[0]["signal"] == "SIGINT"
    assert server.events("worker_stopped")[0]["graceful"] is True


def test_flags_beat_the_environment_which_beats_the_file(butterflyfx, tmp_path):
    file_port, flag_port = free_port(), free_port()
    config = tmp_path / "butterflyfx.toml"
    config.write_text(
        f'[server]\nhost = "127.0.0.1"\nport = {file_port}\ntimeout = 30\n'
        f'max_connections = 50\ndata_dir = "{tmp_path / "from-file"}"\n'
    )
    server = butterflyfx.start(
        "--config", str(config), "--timeout", "7", "--data-dir", str(tmp_path / "from-flag"),
        "--access-log",
        port=flag_port,
        env={"BUTTERFLYFX_SERVER__MAX_CONNECTIONS": "64", "BUTTERFLYFX_SERVER__TIMEOUT": "9"},
    ).wait_ready()  # fmt: skip

    assert server.url.endswith(f":{flag_port}")
    [starting] = server.events("server_starting")
    assert starting["keep_alive_timeout"] == 7.0  # flag over environment over file
    assert starting["backlog"] == 64  # environment over file
    assert starting["config"] == str(config)
    assert (tmp_path / "from-flag" / "butterflyfx.sqlite3").is_file()
    assert not (tmp_path / "from-file").exists()
    assert server.stop() == 0  # the access line of a request comes after its response
    requests = [e for e in server.events("request") if e["path"] == "/api/v1/health"]
    assert requests and requests[0]["status"] == 200 and requests[0]["method"] == "GET"


def test_an_unknown_plugin_stops_start_up_and_lists_the_available_ones(butterflyfx, tmp_path):
    config = tmp_path / "butterflyfx.toml"
    config.write_text('plugins = ["storage.sqlite", "storage.nope", "http"]\n')

    result = butterflyfx.run("serve", "--config", str(config), "--port", str(free_port()))

    assert result.returncode == 2
    assert result.stderr.startswith(
        "butterflyfx: unknown plugin 'storage.nope'; available plugins:"
    )
    for name in ("http", "storage.memory", "storage.sqlite"):
        assert name in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_a_bad_setting_names_the_file_section_and_key(butterflyfx, tmp_path):
    config = tmp_path / "butterflyfx.toml"
    config.write_text('[storage.sqlite]\nsynchronous = "sometimes"\n')

    result = butterflyfx.run("serve", "--config", str(config), "--port", str(free_port()))

    assert result.returncode == 2
    assert result.stderr.startswith(
        f"butterflyfx: {config}, section [storage.sqlite], key 'synchronous': "
    )
    assert "Traceback" not in result.stderr


def test_a_store_that_cannot_open_is_one_clear_error(butterflyfx, tmp_path):
    not_a_folder = tmp_path / "occupied"
    not_a_folder.write_text("a file where the data folder should be")

    result = butterflyfx.run(
        "serve", "--data-dir", str(not_a_folder), "--port", str(free_port()), "--log-format", "json"
    )

    assert result.returncode == 2
    assert result.stderr.splitlines()[-1].startswith("butterflyfx: cannot start: ")
    assert "Traceback (most recent call last)" not in result.stderr
    assert result.stdout == ""  # no "listening" line for a server that never listened


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_plugin_that_fails_to_start_is_named_without_a_traceback(
    butterflyfx, licence_plugin, workers
):
    # storage.sqlite opens before the licence plugin fails: the store (and its thread)
    # must be closed again, or the process could not exit.
    env = {**licence_plugin, "BUTTERFLYFX_PLUGINS": "storage.sqlite,http,licence"}
    server = butterflyfx.start("--workers", workers, env=env)

    assert server.wait() == 2
    assert server.log_text().splitlines()[-1] == (
        "butterflyfx: cannot start: plugin 'licence' failed to start: "
        "ConnectionRefusedError: the licence server did not answer"
    )
    assert all("exception" not in event for event in server.events())
    assert server.output() == ""


@pytest.mark.parametrize("workers", ["1", "2"])
def test_with_required_false_the_server_starts_without_the_failing_plugin(
    butterflyfx, licence_plugin, workers
):
    env = {
        **licence_plugin,
        "BUTTERFLYFX_PLUGINS": "storage.sqlite,http,licence",
        "BUTTERFLYFX_LICENCE__REQUIRED": "false",
    }
    server = butterflyfx.start("--workers", workers, env=env).wait_ready()

    with server.client() as client:
        ready = client.get("/api/v1/ready")
        created = client.post("/api/v1/substrates", json={
            "expression_type": "lambda", "expression_code": "lambda **kw: kw.get('x', 0) + 1",
        })  # fmt: skip
    assert ready.status_code == 200 and ready.json()["status"] == "degraded"
    assert ready.json()["plugins"]["licence"] == {
        "status": "down", "state": "failed", "required": False,
        "error": "plugin 'licence' failed to start: "
        "ConnectionRefusedError: the licence server did not answer",
    }  # fmt: skip
    assert created.status_code == 201
    left_out = server.events("plugin_left_out")
    assert left_out and left_out[0]["plugin"] == "licence" and left_out[0]["level"] == "error"
    assert server.stop() == 0


def test_a_port_already_taken_is_reported_not_raised(butterflyfx, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        result = butterflyfx.run("serve", "--data-dir", str(tmp_path / "d"), "--port", str(port))

    assert result.returncode == 1
    assert result.stderr.strip().endswith(
        f"cannot listen on 127.0.0.1:{port}: Address already in use"
    )
    assert "Traceback" not in result.stderr


def test_304_and_204_go_out_without_content_headers(butterflyfx, tmp_path):
    """RFC 9110: no Content-Length on a 204; on a 304 none that differs from the 200's."""
    server = butterflyfx.start("--data-dir", str(tmp_path / "data")).wait_ready()
    client = server.client()
    created = client.post("/api/v1/substrates", json=LAMBDA).json()
    url = f"/api/v1/substrates/{created['substrate_id']}"
    etag = client.get(url).headers["ETag"]

    not_modified = client.get(url, headers={"If-None-Match": etag})
    deleted = client.delete(url)

    assert (not_modified.status_code, deleted.status_code) == (304, 204)
    for response in (not_modified, deleted):
        assert "content-length" not in response.headers
        assert "content-type" not in response.headers
        assert response.content == b""
    assert not_modified.headers["ETag"] == etag
