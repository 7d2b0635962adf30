"""Each benchmark script runs end to end at tiny sizes (``--smoke``) and closes with its
ratio line. The numbers of a smoke run mean nothing; the full runs are in
benchmarks/README.md."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration._helpers import RATIO, run_benchmark

SCRIPTS = [
    "ceiling.py",
    "sdk_speedup.py",
    "parse_overhead.py",
    "memory.py",
    "fgclip_concurrency.py",
]


@pytest.mark.parametrize("script", SCRIPTS)
def test_smoke_run_ends_with_its_ratio(script: str, tmp_path: Path) -> None:
    run_benchmark(script, "--smoke", workdir=tmp_path, timeout=60)


def test_harness_pattern_matches_the_tests() -> None:
    from _harness import RATIO_PATTERN, ratio_line

    assert RATIO.pattern == RATIO_PATTERN
    assert ratio_line("x_y", 1.23456, ">=", 5) == "RATIO x_y = 1.235 (target >= 5) MISSED"
    assert ratio_line("x_y", 0.5, "<=", 1.5).endswith("MET")
