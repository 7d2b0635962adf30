"""What only the shared stores do: every process sees one bucket (tickets taken by
racing processes are all distinct), threads share one budget object, a FileBudget
survives reopening, fork and pickling; a RedisBudget runs on the server's clock, can
file every holder under one account, and reloads its script when the server forgot it."""

from __future__ import annotations

import json
import multiprocessing
import pickle
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mm_embed.budgets import Budget, BudgetError, FileBudget, Quota, RedisBudget
from tests.integration._helpers import FakeClock
from tests.integration.mm_embed.budgets._worker import run_together

Q = Quota("tokens:m", rate=10.0, capacity=20.0)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", ["file", "redis"])
def test_racing_processes_get_distinct_places_in_line(
    backend: str, tmp_path: Path, redis_url: str
) -> None:
    url = f"file://{tmp_path}/race.db" if backend == "file" else redis_url
    seen: list[float] = []
    for last in run_together([["positions", url, "150"]] * 4):
        mine = json.loads(last)
        assert mine == sorted(mine)  # each process's own tickets in its order
        seen += mine
    # No lost update: 600 takes of one unit are exactly the places 1..600.
    assert sorted(seen) == [float(i) for i in range(1, 601)]


def test_processes_creating_one_file_budget_together_all_open_it(tmp_path: Path) -> None:
    # Switching a new file to WAL takes an exclusive lock that SQLite does not wait
    # for; every process must still open the file, and the takes must all count.
    path = tmp_path / "new.db"
    assert run_together([["open", str(path)]] * 8) == ["opened"] * 8
    with FileBudget(path) as budget:
        assert budget.state("acct", Quota("tokens:open", 1.0, 1.0)).consumed == 8


def test_threads_share_one_budget_object(budget: Budget) -> None:
    quota = Quota("q", 1, 1)

    def take_fifty(_: int) -> list[float]:
        return [budget.due_in(budget.take("acct", quota, 1)) for _ in range(50)]

    with ThreadPoolExecutor(6) as pool:
        waits = [wait for batch in pool.map(take_fifty, range(6)) for wait in batch]
    assert budget.state("acct", quota).consumed == 300
    # Every unit got its own slot: waits are exactly 0, 1, 2, ... 299 seconds.
    assert sorted(waits) == [float(i) for i in range(300)]


# --------------------------------------------------------------------------- file


def test_file_budget_keeps_its_buckets_when_reopened(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "b.db"
    with FileBudget(path, clock=clock) as first:
        first.take("acct", Q, 20)
        first.refused("acct", Q)
    with FileBudget(path, clock=clock) as again:
        state = again.state("acct", Q)
        assert state.consumed == 20 and state.factor == 0.5 and state.last_cut == clock.now
        assert again.due_in(again.take("acct", Q, 5)) == pytest.approx(1.0)


def _take_in_child(budget: FileBudget) -> None:
    budget.take("acct", Q, 7)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_file_budget_crosses_fork_and_pickling(tmp_path: Path, method: str) -> None:
    budget = FileBudget(tmp_path / "b.db")
    budget.take("acct", Q, 1)  # the parent's connection is open before the fork
    child = multiprocessing.get_context(method).Process(target=_take_in_child, args=(budget,))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    assert budget.state("acct", Q).consumed == 8
    copy = pickle.loads(pickle.dumps(budget))
    assert isinstance(copy, FileBudget) and copy.path == budget.path
    assert copy.state("acct", Q).consumed == 8
    budget.close()
    copy.close()


def test_file_budget_refuses_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not a database, " * 100)
    with pytest.raises(BudgetError, match=r"notes\.txt"):
        FileBudget(path)
    with pytest.raises(BudgetError, match="missing-dir"):
        FileBudget(tmp_path / "missing-dir" / "b.db")


# --------------------------------------------------------------------------- redis


def test_redis_budget_runs_on_the_server_clock(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import redis

    server = redis.Redis.from_url(redis_url)
    seconds, micros = server.time()
    server_now = seconds + micros / 1e6
    # A host whose clock is an hour fast still stamps the bucket with the server's time.
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 3600)
    with RedisBudget(redis_url) as budget:
        budget.take("acct", Q, 1)
        assert abs(budget.state("acct", Q).updated - server_now) < 5
    server.close()


def test_account_override_files_every_holder_under_one_account(
    redis_url: str, clock: FakeClock
) -> None:
    shared = [RedisBudget(redis_url, account="team", clock=clock) for _ in range(2)]
    # Two sub-accounts (different credentials) of one account draw from one bucket.
    assert shared[0].due_in(shared[0].take("sub-1", Q, 20)) == 0.0
    assert shared[1].due_in(shared[1].take("sub-2", Q, 10)) == pytest.approx(1.0)
    assert shared[1].state("anything", Q).consumed == 30
    # Without the override each sub-account has its own bucket.
    with RedisBudget(redis_url, clock=clock) as plain:
        assert plain.due_in(plain.take("sub-2", Q, 20)) == 0.0
    assert "team" in repr(shared[0])
    for budget in shared:
        budget.close()


def test_script_is_loaded_again_when_the_server_forgot_it(redis_url: str) -> None:
    import redis

    server = redis.Redis.from_url(redis_url)
    with RedisBudget(redis_url, prefix="p:", ttl=600) as budget:
        budget.take("acct", Q, 3)
        server.script_flush()
        budget.take("acct", Q, 4)
        assert budget.state("acct", Q).consumed == 7
    # Idle buckets expire: the hash carries the lifetime it was given.
    assert 0 < server.pttl("p:acct:tokens:m") <= 600_000
    server.close()


def test_redis_budget_crosses_pickling(redis_url: str) -> None:
    with RedisBudget(redis_url, account="team", prefix="pk:") as budget:
        budget.take("acct", Q, 5)
        copy = pickle.loads(pickle.dumps(budget))
        assert (copy.url, copy.account, copy.prefix) == (redis_url, "team", "pk:")
        assert copy.state("acct", Q).consumed == 5
        copy.close()


def test_redis_budget_never_shows_the_password(redis_server: str) -> None:
    url = redis_server.replace("redis://", "redis://:hunter2-secret@")
    budget = RedisBudget(url)  # this server has no password and ignores it
    assert "hunter2" not in repr(budget) and "127.0.0.1" in repr(budget)
    assert "hunter2" not in budget.url
    with pytest.raises(TypeError, match="password") as caught:
        pickle.dumps(budget)
    assert "hunter2" not in str(caught.value)
    budget.close()
