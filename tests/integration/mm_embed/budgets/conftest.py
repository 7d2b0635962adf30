"""Budget fixtures: a fake clock, and one budget of each backend driven by it (the
Redis one on the session's real ``redis-server``, a fixture of
``tests/integration/conftest.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mm_embed.budgets import Budget, FileBudget, LocalBudget, RedisBudget
from tests.integration._helpers import BACKENDS, BudgetFactory, FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


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
