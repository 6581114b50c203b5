"""A server with the ``metrics`` plugin in process, and a reader for what it exposes.

Everything is real: the Quart app, the guard, the stores, prometheus-client's registry.
Scrapes are parsed with prometheus-client's own parser, as Prometheus would read them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from butterflyfx.core.config import read_config
from butterflyfx.core.context import ServerContext
from butterflyfx.plugins.http.app import create_app

API = "/api/v1"


def run_server(
    data_dir: Path, plugins: str, scenario: Callable[[Any], Awaitable[Any]], **env: str
) -> Any:
    """One server life over ``data_dir``; ``scenario(client)`` runs while it serves."""
    settings = {"BUTTERFLYFX_PLUGINS": plugins, "BUTTERFLYFX_AUTH_APIKEY__BOOTSTRAP": "false"}

    async def main() -> Any:
        config = read_config(None, env={**settings, **env}, overrides={"data_dir": data_dir})
        app = create_app(ServerContext.build(config))
        async with app.test_app() as running:
            return await scenario(running.test_client())

    return asyncio.run(main())


@dataclass(frozen=True)
class Scrape:
    """One exposition, parsed: every sample by name, each keyed by its labels."""

    text: str
    samples: dict[str, dict[frozenset[tuple[str, str]], float]]

    @classmethod
    def parse(cls, text: str) -> Scrape:
        samples: dict[str, dict[frozenset[tuple[str, str]], float]] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = frozenset(sample.labels.items())
                samples.setdefault(sample.name, {})[labels] = sample.value
        return cls(text, samples)

    def value(self, name: str, **labels: str) -> float | None:
        return self.samples.get(name, {}).get(frozenset(labels.items()))

    def requests(self) -> dict[tuple[str, str, str], float]:
        """``butterflyfx_http_requests_total`` as (method, route, status) -> count."""
        found = {}
        for labels, value in self.samples.get("butterflyfx_http_requests_total", {}).items():
            named = dict(labels)
            found[(named["method"], named["route"], named["status"])] = value
        return found

    def label_names(self) -> set[str]:
        return {name for by_labels in self.samples.values() for key in by_labels for name, _ in key}


async def scrape(client: Any, path: str = f"{API}/metrics", **headers: str) -> Scrape:
    response = await client.get(path, headers=headers)
    text = (await response.get_data()).decode()
    assert response.status_code == 200, text
    return Scrape.parse(text)
