"""The HTTP benchmark's report as text: the table, failed requests, and lopsided runs."""

from __future__ import annotations

from typing import Any

from wrk_load import balanced

HEADER = (
    "setup", "route", "ours req/s", "bare req/s", "ratio", "goal", "ours p50/p99 ms",
    "bare p50/p99 ms", "CPU ratio", "ours CPU s/worker", "bare CPU s/worker",
)  # fmt: skip


def _cpu(seconds: list[float]) -> str:
    return " ".join(f"{cpu:.1f}" for cpu in seconds) or "-"


def table(report: dict[str, Any]) -> str:
    rows = [HEADER]
    for row in report["rows"]:
        for result in row["routes"].values():
            ours, bare = result["ours"], result["bare"]
            met = "met" if result["ratio"] >= result["goal"] else "MISSED"
            rows.append((
                row["setup"],
                result["label"],
                f"{ours['requests_per_second']:,.0f}",
                f"{bare['requests_per_second']:,.0f}",
                f"{result['ratio']:.2f}",
                f">={result['goal']} {met}",
                f"{ours['p50_ms']:.2f} / {ours['p99_ms']:.2f}",
                f"{bare['p50_ms']:.2f} / {bare['p99_ms']:.2f}",
                f"{result['cpu_ratio']:.2f}" if result["cpu_ratio"] else "-",
                _cpu(ours["worker_cpu_s"]),
                _cpu(bare["worker_cpu_s"]),
            ))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    lines = [
        " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    lines.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(lines)


def _sides(report: dict[str, Any]) -> Any:
    for row in report["rows"]:
        for route, result in row["routes"].items():
            for side in ("ours", "bare"):
                yield row, route, side, result


def warnings(report: dict[str, Any]) -> list[str]:
    """Failed requests make a req/s figure meaningless: say so next to the table."""
    found = []
    for row, route, side, result in _sides(report):
        m = result[side]
        if m["non_2xx"] or m["socket_errors"]:
            found.append(
                f"{row['setup']} {route} {side}: {m['non_2xx']} non-2xx responses, "
                f"{m['socket_errors']} socket errors out of {m['requests']} requests"
            )
    return found


def notes(report: dict[str, Any]) -> list[str]:
    """Reported runs in which one worker still did nearly all the work after the retries,
    and how many runs were measured again because of it."""
    found = []
    for row, route, side, result in _sides(report):
        cpu = result[side]["worker_cpu_s"]
        workers = row["workers_per_instance"] * row["instances"]
        if row["instances"] == 1 and not balanced(cpu, workers):
            found.append(
                f"{row['setup']} {route} {side}: one worker used {cpu[0] / sum(cpu):.0%} of "
                f"the workers' CPU in the reported run ({report['attempts']} tries; the "
                "connections landed on it)"
            )
        retried = result["unbalanced_runs_retried"][side]
        if retried:
            found.append(
                f"{row['setup']} {route} {side}: {retried} run(s) measured again because one "
                "worker took every connection"
            )
    return found
