"""The bulk benchmark scripts run (``--smoke``) and end with their RATIO line."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
RATIO = re.compile(r"^RATIO [a-z0-9_]+ = [0-9]+\.[0-9]+ \(target (>=|<=) [0-9.]+\) (MET|MISSED)$")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("script", ["bulk_throughput.py", "bulk_memory.py", "bulk_resume.py"])
def test_smoke(script: str) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--smoke"],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    last = done.stdout.strip().splitlines()[-1]
    assert RATIO.match(last), last
    assert last.endswith("MET"), done.stdout
