"""The bulk benchmark scripts run (``--smoke``) and end with their RATIO line, met."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration._helpers import run_benchmark


@pytest.mark.timeout(120)
@pytest.mark.parametrize("script", ["bulk_throughput.py", "bulk_memory.py", "bulk_resume.py"])
def test_smoke(script: str, tmp_path: Path) -> None:
    lines = run_benchmark(script, "--smoke", workdir=tmp_path, timeout=110)
    assert lines[-1].endswith("MET"), "\n".join(lines)
