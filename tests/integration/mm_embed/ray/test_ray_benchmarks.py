"""``benchmarks/ray_throughput.py --smoke`` runs end to end (on the session's Ray
instance) and closes with its ratio line. A smoke run's numbers mean nothing; the full
run is in benchmarks/README.md."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration._helpers import RayCluster, run_benchmark


@pytest.mark.timeout(180)
def test_smoke_run_ends_with_its_ratio(ray_cluster: RayCluster, tmp_path: Path) -> None:
    lines = run_benchmark(
        "ray_throughput.py",
        "--smoke",
        "--ray-address",
        ray_cluster.address,
        workdir=tmp_path,
        timeout=170,
    )
    assert any(line.startswith("ray start-up: ray.init") for line in lines), lines
