"""The server's own routes through the client: health, readiness, status, statistics,
connections, the manifold and the metrics text, each parsed into its shared model."""

from __future__ import annotations

from butterflyfx.interface.machine import models, runtime


def test_health_readiness_and_the_runtime_routes_answer_their_models(client):
    health, ready = client.health(), client.ready()
    status, stats = client.server_status(), client.server_stats()
    connections = client.connections(limit=5)
    point = client.manifold(spiral=0, level=0, position=0.0)

    assert isinstance(health, models.HealthBody) and health.status == "ok"
    assert isinstance(ready, models.HealthBody) and ready.status == "ok"
    assert isinstance(status, runtime.StatusBody) and status.storage == "storage.sqlite"
    assert isinstance(stats, runtime.StatsBody) and stats.requests.total_requests >= 1
    assert isinstance(connections, runtime.ConnectionsBody) and len(connections.recent) <= 5
    assert isinstance(point, runtime.ManifoldPointBody) and point.radius == 1


def test_the_metrics_text_is_served_at_both_paths(client):
    client.get_substrate(client.create_substrate("lambda", "lambda: 'metered'").substrate_id)

    for text in (client.metrics(), client.metrics_root()):
        assert isinstance(text, str) and "# TYPE" in text
