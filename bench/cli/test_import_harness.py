"""The import benchmark's harness on a few lines: every import lands every line (the harness
checks the server's counts and the export and stops otherwise) and the table names each
batch size. Nothing here is timed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HARNESS = Path(__file__).with_name("import_run.py")


def test_each_batch_size_imports_every_line_and_the_export_gives_them_back(tmp_path):
    output = tmp_path / "import.json"
    env = {**os.environ, "BENCH_IMPORT_LINES": "30", "BENCH_OUTPUT": str(output)}
    done = subprocess.run(
        [sys.executable, str(HARNESS)], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(output.read_text(encoding="utf-8"))
    assert [row["batch"] for row in report["rows"]] == [1, 100, 500]
    assert all(row["lines_per_s"] > 0 for row in report["rows"])
    assert report["rows"][-1]["export_lines_per_s"] > 0
    assert "| 100 |" in done.stdout and "ratio to --batch 1" in done.stdout
