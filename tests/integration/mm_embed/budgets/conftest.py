"""Budget fixtures: a fake clock, and one budget of each backend driven by it (the
Redis one on the session's real ``redis-server``, a fixture of ``tests/conftest.py``)."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mm_embed.budgets import Budget, FileBudget, LocalBudget, RedisBudget

BACKENDS = ("local", "file", "redis")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class FakeClock:
    """Seconds that move only when told (wall-clock sized, like ``time.time``)."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def redis_url(redis_server: str) -> str:
    """The session's server, emptied for this test."""
    import redis

    client = redis.Redis.from_url(redis_server)
    try:
        client.flushdb()
    finally:
        client.close()
    return redis_server


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


BudgetFactory = Callable[[str, FakeClock], Budget]


@pytest.fixture
def make_budget(tmp_path: Path, redis_url: str) -> Iterator[BudgetFactory]:
    """``make_budget(kind, clock)``: a fresh ``local``, ``file`` or ``redis`` budget on
    ``clock``, closed after the test."""
    opened: list[Budget] = []

    def make(kind: str, clock: FakeClock) -> Budget:
        budget: Budget
        if kind == "local":
            budget = LocalBudget(clock)
        elif kind == "file":
            budget = FileBudget(tmp_path / f"budget-{len(opened)}.db", clock=clock)
        else:
            budget = RedisBudget(redis_url, clock=clock, prefix=f"test{len(opened)}:")
        opened.append(budget)
        return budget

    yield make
    for budget in opened:
        budget.close()


@pytest.fixture(params=BACKENDS)
def budget(request: pytest.FixtureRequest, make_budget: BudgetFactory, clock: FakeClock) -> Budget:
    """One budget of each backend on the test's fake clock."""
    kind: str = request.param
    return make_budget(kind, clock)
