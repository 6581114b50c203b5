"""Load from wrk, and what it cost the servers: one measured run of one side of a row.

A side is one server or several instances; several are driven at once, one wrk each with
an even share of the threads and connections, and their runs are summed (``combined``).
While wrk runs, the CPU each server process spends is read from /proc (Linux), so the cost
per request can be compared even when other work on the machine slows a run down.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from served import Server

INVOKE_BODY = {"parameters": {"x": 5, "y": 7}}
WRK_INSTALL = "wrk is not installed; install it with: apt-get install -y wrk"


@dataclass
class Measurement:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: int
    worker_cpu_s: list[float] = field(default_factory=list)  # busiest first; Linux only
    per_instance_rps: list[float] = field(default_factory=list)  # when several were driven

    @property
    def cpu_ms_per_request(self) -> float | None:
        """Workers' CPU per request: what the server costs, whoever else uses the cores."""
        if not self.worker_cpu_s or not self.requests:
            return None
        return round(sum(self.worker_cpu_s) * 1000 / self.requests, 4)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "cpu_ms_per_request": self.cpu_ms_per_request}


def combined(parts: Sequence[Measurement]) -> Measurement:
    """Instances driven at the same time as one service: requests and req/s add up, the
    latencies are the slower instance's, the CPU is every instance's workers'."""
    if len(parts) == 1:
        return parts[0]
    return Measurement(
        round(sum(part.requests_per_second for part in parts), 2),
        max(part.p50_ms for part in parts),
        max(part.p99_ms for part in parts),
        sum(part.requests for part in parts),
        sum(part.non_2xx for part in parts),
        sum(part.socket_errors for part in parts),
        sorted((cpu for part in parts for cpu in part.worker_cpu_s), reverse=True),
        [part.requests_per_second for part in parts],
    )


# -- wrk ------------------------------------------------------------------------------

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
    """The Lua script that makes wrk POST the invocation body."""
    script = directory / "invoke.lua"
    body = json.dumps(INVOKE_BODY).replace("\\", "\\\\").replace('"', '\\"')
    script.write_text(
        'wrk.method = "POST"\n'
        f'wrk.body = "{body}"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    return script


def wrk_command(
    url: str,
    *,
    seconds: float,
    threads: int,
    connections: int,
    script: Path | None,
    headers: dict[str, str] | None = None,
) -> list[str]:
    """wrk's command line; wrk takes whole seconds only."""
    sent = [part for name, value in (headers or {}).items() for part in ("-H", f"{name}: {value}")]
    return [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
        "--timeout", "5s", "--latency", *sent, *(["-s", str(script)] if script else []), url,
    ]  # fmt: skip


def drive(
    servers: Sequence[Server],
    path: str,
    *,
    seconds: float,
    threads: int,
    connections: int,
    script: Path | None,
) -> list[Measurement]:
    """Load every server at once, one wrk each with an even share of ``threads`` and
    ``connections``; one measurement per server, with its workers' CPU in the run."""
    share_threads = max(1, threads // len(servers))
    share_connections = max(share_threads, connections // len(servers))
    with ExitStack() as stack:
        spent = [stack.enter_context(worker_cpu(server)) for server in servers]
        running = [
            subprocess.Popen(
                wrk_command(
                    server.url + path,
                    seconds=seconds,
                    threads=share_threads,
                    connections=share_connections,
                    script=script,
                    headers=server.headers,
                ),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )  # fmt: skip
            for server in servers
        ]
        outputs = []
        try:
            for process in running:
                outputs.append(process.communicate(timeout=seconds + 30))
        finally:
            for process in running:
                if process.poll() is None:
                    process.kill()
                    process.wait()
    measured = []
    for process, (out, err), cpu in zip(running, outputs, spent, strict=True):
        if process.returncode != 0:
            raise RuntimeError(f"wrk failed ({process.returncode}): {err or out}")
        run = parse_wrk(out)
        run.worker_cpu_s = cpu
        measured.append(run)
    return measured


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
    """Fills the list with the CPU seconds each process of the server spent in the block,
    busiest first, leaving out those that hardly ran (a parent waiting on its workers).

    The parent counts too: a one-worker ``butterflyfx serve`` serves in its own process.
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
    deltas = [after[pid] - before.get(pid, 0.0) for pid in after]
    spent.extend(sorted((round(d, 2) for d in deltas if d > 0.05), reverse=True))


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
