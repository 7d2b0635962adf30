"""The budget benchmarks run end to end in their ``--quick`` mode and print their
tables (numbers of a quick run mean nothing; the full runs are in benchmarks/README.md).
``shared_budget.py`` starts its own emulators, worker processes and redis-server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
RATIO = re.compile(r"^RATIO [a-z0-9_]+ = [0-9]+\.[0-9]+ \(target (>=|<=) [0-9.]+\) (MET|MISSED)$")


def run_quick(script: str, tmp_path: Path, timeout: float) -> list[str]:
    env = {**os.environ, "HOME": str(tmp_path), "OPENBLAS_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--quick"],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    assert lines and lines[0].startswith("machine: "), done.stdout + done.stderr[-2000:]
    assert RATIO.match(lines[-1]), lines[-1]
    return lines


@pytest.mark.timeout(400)
def test_shared_budget_quick_prints_its_table(tmp_path: Path) -> None:
    lines = run_quick("shared_budget.py", tmp_path, timeout=360)
    header = next(i for i, line in enumerate(lines) if line.startswith("budget "))
    assert "above burst" in lines[header] and "1000029" in lines[header]
    rows = {line.split()[0]: line.split() for line in lines[header + 1 : header + 4]}
    assert set(rows) == {"file", "redis", "none"}
    assert rows["file"][3] == "FileBudget" and rows["redis"][6] == "RedisBudget"
    for name in ("file", "redis"):  # the shared scenarios: no vector wrong, none lost
        assert rows[name][-3] == "0" and rows[name][-4] == "0", rows[name]
    assert lines[-1].startswith("RATIO shared_budget_above_burst_min = ")


@pytest.mark.timeout(200)
def test_sdk_speedup_quick_prints_its_table(tmp_path: Path) -> None:
    lines = run_quick("sdk_speedup.py", tmp_path, timeout=180)
    text = "\n".join(lines)
    for label in ("official SDK", "VikingClient (defaults", "AsyncVikingClient", "ideal (httpx"):
        assert text.count(label) == 2, label  # one row per workload (dense, dense+sparse)
    assert lines[-2].startswith("RATIO sdk_wall_over_ours = ")
    assert lines[-1].startswith("RATIO ours_wall_over_ideal = ")
