"""Acceptance, CI size: a run killed with SIGKILL twice at random points, under a 10 %
fault rate, resumes to the same bytes as a clean run, and never re-sends an item whose
result was already on disk. (Full size: ``benchmarks/bulk_resume.py``.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from .harness import kill_and_resume


@pytest.mark.timeout(180)
def test_sigkill_twice_then_resume_gives_the_clean_file(tmp_path: Path) -> None:
    report = kill_and_resume(
        tmp_path, items=2000, kills=2, fault_rate=0.1, seed=7, batch_size=50, window_batches=4
    )
    shown = "\n".join(report.lines())
    assert len(report.kills) == 2 and report.exit_codes == [-9, -9, 0], shown
    assert report.equal_tables and report.identical_bytes, shown
    assert report.never_embedded == 0, shown
    assert report.resent_after_durable == 0, shown
    # Only calls in flight at a kill can be sent again: at most the pool's 4 + the
    # emulator's queue, well under a window per kill.
    assert report.embedded_twice_in_flight <= 2 * 4 * 50, shown
    assert report.faults > 0, shown
