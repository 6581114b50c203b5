"""HTTP benchmark: our server against a bare Quart app doing the same work, driven by wrk.

Each row of the table is one setup, ours and bare alike: an engine and a number of
instances. For GET /api/v1/substrates/{id} and POST /api/v1/substrates/{id}/invoke it
prints req/s, p50 and p99 of each and the ratio ours/bare, and writes the table to
.benchmarks/http.json.

    .venv/bin/python bench/http/run.py
    BENCH_ENGINES=postgres BENCH_INSTANCES=0 .venv/bin/python bench/http/run.py

Rows:

- One per engine in BENCH_ENGINES (default ``sqlite,postgres,redis``): one server of each
  with BENCH_WORKERS (2) Hypercorn workers over one SQLite file, one PostgreSQL schema
  (BENCH_POSTGRES_DSN, default postgresql://postgres@127.0.0.1:5432/test) or one Redis key
  prefix (BENCH_REDIS_URL, default redis://127.0.0.1:6379/0), made for the row and removed
  after it. The bare app reads the same rows through the same driver (bare_app.py).
- With BENCH_INSTANCES=N (default 2; 0 or 1: no such row), N ``butterflyfx serve``
  instances of BENCH_INSTANCE_WORKERS (1) workers each, on their own ports and data
  folders over one PostgreSQL schema and one Redis (rate-limit counters), with one API key
  file, against N bare apps of as many workers over the same schema. Each instance gets
  its own wrk, all at once, with 1/N of the threads and connections; req/s are summed.

Our server loads its engine's store (and graph.sql for SQL stores) and BENCH_PLUGINS
(default ``http,auth.apikey,ratelimit``: every request authenticated by API key and
counted per tenant in Redis, which several workers or instances must share), with
BENCH_SERVE_ARGS added to its command line (e.g. --no-access-log). Environment besides:
BENCH_DURATION seconds per run (10, whole seconds), BENCH_ROUNDS (2), BENCH_ATTEMPTS (3),
BENCH_WARMUP seconds (2), BENCH_THREADS (2), BENCH_CONNECTIONS (32), BENCH_OUTPUT
(.benchmarks/http.json). A row whose PostgreSQL or Redis does not answer is skipped, and
the reason printed.

Each route is measured ROUNDS times on each side, alternating which goes first, and the
best run of each is reported; a run in which one worker took all the connections is
measured again, up to ATTEMPTS times (see ``balanced``). The two sides are never under
load together, and every server is stopped whatever happens. A row takes at least
2 x 2 x (ROUNDS x DURATION + WARMUP) seconds plus start-up, and DURATION more per retry:
with the defaults 1.5 to 2.5 minutes, 8 to 10 minutes for the four rows on a shared machine.

The ratio is the number to compare across machines. Another process busy on the same
cores makes even the ratio noisy (the load average is printed); "CPU ratio" (bare's
worker CPU per request over ours) is the steadier measure of what our layers cost. The
database servers' own CPU is in neither.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
if str(HERE) not in sys.path:  # run as a file by tests: its sibling modules
    sys.path.insert(0, str(HERE))

from engine_setups import (  # noqa: E402
    ENGINES,
    Engine,
    Scratch,
    missing_service,
    our_plugins,
    scratch,
    services_needed,
)
from report_table import notes, table, warnings  # noqa: E402
from served import (  # noqa: E402
    SEED,
    Server,
    api_key,
    create_seed,
    request,
    running,
    start_bare,
    start_ours,
    wait_until_ready,
)
from wrk_load import (  # noqa: E402
    INVOKE_BODY,
    WRK_INSTALL,
    Measurement,
    balanced,
    best_run,
    combined,
    cpu_ratio,
    drive,
    parse_wrk,
    post_script,
)

from butterflyfx.testing.process import free_port  # noqa: E402

__all__ = [
    "INVOKE_BODY", "SEED", "Setup", "balanced", "benchmark", "combined", "deployed", "main",
    "parse_wrk", "plan", "request",
]  # fmt: skip

GOALS = {"get": 0.7, "invoke": 0.6}  # ours/bare req/s, for every row
LABELS = {"get": "GET /substrates/{id}", "invoke": "POST /substrates/{id}/invoke"}
DEFAULT_ENGINES = "sqlite,postgres,redis"
INSTANCES_ENGINE = "postgres"  # what several instances share (rate limits are in Redis)


@dataclass(frozen=True)
class Setup:
    """One row: the engine, how many instances of ours (and of bare), workers each."""

    engine: Engine
    instances: int
    workers: int

    @property
    def name(self) -> str:
        if self.instances == 1:
            return self.engine.name
        return f"{self.instances} instances, {self.engine.name}"


@dataclass(frozen=True)
class Load:
    """How each side is driven, from the environment."""

    seconds: float
    warmup: float
    rounds: int
    attempts: int
    threads: int
    connections: int


def _env_int(name: str, default: int) -> int:
    text = os.environ.get(name) or str(default)
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{name}={text!r} is not a whole number") from None


def load_from_environment() -> Load:
    return Load(
        seconds=max(1, _env_int("BENCH_DURATION", 10)),
        warmup=max(0, _env_int("BENCH_WARMUP", 2)),
        rounds=max(1, _env_int("BENCH_ROUNDS", 2)),
        attempts=max(1, _env_int("BENCH_ATTEMPTS", 3)),
        threads=max(1, _env_int("BENCH_THREADS", 2)),
        connections=max(1, _env_int("BENCH_CONNECTIONS", 32)),
    )


def plan() -> list[Setup]:
    """The rows BENCH_ENGINES and BENCH_INSTANCES ask for; ValueError naming a bad one."""
    text = os.environ.get("BENCH_ENGINES") or DEFAULT_ENGINES
    names = text.replace(" ", "").lower().split(",")
    names = [name for name in names if name and name != "none"]
    unknown = [name for name in names if name not in ENGINES]
    if unknown:
        raise ValueError(
            f"BENCH_ENGINES names {', '.join(unknown)}: choose from {', '.join(ENGINES)} "
            "(comma-separated), or none"
        )
    workers = max(1, _env_int("BENCH_WORKERS", 2))
    setups = [Setup(ENGINES[name], 1, workers) for name in dict.fromkeys(names)]
    instances = _env_int("BENCH_INSTANCES", 2)
    if instances >= 2:
        per_instance = max(1, _env_int("BENCH_INSTANCE_WORKERS", 1))
        setups.append(Setup(ENGINES[INSTANCES_ENGINE], instances, per_instance))
    return setups


# -- one row's servers ----------------------------------------------------------------


@dataclass
class Deployed:
    """A row's servers, ready, and the substrate both sides serve."""

    ours: list[Server]
    bare: list[Server]
    substrate_id: str
    plugins: list[str]
    space: Scratch


@contextmanager
def deployed(setup: Setup, folder: Path) -> Iterator[Deployed]:
    """Our instances (seeded through the first) and as many bare apps over the same rows.

    Instances start at once, as they would behind a load balancer; the API key is made
    first, so that its file exists before any of them opens it. The bare apps start first
    unless they open a file our server makes (SQLite): start-up only, nothing is measured.
    """
    plugins = our_plugins(setup.engine)
    count = setup.instances

    def names(side: str) -> list[str]:
        return [f"{side}-{i}" for i in range(count)] if count > 1 else [side]

    with scratch(setup.engine, plugins, folder) as space, ExitStack() as stack:

        def start_bare_apps() -> list[Server]:
            env = space.bare_environment()
            return [
                stack.enter_context(
                    running(start_bare(name, free_port(), setup.workers, env, folder))
                )
                for name in names("bare")
            ]

        bare = [] if setup.engine.bare_waits_for_ours else start_bare_apps()
        config = space.config()
        key = api_key(config, folder) if "auth.apikey" in plugins else None
        ours = [
            stack.enter_context(
                running(start_ours(name, config, folder / name, free_port(), setup.workers, key))
            )
            for name in names("ours")
        ]
        for server in ours:
            wait_until_ready(server, "/api/v1/health")
        substrate_id = create_seed(ours[0])
        bare = bare or start_bare_apps()
        for server in bare:
            wait_until_ready(server, f"/api/v1/substrates/{substrate_id}")
        yield Deployed(ours, bare, substrate_id, plugins, space)


# -- measuring ------------------------------------------------------------------------


def measure(setup: Setup, servers: Deployed, load: Load, script: Path) -> dict[str, Any]:
    """Both routes on both sides, ROUNDS times each, alternating which side goes first."""
    sides = {"ours": servers.ours, "bare": servers.bare}
    paths = {
        "get": (f"/api/v1/substrates/{servers.substrate_id}", None),
        "invoke": (f"/api/v1/substrates/{servers.substrate_id}/invoke", script),
    }
    routes: dict[str, Any] = {}
    for route, (path, lua) in paths.items():
        runs: dict[str, list[Measurement]] = {"ours": [], "bare": []}
        unbalanced = {"ours": 0, "bare": 0}
        for round_ in range(load.rounds):
            # Alternate who goes first, so a drift in the machine's load hits both.
            for side in ("ours", "bare") if round_ % 2 == 0 else ("bare", "ours"):
                shape = {"threads": load.threads, "connections": load.connections, "script": lua}
                if round_ == 0 and load.warmup > 0:  # compiled caches, pools, pages warm
                    drive(sides[side], path, seconds=load.warmup, **shape)
                for attempt in range(1, load.attempts + 1):
                    parts = drive(sides[side], path, seconds=load.seconds, **shape)
                    if attempt == load.attempts or all(
                        balanced(part.worker_cpu_s, setup.workers) for part in parts
                    ):
                        break
                    unbalanced[side] += 1
                runs[side].append(combined(parts))
        ours, bare = best_run(runs["ours"]), best_run(runs["bare"])
        routes[route] = {
            "label": LABELS[route],
            "path": path,
            "ours": ours.as_dict(),
            "bare": bare.as_dict(),
            "ratio": round(ours.requests_per_second / bare.requests_per_second, 3),
            "cpu_ratio": cpu_ratio(runs["ours"], runs["bare"]),
            "goal": GOALS[route],
            "unbalanced_runs_retried": unbalanced,
            "runs": {side: [run.as_dict() for run in done] for side, done in runs.items()},
        }
    return routes


def benchmark(setups: list[Setup], load: Load | None = None) -> dict[str, Any]:
    """Every setup that its services allow, one after the other; the others skipped."""
    load = load or load_from_environment()
    started, load_before = time.monotonic(), os.getloadavg()[0]
    answers: dict[str, str | None] = {}  # service -> why it is missing (None: it answers)
    rows, skipped = [], []
    with tempfile.TemporaryDirectory(prefix="butterflyfx-bench-") as folder:
        script = post_script(Path(folder))
        for number, setup in enumerate(setups):
            plugins = our_plugins(setup.engine)
            needed = services_needed(setup.engine, plugins)
            for service in needed:
                if service not in answers:
                    answers[service] = missing_service(service)
            reason = "; ".join(filter(None, (answers[service] for service in needed)))
            if reason:
                print(f"skipping {setup.name}: {reason}", file=sys.stderr)
                skipped.append({"setup": setup.name, "reason": reason})
                continue
            row_load = os.getloadavg()[0]
            print(
                f"measuring {setup.name}: {setup.instances} x {setup.workers} worker(s) a side, "
                f"load average {row_load:.2f}",
                file=sys.stderr, flush=True,
            )  # fmt: skip
            with deployed(setup, Path(folder) / f"row-{number}") as servers:
                routes = measure(setup, servers, load, script)
            rows.append({
                "setup": setup.name, "engine": setup.engine.name,
                "instances": setup.instances, "workers_per_instance": setup.workers,
                "plugins": plugins, "load_average_before": round(row_load, 2),
                "routes": routes,
            })  # fmt: skip
    return {
        "duration_s": load.seconds,
        "warmup_s": load.warmup,
        "rounds": load.rounds,
        "attempts": load.attempts,
        "threads": load.threads,
        "connections": load.connections,
        "cpus": os.cpu_count(),
        "load_average_before": round(load_before, 2),
        "load_average_after": round(os.getloadavg()[0], 2),
        "elapsed_s": round(time.monotonic() - started, 1),
        "rows": rows,
        "skipped": skipped,
    }


def main() -> int:
    if shutil.which("wrk") is None:
        print(WRK_INSTALL, file=sys.stderr)
        return 2
    try:
        setups, load = plan(), load_from_environment()
    except ValueError as error:
        print(f"bench/http: {error}", file=sys.stderr)
        return 2
    report = benchmark(setups, load)
    print(
        f"\nButterflyFX HTTP benchmark: wrk -t{report['threads']} -c{report['connections']} "
        f"-d{report['duration_s']:g}s per side (split evenly between instances) on loopback, "
        f"best of {report['rounds']} runs, {report['cpus']} CPUs, load average "
        f"{report['load_average_before']} before / {report['load_average_after']} after, "
        f"{report['elapsed_s']:.0f} s in all (ratio = ours / bare req/s)\n"
    )
    for row in report["rows"]:
        print(
            f"{row['setup']}: {row['instances']} x {row['workers_per_instance']} worker(s) "
            f"each side; ours loads {', '.join(row['plugins'])} (load average "
            f"{row['load_average_before']} at its start)"
        )
    for row in report["skipped"]:
        print(f"{row['setup']}: SKIPPED, {row['reason']}")
    if report["rows"]:
        print()
        print(table(report))
    problems = warnings(report)
    for line in problems:
        print(f"WARNING: {line}", file=sys.stderr)
    for line in notes(report):
        print(f"note: {line}")
    output = Path(os.environ.get("BENCH_OUTPUT") or ROOT / ".benchmarks" / "http.json")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten to {output}")
    if not report["rows"]:
        print("bench/http: nothing was measured (every row was skipped)", file=sys.stderr)
        return 1
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
