"""``benchmarks/ray_throughput.py --smoke`` runs end to end (on the session's Ray
instance) and closes with its ratio line. A smoke run's numbers mean nothing; the full
run is in benchmarks/README.md."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rayhelp import RayCluster

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
RATIO = re.compile(r"^RATIO [a-z0-9_]+ = [0-9]+\.[0-9]+ \(target (>=|<=) [0-9.]+\) (MET|MISSED)$")


@pytest.mark.timeout(180)
def test_smoke_run_ends_with_its_ratio(ray_cluster: RayCluster, tmp_path: Path) -> None:
    env = {**os.environ, "HOME": str(tmp_path), "OPENBLAS_NUM_THREADS": "1"}
    done = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "ray_throughput.py"),
            "--smoke",
            "--ray-address",
            ray_cluster.address,
        ],
        capture_output=True,
        text=True,
        timeout=170,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    assert lines[0].startswith("machine: ")
    assert any(line.startswith("ray start-up: ray.init") for line in lines), lines
    assert RATIO.match(lines[-1]), lines[-1]
