"""HTTP benchmark: our server against a bare Quart app doing the same work, driven by wrk.

Both run on Hypercorn with the same worker count over the same SQLite file, on loopback.
For GET /api/v1/substrates/{id} and POST /api/v1/substrates/{id}/invoke it prints req/s,
p50 and p99 of each and the ratio ours/bare, and writes the table to .benchmarks/http.json.

    .venv/bin/python bench/http/run.py

Our server loads BENCH_PLUGINS (storage.sqlite,graph.sql,http,auth.apikey,ratelimit: every
request authenticated by API key and counted in Redis at BENCH_REDIS_URL,
redis://127.0.0.1:6379/0), with BENCH_SERVE_ARGS added to its command line (e.g.
--no-access-log). Environment: BENCH_WORKERS (2), BENCH_DURATION seconds per run (10),
BENCH_ROUNDS (2), BENCH_ATTEMPTS (3), BENCH_WARMUP seconds (2), BENCH_THREADS (2),
BENCH_CONNECTIONS (32), BENCH_OUTPUT (.benchmarks/http.json).
Each route is measured ROUNDS times on each server,
alternating which goes first, and the best run of each is reported; a run in which one
worker took all the connections is measured again, up to ATTEMPTS times (see ``balanced``).
The servers are never under load together, and both are killed whatever happens; the whole
run takes at most about 2 x 2 x ROUNDS x ATTEMPTS x DURATION seconds plus start-up.

The ratio is the number to compare across machines. Another process busy on the same
cores makes even the ratio noisy (the load average is printed); "CPU ratio" (bare's
worker CPU per request over ours) is the steadier measure of what our layers cost.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from butterflyfx.testing.process import free_port
from butterflyfx.testing.process import wait_until_ready as wait_until_answering

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
BARE_APP = HERE / "bare_app.py"
BIN = Path(sys.executable).parent  # the venv's bin, without resolving its python symlink

SEED = {
    "expression_type": "lambda",
    "expression_code": "lambda **kw: kw.get('x', 0) * kw.get('y', 0)",
    "metadata": {"name": "multiply_substrate", "description": "Multiplies x and y"},
}
INVOKE_BODY = {"parameters": {"x": 5, "y": 7}}
GOALS = {"get": 0.7, "invoke": 0.6}  # ours/bare req/s with SQLite at 2 workers
LABELS = {"get": "GET /substrates/{id}", "invoke": "POST /substrates/{id}/invoke"}
START_DEADLINE = 30.0
OUR_PLUGINS = tuple(
    (os.environ.get("BENCH_PLUGINS") or "storage.sqlite,graph.sql,http,auth.apikey,ratelimit")
    .replace(" ", "")
    .split(",")
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL") or "redis://127.0.0.1:6379/0"
WRK_INSTALL = "wrk is not installed; install it with: apt-get install -y wrk"


# -- the two servers ------------------------------------------------------------------


@dataclass
class Server:
    """A server process (and its Hypercorn workers, in its own process group)."""

    name: str
    process: subprocess.Popen[bytes]
    url: str
    log: Path
    headers: dict[str, str] = field(default_factory=dict)  # what every request sends

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def butterflyfx_command() -> list[str]:
    script = BIN / "butterflyfx"
    if script.exists():
        return [str(script)]
    found = shutil.which("butterflyfx")
    if found:
        return [found]
    return [sys.executable, "-m", "butterflyfx.server.cli"]


def _spawn(name: str, command: list[str], log: Path, env: dict[str, str], url: str) -> Server:
    with log.open("wb") as out:
        process = subprocess.Popen(  # its own group, so stop() reaches every worker
            command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, cwd=log.parent, start_new_session=True,
        )  # fmt: skip
    return Server(name, process, url, log)


def ours_config(data_dir: Path) -> Path:
    """What a deployment serves: API keys checked on every request and each tenant's requests
    counted in Redis (several workers must share one count). The tier's limit is set out of
    reach, so the benchmark measures the counting, never a refusal."""
    sections = {
        "auth.apikey": "[auth.apikey]\nbootstrap = false\n",
        "ratelimit": f'[ratelimit]\nstorage = "{REDIS_URL}"\nkey_prefix = "bench-{os.getpid()}"\n'
        'tiers = { pro = "100000000/hour" }\n',
    }
    path = data_dir / "butterflyfx.toml"
    path.write_text(
        f"plugins = {json.dumps(list(OUR_PLUGINS))}\n"
        + "".join(text for name, text in sections.items() if name in OUR_PLUGINS)
    )
    return path


def api_key(config: Path, data_dir: Path) -> str | None:
    """A pro key of tenant default, made the way an operator makes one (None without keys)."""
    if "auth.apikey" not in OUR_PLUGINS:
        return None
    done = subprocess.run(
        [*butterflyfx_command(), "keys", "create", "--config", str(config),
         "--data-dir", str(data_dir), "--tenant", "default", "--tier", "pro"],
        capture_output=True, text=True, timeout=60, env=_our_environment(),
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"butterflyfx keys create failed: {done.stderr}")
    return done.stdout.strip().splitlines()[-1]


def _our_environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("BUTTERFLYFX_")}


def start_ours(workers: int, port: int, data_dir: Path) -> Server:
    config = ours_config(data_dir)
    key = api_key(config, data_dir)
    command = [
        *butterflyfx_command(), "serve", "--config", str(config), "--host", "127.0.0.1",
        "--port", str(port), "--workers", str(workers), "--data-dir", str(data_dir),
        *os.environ.get("BENCH_SERVE_ARGS", "").split(),
    ]  # fmt: skip
    server = _spawn(
        "ours", command, data_dir / "ours.log", _our_environment(), f"http://127.0.0.1:{port}"
    )
    if key is not None:
        server.headers["Authorization"] = f"Bearer {key}"
    return server


def start_bare(workers: int, port: int, database: Path, log_dir: Path) -> Server:
    command = [
        sys.executable, "-m", "hypercorn", "--workers", str(workers),
        "--bind", f"127.0.0.1:{port}", f"{BARE_APP}:app",
        # what `butterflyfx serve` gives Hypercorn by default (server/serve.py)
        "--backlog", "1000", "--keep-alive", "5", "--graceful-timeout", "10",
    ]  # fmt: skip
    env = {**os.environ, "BENCH_BARE_DATABASE": str(database)}
    return _spawn("bare", command, log_dir / "bare.log", env, f"http://127.0.0.1:{port}")


def stop(server: Server, grace: float = 10.0) -> None:
    """SIGTERM the server's process group, then SIGKILL whatever is left after ``grace``."""
    if server.process.poll() is None:
        try:
            os.killpg(server.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            server.process.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    try:  # workers of a parent that died still hold the group id
        os.killpg(server.process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    server.process.wait(5)


@contextmanager
def running(server: Server) -> Iterator[Server]:
    try:
        yield server
    finally:
        stop(server)


def request(
    method: str,
    url: str,
    body: Any = None,
    timeout: float = 5.0,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """One HTTP call with the standard library; returns (status, parsed JSON body)."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {**(headers or {}), **({"Content-Type": "application/json"} if data else {})}
    call = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(call, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        text = error.read()
        try:
            return error.code, json.loads(text)
        except ValueError:
            return error.code, text.decode(errors="replace")


def wait_until_ready(server: Server, path: str, deadline: float = START_DEADLINE) -> None:
    """Poll ``path`` until it answers 2xx; fail with the server's log if it dies or stalls."""
    wait_until_answering(
        server.process, server.url + path, deadline=deadline, log=server.log_tail,
        name=f"{server.name} server",
    )  # fmt: skip


def create_seed(ours: Server) -> str:
    status, body = request("POST", ours.url + "/api/v1/substrates", SEED, headers=ours.headers)
    if status not in (200, 201) or not isinstance(body, dict) or "substrate_id" not in body:
        raise RuntimeError(f"creating the seed substrate answered {status}: {body}")
    return str(body["substrate_id"])


def substrate_database(data_dir: Path) -> Path:
    """The file ``storage.sqlite`` keeps substrates in, by default, under ``data_dir``."""
    from butterflyfx.plugins.storage_sqlite import DEFAULT_FILE_NAME

    path = data_dir / DEFAULT_FILE_NAME
    if not path.is_file():
        raise RuntimeError(f"our server wrote no SQLite file at {path}")
    return path


@contextmanager
def both_servers(workers: int, data_dir: Path) -> Iterator[tuple[Server, Server, str]]:
    """Our server (seeded) and the bare app over its SQLite file, both ready."""
    with ExitStack() as stack:
        ours = stack.enter_context(running(start_ours(workers, free_port(), data_dir)))
        wait_until_ready(ours, "/api/v1/health")
        substrate_id = create_seed(ours)
        database = substrate_database(data_dir)
        bare = stack.enter_context(running(start_bare(workers, free_port(), database, data_dir)))
        wait_until_ready(bare, f"/api/v1/substrates/{substrate_id}")
        yield ours, bare, substrate_id


# -- wrk ------------------------------------------------------------------------------


@dataclass
class Measurement:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: int
    worker_cpu_s: list[float] = field(default_factory=list)  # busiest first; Linux only

    @property
    def cpu_ms_per_request(self) -> float | None:
        """Workers' CPU per request: what the server costs, whoever else uses the cores."""
        if not self.worker_cpu_s or not self.requests:
            return None
        return round(sum(self.worker_cpu_s) * 1000 / self.requests, 4)


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def _milliseconds(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)([a-z]+)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS_MS[unit]


def parse_wrk(output: str) -> Measurement:
    """Requests/sec, the 50% and 99% latencies (``--latency``), and any failures."""
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M)
    total = re.search(r"^\s+(\d+) requests in", output, re.M)
    if not (rps and p50 and p99 and total):
        raise RuntimeError(f"could not read wrk's output:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return Measurement(
        float(rps.group(1)),
        _milliseconds(p50.group(1)),
        _milliseconds(p99.group(1)),
        int(total.group(1)),
        int(non_2xx.group(1)) if non_2xx else 0,
        sum(int(n) for n in errors.groups()) if errors else 0,
    )


def post_script(directory: Path) -> Path:
    script = directory / "invoke.lua"
    body = json.dumps(INVOKE_BODY).replace("\\", "\\\\").replace('"', '\\"')
    script.write_text(
        'wrk.method = "POST"\n'
        f'wrk.body = "{body}"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    return script


def wrk(
    url: str,
    *,
    seconds: float,
    threads: int,
    connections: int,
    script: Path | None,
    headers: dict[str, str] | None = None,
) -> Measurement:
    sent = [part for name, value in (headers or {}).items() for part in ("-H", f"{name}: {value}")]
    command = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "5s",
        "--latency", *sent, *(["-s", str(script)] if script else []), url,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    return parse_wrk(done.stdout)


# -- where the CPU went -----------------------------------------------------------------


def _cpu_seconds(group: int) -> dict[int, float]:
    """CPU time (user + system) of each process in a process group, from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        # after the command: state ppid pgrp session tty tpgid flags minflt cminflt majflt
        # cmajflt utime stime
        if int(fields[2]) == group:
            found[int(entry.name)] = (int(fields[11]) + int(fields[12])) / ticks
    return found


@contextmanager
def worker_cpu(server: Server) -> Iterator[list[float]]:
    """Fills the list with the CPU seconds each worker spent in the block, busiest first.

    Hypercorn's workers share one listening socket and asyncio accepts every pending
    connection per wake-up, so a burst of new connections (wrk opens all of its own at
    once) may land on one worker: this shows whether N workers really served.
    """
    spent: list[float] = []
    if not Path("/proc/self/stat").exists():
        yield spent
        return
    group = server.process.pid
    before = _cpu_seconds(group)
    yield spent
    after = _cpu_seconds(group)
    deltas = [after[pid] - before.get(pid, 0.0) for pid in after if pid != group]
    spent.extend(sorted((round(d, 2) for d in deltas if d > 0.05), reverse=True))


# -- the benchmark --------------------------------------------------------------------


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


def _env_float(name: str, default: float) -> float:
    return float(os.environ.get(name) or default)


def balanced(cpu: list[float], workers: int, most: float = 0.75) -> bool:
    """Did every worker serve? False when one did more than ``most`` of the work.

    wrk opens all its connections at once and keeps them; on Hypercorn's shared socket one
    worker may accept them all, and a run of "N workers" is then a run of one. Such runs
    are measured again (BENCH_ATTEMPTS times in all), so both servers are compared with
    their N workers busy. Without /proc nothing is known, and every run counts.
    """
    if workers < 2 or not cpu:
        return True
    return len(cpu) >= workers and cpu[0] <= most * sum(cpu)


def best_run(runs: list[Measurement]) -> Measurement:
    """The run with the most req/s: other processes on the machine only ever slow one down."""
    return max(runs, key=lambda run: run.requests_per_second)


def cpu_ratio(ours: list[Measurement], bare: list[Measurement]) -> float | None:
    """Bare's worker CPU per request over ours, over all kept runs (1.0: as cheap as bare).

    Steadier than the req/s ratio on a shared machine: another process taking the cores
    slows a run down but hardly changes what each request costs.
    """
    costs = []
    for runs in (ours, bare):
        cpu = sum(sum(run.worker_cpu_s) for run in runs)
        requests = sum(run.requests for run in runs)
        if not cpu or not requests:
            return None
        costs.append(cpu / requests)
    return round(costs[1] / costs[0], 3)


def _as_dict(run: Measurement) -> dict[str, Any]:
    return {**asdict(run), "cpu_ms_per_request": run.cpu_ms_per_request}


def benchmark() -> dict[str, Any]:
    workers = _env_int("BENCH_WORKERS", 2)
    seconds = _env_float("BENCH_DURATION", 10)
    warmup = _env_float("BENCH_WARMUP", 2)
    rounds = max(1, _env_int("BENCH_ROUNDS", 2))
    attempts = max(1, _env_int("BENCH_ATTEMPTS", 3))
    threads = _env_int("BENCH_THREADS", 2)
    connections = _env_int("BENCH_CONNECTIONS", 32)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="butterflyfx-bench-") as scratch:
        data_dir = Path(scratch)
        script = post_script(data_dir)
        routes: dict[str, Any] = {}
        with both_servers(workers, data_dir) as (ours, bare, substrate_id):
            paths = {
                "get": (f"/api/v1/substrates/{substrate_id}", None),
                "invoke": (f"/api/v1/substrates/{substrate_id}/invoke", script),
            }
            for route, (path, lua) in paths.items():
                runs: dict[str, list[Measurement]] = {"ours": [], "bare": []}
                unbalanced = {"ours": 0, "bare": 0}
                for round_ in range(rounds):
                    # Alternate who goes first, so a drift in the machine's load hits both.
                    for server in (ours, bare) if round_ % 2 == 0 else (bare, ours):
                        url = server.url + path
                        if round_ == 0 and warmup > 0:  # compiled caches, pages, JITs warm
                            wrk(url, seconds=warmup, threads=threads, connections=connections,
                                script=lua, headers=server.headers)  # fmt: skip
                        for _ in range(attempts):
                            with worker_cpu(server) as spent:
                                measured = wrk(
                                    url, seconds=seconds, threads=threads,
                                    connections=connections, script=lua,
                                    headers=server.headers,
                                )  # fmt: skip
                            measured.worker_cpu_s = spent
                            if balanced(spent, workers):
                                break
                            unbalanced[server.name] += 1
                        runs[server.name].append(measured)
                ours_best, bare_best = best_run(runs["ours"]), best_run(runs["bare"])
                routes[route] = {
                    "label": LABELS[route],
                    "path": path,
                    "ours": _as_dict(ours_best),
                    "bare": _as_dict(bare_best),
                    "ratio": round(
                        ours_best.requests_per_second / bare_best.requests_per_second, 3
                    ),
                    "cpu_ratio": cpu_ratio(runs["ours"], runs["bare"]),
                    "goal": GOALS[route],
                    "unbalanced_runs_retried": unbalanced,
                    "runs": {side: [_as_dict(run) for run in done] for side, done in runs.items()},
                }
    return {
        "storage": "sqlite",
        "workers": workers,
        "duration_s": seconds,
        "rounds": rounds,
        "attempts": attempts,
        "threads": threads,
        "connections": connections,
        "cpus": os.cpu_count(),
        "load_average_before": round(load_before, 2),
        "load_average_after": round(os.getloadavg()[0], 2),
        "routes": routes,
    }


def table(report: dict[str, Any]) -> str:
    rows = [
        ("route", "ours req/s", "bare req/s", "ratio", "goal", "ours p50/p99 ms",
         "bare p50/p99 ms", "CPU ratio", "ours CPU s/worker", "bare CPU s/worker"),
    ]  # fmt: skip
    for result in report["routes"].values():
        ours, bare = result["ours"], result["bare"]
        rows.append((
            result["label"],
            f"{ours['requests_per_second']:,.0f}",
            f"{bare['requests_per_second']:,.0f}",
            f"{result['ratio']:.2f}",
            f">={result['goal']} {'met' if result['ratio'] >= result['goal'] else 'MISSED'}",
            f"{ours['p50_ms']:.2f} / {ours['p99_ms']:.2f}",
            f"{bare['p50_ms']:.2f} / {bare['p99_ms']:.2f}",
            f"{result['cpu_ratio']:.2f}" if result["cpu_ratio"] else "-",
            " ".join(f"{cpu:.1f}" for cpu in ours["worker_cpu_s"]) or "-",
            " ".join(f"{cpu:.1f}" for cpu in bare["worker_cpu_s"]) or "-",
        ))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    lines.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(lines)


def warnings(report: dict[str, Any]) -> list[str]:
    """Failed requests make a req/s figure meaningless: say so next to the table."""
    found = []
    for route, result in report["routes"].items():
        for side in ("ours", "bare"):
            m = result[side]
            if m["non_2xx"] or m["socket_errors"]:
                found.append(
                    f"{route} {side}: {m['non_2xx']} non-2xx responses, "
                    f"{m['socket_errors']} socket errors out of {m['requests']} requests"
                )
    return found


def notes(report: dict[str, Any]) -> list[str]:
    """Median runs in which one worker still did nearly all the work, after the retries."""
    found = []
    for route, result in report["routes"].items():
        for side in ("ours", "bare"):
            cpu = result[side]["worker_cpu_s"]
            if not balanced(cpu, report["workers"]):
                found.append(
                    f"{route} {side}: one worker used {cpu[0] / sum(cpu):.0%} of the workers' "
                    f"CPU in the reported run ({report['attempts']} tries; the connections "
                    "landed on it)"
                )
    return found


def main() -> int:
    if shutil.which("wrk") is None:
        print(WRK_INSTALL, file=sys.stderr)
        return 2
    report = benchmark()
    print(
        f"\nButterflyFX HTTP benchmark: SQLite, {report['workers']} Hypercorn workers each, "
        f"wrk -t{report['threads']} -c{report['connections']} -d{report['duration_s']:g}s "
        f"on loopback, best of {report['rounds']} runs, {report['cpus']} CPUs, "
        f"load average {report['load_average_before']} before / "
        f"{report['load_average_after']} after (ratio = ours / bare req/s)\n"
    )
    print(table(report))
    problems = warnings(report)
    for line in problems:
        print(f"WARNING: {line}", file=sys.stderr)
    for line in notes(report):
        print(f"note: {line}")
    for route, result in report["routes"].items():
        retried = result["unbalanced_runs_retried"]
        if any(retried.values()):
            print(
                f"note: {route}: runs measured again because one worker took every connection: "
                f"ours {retried['ours']}, bare {retried['bare']}"
            )
    output = Path(os.environ.get("BENCH_OUTPUT") or ROOT / ".benchmarks" / "http.json")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten to {output}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
