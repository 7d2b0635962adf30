"""Each benchmark script runs end to end at tiny sizes (``--smoke``) and closes with its
ratio line. The numbers of a smoke run mean nothing; the full runs are in
benchmarks/README.md."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
RATIO = re.compile(r"^RATIO [a-z0-9_]+ = [0-9]+\.[0-9]+ \(target (>=|<=) [0-9.]+\) (MET|MISSED)$")
SCRIPTS = [
    "ceiling.py",
    "sdk_speedup.py",
    "parse_overhead.py",
    "memory.py",
    "fgclip_concurrency.py",
]


@pytest.mark.parametrize("script", SCRIPTS)
def test_smoke_run_ends_with_its_ratio(script: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "HOME": str(tmp_path),  # nothing a library caches lands in the real home
        "OPENBLAS_NUM_THREADS": "1",
    }
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--smoke"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    assert lines, done.stderr[-2000:]
    assert RATIO.match(lines[-1]), lines[-1]
    assert lines[0].startswith("machine: ")


def test_harness_pattern_matches_the_tests() -> None:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        from _harness import RATIO_PATTERN, ratio_line
    finally:
        sys.path.remove(str(BENCHMARKS))
    assert RATIO.pattern == RATIO_PATTERN
    assert ratio_line("x_y", 1.23456, ">=", 5) == "RATIO x_y = 1.235 (target >= 5) MISSED"
    assert ratio_line("x_y", 0.5, "<=", 1.5).endswith("MET")
