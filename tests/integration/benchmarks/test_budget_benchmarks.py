"""The budget benchmarks run end to end in their ``--quick`` mode and print their
tables (numbers of a quick run mean nothing; the full runs are in benchmarks/README.md).
``shared_budget.py`` starts its own emulators, worker processes and redis-server."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration._helpers import run_benchmark


@pytest.mark.timeout(400)
def test_shared_budget_quick_prints_its_table(tmp_path: Path) -> None:
    lines = run_benchmark("shared_budget.py", "--quick", workdir=tmp_path, timeout=360)
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
    lines = run_benchmark("sdk_speedup.py", "--quick", workdir=tmp_path, timeout=180)
    text = "\n".join(lines)
    for label in ("official SDK", "VikingClient (defaults", "AsyncVikingClient", "ideal (httpx"):
        assert text.count(label) == 2, label  # one row per workload (dense, dense+sparse)
    assert lines[-2].startswith("RATIO sdk_wall_over_ours = ")
    assert lines[-1].startswith("RATIO ours_wall_over_ideal = ")
