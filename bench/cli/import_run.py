"""Import benchmark: ``butterflyfx import`` of one NDJSON file, a line per request (``--batch 1``,
the baseline: what import did before the batch routes) against batches of 100 and 500, each
into a new server, in one run; then ``butterflyfx export`` of what was imported.

    .venv/bin/python bench/cli/import_run.py

The file holds LINES substrates (distinct expressions) and as many relationships, each from
a substrate to the next one's. Each import runs the real command as a user does, against a
real ``butterflyfx serve`` (storage.sqlite, graph.sql, auth.apikey: the defaults without
the rate limiter, which would refuse a line-per-request import of this size). Every import
must end with exit code 0 and the server's stats must count every line; the export must
hold every line again. It prints lines per second and the ratio to the baseline.

Environment: BENCH_IMPORT_LINES (2000), BENCH_OUTPUT (.benchmarks/import.json).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from butterflyfx.testing.pytest_plugin import ServerLauncher

ROOT = Path(__file__).resolve().parents[2]
COMMAND = str(Path(sys.executable).with_name("butterflyfx"))
PLUGINS = ["storage.sqlite", "graph.sql", "http", "auth.apikey"]
BATCHES = (1, 100, 500)
BASELINE = 1


@dataclass
class Row:
    batch: int
    seconds: float
    lines_per_s: float
    export_lines_per_s: float | None = None


def ndjson(lines: int) -> str:
    """``lines`` substrates and ``lines`` relationships, each substrate related to the next."""
    substrates = [f"lambda **kw: kw.get('x', 0) * {n} + {n % 7}" for n in range(lines)]
    out = [
        json.dumps({"kind": "substrate", "expression_type": "lambda", "expression_code": code})
        for code in substrates
    ]
    ids = [identity_of(code) for code in substrates]
    out += [
        json.dumps(
            {
                "kind": "relationship",
                "source_id": ids[n],
                "target_id": ids[(n + 1) % lines],
                "relationship_type": "dependency",
            }
        )  # fmt: skip
        for n in range(lines)
    ]
    return "\n".join(out) + "\n"


def identity_of(code: str) -> str:
    """The id the server will give ``code`` (the kernel's content address)."""
    from butterflyfx.kernel import compile_expression, format_id

    return format_id(compile_expression("lambda", code).identity)


def run(*argv: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    done = subprocess.run(
        [COMMAND, *argv], capture_output=True, text=True, timeout=1800,
        env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip
    return time.perf_counter() - started, done


def main() -> int:
    lines = int(os.environ.get("BENCH_IMPORT_LINES", "2000"))
    output = Path(os.environ.get("BENCH_OUTPUT") or ROOT / ".benchmarks" / "import.json")
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="butterflyfx-import-bench-") as folder:
        source = Path(folder) / "tenant.ndjson"
        source.write_text(ndjson(lines), encoding="utf-8")
        launcher = ServerLauncher(Path(folder) / "servers")
        try:
            for batch in BATCHES:
                server = launcher.start(PLUGINS)
                key = ["--url", server.url, "--key", str(server.admin_key)]
                seconds, done = run(
                    "import", str(source), "--batch", str(batch), "--no-progress", *key
                )
                if done.returncode != 0:
                    raise SystemExit(f"import --batch {batch} failed:\n{done.stderr}")
                stats = httpx.get(
                    f"{server.url}/api/v1/query/stats",
                    headers={"Authorization": f"Bearer {server.admin_key}"},
                ).json()
                counted = (stats["substrates"], stats["relationships"]["total"])
                if counted != (lines, lines):
                    raise SystemExit(f"--batch {batch}: the server counts {counted}, not {lines}")
                row = Row(batch, seconds, 2 * lines / seconds)
                if batch == BATCHES[-1]:
                    exported = Path(folder) / "exported.ndjson"
                    spent, done = run("export", "--output", str(exported), "--no-progress", *key)
                    written = len(exported.read_text(encoding="utf-8").splitlines())
                    if done.returncode != 0 or written != 2 * lines:
                        raise SystemExit(f"export wrote {written} lines:\n{done.stderr}")
                    row.export_lines_per_s = written / spent
                rows.append(row)
                server.stop()
        finally:
            launcher.kill_all()
    base = next(row.lines_per_s for row in rows if row.batch == BASELINE)
    print(f"butterflyfx import of {2 * lines} lines ({lines} substrates, {lines} relationships)")
    print("| --batch | seconds | lines/s | ratio to --batch 1 |")
    print("| --- | --- | --- | --- |")
    for row in rows:
        ratio = row.lines_per_s / base
        print(f"| {row.batch} | {row.seconds:.1f} | {row.lines_per_s:,.0f} | {ratio:.1f} |")
        if row.export_lines_per_s is not None:
            print(f"export (after --batch {row.batch}): {row.export_lines_per_s:,.0f} lines/s")
    output.parent.mkdir(parents=True, exist_ok=True)
    report = {"lines": lines, "rows": [asdict(row) for row in rows]}
    output.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
