"""Acceptance, CI size: a run killed with SIGKILL twice at random points, under a 10 %
fault rate, resumes to the same bytes as a clean run, and never re-sends an item whose
result was already on disk. (Full size: ``benchmarks/bulk_resume.py``.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration._helpers import kill_and_resume


@pytest.mark.timeout(180)
def test_sigkill_twice_then_resume_gives_the_clean_file(tmp_path: Path) -> None:
    report = kill_and_resume(
        tmp_path, items=2000, kills=2, fault_rate=0.1, seed=7, batch_size=50, window_batches=4
    )
    shown = "\n".join(report.lines())
    assert len(report.kills) == 2 and report.exit_codes == [-9, -9, 0], shown
    assert report.equal_tables and report.identical_bytes, shown
    assert report.never_embedded == 0, shown
    assert report.resent_after_durable == 0 and report.unexplained_repeats == 0, shown
    # Only calls in flight at a kill can be sent again: at most the pool's 4 + the
    # emulator's queue, well under a window per kill.
    assert report.embedded_twice_in_flight <= 2 * 4 * 50, shown
    assert report.faults > 0, shown


@pytest.mark.timeout(120)
def test_ctrl_c_stops_cleanly_and_resumes(tmp_path: Path) -> None:
    import signal
    import subprocess
    import time

    from mm_embed.emulator import Emulator
    from tests.integration._helpers import (
        cli_env,
        durable_batches,
        embed_command,
        run_cli,
        write_corpus,
    )

    corpus = tmp_path / "c.jsonl"
    write_corpus(corpus, 600)
    options = ("--batch-size", "20", "--window-batches", "3", "--tokens-per-minute", "0")
    with Emulator(latency_ms=60) as emu:
        env = cli_env(emu)
        clean = tmp_path / "clean.parquet"
        subprocess.run(embed_command(corpus, clean, *options), env=env, check=True, timeout=60)
        out = tmp_path / "o.parquet"
        proc = subprocess.Popen(
            embed_command(corpus, out, *options), env=env, stderr=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + 30
        while len(durable_batches(tmp_path / "o.parquet.parts", 60, 20)) < 8:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
        assert proc.returncode == 130, stderr
        assert "interrupted" in stderr and "resume to continue" in stderr
        assert not out.exists()
        done = run_cli(embed_command(corpus, out, *options, "--resume"), env)
        assert done.returncode == 0, done.stderr
        assert "finished by an earlier run" in done.stderr
    assert out.read_bytes() == clean.read_bytes()
