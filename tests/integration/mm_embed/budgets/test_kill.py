"""A holder killed with SIGKILL leaks nothing past one window: real processes share a
FileBudget (and a RedisBudget), one is killed while it holds tickets, and the others
go on at the quota's rate within one window; the SQLite file stays usable, even when
the kill lands inside a write transaction."""

from __future__ import annotations

import json
import math
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mm_embed.budgets import BudgetError, FileBudget, Quota

WORKER = str(Path(__file__).with_name("_worker.py"))
#: A short window (capacity / rate = 2 s) so "within one window" fits in a test.
RATE, CAPACITY = 200.0, 400.0
WINDOW_S = CAPACITY / RATE
AMOUNT = 10.0
#: The victim would hold 60 tickets (600 units, 1.5 windows), but joins the line like a
#: client: only while it is shorter than a window.
SURVIVORS, SURVIVOR_AHEAD, VICTIM_AHEAD = 3, 3, 60
START_TIMEOUT_S = 60.0
#: How long the survivors are measured once a window has passed since the kill.
MEASURE_S = 4.0


@dataclass
class Holder:
    """A ``pace`` worker and the lines it printed (read on a thread)."""

    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.strip())

    def wait_for(self, prefix: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(line.startswith(prefix) for line in self.lines):
            assert self.proc.poll() is None, f"worker exited early: {self.lines[-5:]}"
            assert time.monotonic() < deadline, f"no {prefix!r} within {timeout} s"
            time.sleep(0.02)

    def grants(self) -> list[tuple[float, float]]:
        return [
            (float(t), float(a))
            for kind, t, a in (line.split() for line in self.lines if line.startswith("grant"))
        ]


def start_holder(url: str, ahead: int) -> Holder:
    proc = subprocess.Popen(
        [sys.executable, WORKER, "pace", url, str(RATE), str(CAPACITY), str(AMOUNT), str(ahead)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    return Holder(proc)


def stop(holders: list[Holder]) -> None:
    for holder in holders:
        if holder.proc.poll() is None and holder.proc.stdin is not None:
            holder.proc.stdin.close()
    for holder in holders:
        try:
            holder.proc.wait(20)
        except subprocess.TimeoutExpired:
            holder.proc.kill()
            holder.proc.wait(5)


def most_above_rate(stamps: list[tuple[float, float]]) -> float:
    """The largest amount granted over any interval beyond what the rate refilled in
    it: at most the bucket's capacity when every grant kept to one shared bucket."""
    worst, lowest, total = 0.0, math.inf, 0.0
    for t, amount in sorted(stamps):
        # total granted up to and including this grant, less the refill up to it, minus
        # the least such value before an earlier grant: the interval's excess.
        lowest = min(lowest, total - RATE * t)
        total += amount
        worst = max(worst, total - RATE * t - lowest)
    return worst


def run_kill_scenario(url: str) -> tuple[float, float, list[tuple[float, float]], float]:
    """Start the survivors and a victim on ``url``; SIGKILL the victim while it holds
    tickets; return (kill time, stop time, survivors' grants, victim's held units)."""
    survivors = [start_holder(url, SURVIVOR_AHEAD) for _ in range(SURVIVORS)]
    victim = start_holder(url, VICTIM_AHEAD)
    everyone = [*survivors, victim]
    try:
        for holder in everyone:
            holder.wait_for("ready", START_TIMEOUT_S)
        victim.wait_for("holding", START_TIMEOUT_S)
        time.sleep(0.5)
        victim.proc.send_signal(signal.SIGKILL)
        killed_at = time.time()
        assert victim.proc.wait(10) == -signal.SIGKILL
        time.sleep(WINDOW_S + MEASURE_S)
        stopped_at = time.time()
    finally:
        stop(everyone)
    held = float([line for line in victim.lines if line.startswith("holding")][-1].split()[1])
    grants = [g for holder in survivors for g in holder.grants()]
    # Shared: all holders together never beat the quota (a window's burst at most).
    every_grant = [g for holder in everyone for g in holder.grants()]
    assert most_above_rate(every_grant) <= CAPACITY + AMOUNT
    return killed_at, stopped_at, grants, held


def assert_recovered(
    killed_at: float, stopped_at: float, grants: list[tuple[float, float]]
) -> None:
    after = [a for t, a in grants if killed_at + WINDOW_S <= t <= stopped_at]
    span = stopped_at - (killed_at + WINDOW_S)
    # At the ceiling once a window has passed: the rate's worth of units, less what the
    # survivors still hold at the end (their tickets are paced, not lost).
    expected = RATE * span
    held_at_end = SURVIVORS * SURVIVOR_AHEAD * AMOUNT
    assert sum(after) >= 0.8 * expected - held_at_end, (sum(after), expected)
    assert sum(after) <= expected + CAPACITY + AMOUNT * SURVIVORS


def take_in_new_process(kind: str, target: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, WORKER, "take", kind, target],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    state: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return state


@pytest.mark.timeout(180)
def test_file_budget_survives_a_holder_killed_while_holding_tickets(tmp_path: Path) -> None:
    path = tmp_path / "budget.db"
    killed_at, stopped_at, grants, held = run_kill_scenario(f"file://{path}")
    # The victim stranded tickets: at most a window's worth and one request.
    assert 0 < held <= CAPACITY + AMOUNT
    assert_recovered(killed_at, stopped_at, grants)
    # The file is whole and unlocked: a new process takes at once.
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    state = take_in_new_process("file", str(path))
    assert state["consumed"] > 0


@pytest.mark.timeout(180)
def test_redis_budget_survives_a_holder_killed_while_holding_tickets(redis_url: str) -> None:
    killed_at, stopped_at, grants, held = run_kill_scenario(redis_url)
    assert 0 < held <= CAPACITY + AMOUNT
    assert_recovered(killed_at, stopped_at, grants)
    assert take_in_new_process("redis", redis_url)["consumed"] > 0


@pytest.mark.timeout(120)
def test_a_kill_inside_a_write_transaction_leaves_no_lock(tmp_path: Path) -> None:
    path = tmp_path / "budget.db"
    quota = Quota("tokens:pace", 200.0, 400.0)
    with FileBudget(path) as budget:
        budget.take("acct", quota, 50)
    hung = Holder(
        subprocess.Popen(
            [sys.executable, WORKER, "hang", str(path)], stdout=subprocess.PIPE, text=True
        )
    )
    try:
        hung.wait_for("in-transaction", START_TIMEOUT_S)
        # It really holds the write lock: nobody else can write meanwhile.
        with (
            FileBudget(path, busy_timeout=0.2) as blocked,
            pytest.raises(BudgetError, match="locked"),
        ):
            blocked.take("acct", quota, 1)
        hung.proc.send_signal(signal.SIGKILL)
        assert hung.proc.wait(10) == -signal.SIGKILL
    finally:
        if hung.proc.poll() is None:
            hung.proc.kill()
            hung.proc.wait(5)
    state = take_in_new_process("file", str(path))
    # Its half-done take was rolled back: 50 before it, plus the new process's 1.
    assert state["consumed"] == 51
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
