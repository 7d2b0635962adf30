"""Each backend runs the bucket arithmetic: tickets in arrival order, refunds bringing
waiters forward, extra charges pushing them back, AIMD cut / cooldown / recovery, one
bucket per (account, quota). Local and file budgets run on a fake clock; the Redis one
takes the same fake ``now`` through its script's test argument."""

from __future__ import annotations

import math

import pytest

from mm_embed.budgets import Budget, Quota, _bucket
from tests.integration._helpers import FakeClock

Q = Quota("tokens:m", rate=10.0, capacity=20.0)


def wait_for(budget: Budget, amount: float, quota: Quota = Q, account: str = "acct") -> float:
    return budget.due_in(budget.take(account, quota, amount))


def test_starts_full_then_meters_in_arrival_order(budget: Budget, clock: FakeClock) -> None:
    assert wait_for(budget, 20) == 0.0
    assert wait_for(budget, 5) == pytest.approx(0.5)
    assert wait_for(budget, 5) == pytest.approx(1.0)  # behind the previous caller
    clock.advance(1.0)
    assert wait_for(budget, 10) == pytest.approx(1.0)
    assert budget.state("acct", Q).consumed == pytest.approx(40)


def test_tickets_come_due_in_the_order_they_were_taken(budget: Budget, clock: FakeClock) -> None:
    tickets = [budget.take("acct", Q, 20) for _ in range(4)]
    assert [t.position for t in tickets] == [20, 40, 60, 80]
    for _ in range(8):
        due = [budget.due_in(t) == 0.0 for t in tickets]
        # Once a ticket is due every earlier one is too.
        assert due == sorted(due, reverse=True)
        clock.advance(0.75)
    assert all(budget.due_in(t) == 0.0 for t in tickets)


def test_joining_stops_while_the_line_is_a_window_long(budget: Budget, clock: FakeClock) -> None:
    # The full bucket is not a line: the burst is taken at once.
    assert budget.join("acct", Q, 20) is not None
    # Then holders join until the units not yet refilled reach a window (capacity 20).
    first = budget.join("acct", Q, 15)
    assert first is not None and budget.due_in(first) == pytest.approx(1.5)
    big = budget.join("acct", Q, 50)  # 15 in line < 20: a large request may still join
    # ... and waits for a full bucket (the provider admits it then), not for 50 units.
    assert big is not None and budget.due_in(big) == pytest.approx(3.5)
    assert budget.join("acct", Q, 1) is None  # 65 in line: wait
    assert budget.state("acct", Q).consumed == 85  # a refused join took nothing
    clock.advance(4.0)  # 25 units in line: still more than a window
    assert budget.join("acct", Q, 1) is None
    clock.advance(0.7)  # 18 units in line
    assert budget.join("acct", Q, 1) is not None
    # take() always joins: callers that must not wait for room use it.
    assert budget.due_in(budget.take("acct", Q, 1)) == pytest.approx(2.0)


def test_idle_refill_is_capped_at_capacity(budget: Budget, clock: FakeClock) -> None:
    wait_for(budget, 20)
    clock.advance(3600)
    assert wait_for(budget, 20) == 0.0
    assert wait_for(budget, 1) == pytest.approx(0.1)


def test_a_refund_brings_waiting_tickets_forward(budget: Budget, clock: FakeClock) -> None:
    first = budget.take("acct", Q, 20)
    second = budget.take("acct", Q, 10)
    third = budget.take("acct", Q, 10)
    assert budget.due_in(second) == pytest.approx(1.0)
    assert budget.due_in(third) == pytest.approx(2.0)
    clock.advance(0.25)
    budget.cancel(first)  # the first call used nothing
    assert budget.due_in(second) == 0.0
    assert budget.due_in(third) == 0.0
    assert budget.state("acct", Q).consumed == pytest.approx(20)


def test_a_partial_refund_moves_waiters_by_its_size(budget: Budget) -> None:
    first = budget.take("acct", Q, 20)
    waiting = budget.take("acct", Q, 20)
    assert budget.due_in(waiting) == pytest.approx(2.0)
    budget.settle(first, 12)  # billed 12 of the 20 estimated
    assert budget.due_in(waiting) == pytest.approx(1.2)


def test_an_extra_charge_pushes_waiters_back(budget: Budget) -> None:
    first = budget.take("acct", Q, 20)
    waiting = budget.take("acct", Q, 10)
    assert budget.due_in(waiting) == pytest.approx(1.0)
    budget.settle(first, 35)  # the reply billed 15 more than estimated
    assert budget.due_in(waiting) == pytest.approx(2.5)
    assert budget.state("acct", Q).consumed == pytest.approx(45)


def test_a_refund_never_lifts_the_balance_above_capacity(budget: Budget) -> None:
    budget.adjust("acct", Q, -1000)
    assert wait_for(budget, 20) == 0.0
    assert wait_for(budget, 1) == pytest.approx(0.1)


def test_accounts_and_quotas_are_separate_buckets(budget: Budget) -> None:
    assert wait_for(budget, 20) == 0.0
    assert wait_for(budget, 20, account="other") == 0.0
    assert wait_for(budget, 20, Quota("tokens:n", 10, 20)) == 0.0
    assert wait_for(budget, 10) == pytest.approx(1.0)


def test_aimd_halves_once_per_cooldown_then_recovers(budget: Budget, clock: FakeClock) -> None:
    wait_for(budget, 20)
    assert budget.refused("acct", Q) is True
    # Refusals of requests already in flight within the cooldown count once.
    clock.advance(_bucket.COOLDOWN_S / 2)
    assert budget.refused("acct", Q) is False
    state = budget.state("acct", Q)
    assert state.factor == pytest.approx(_bucket.DECREASE + _bucket.RECOVERY_PER_S * 0.5)
    assert state.last_cut == clock.now - _bucket.COOLDOWN_S / 2
    clock.advance(_bucket.COOLDOWN_S / 2)
    assert budget.refused("acct", Q) is True
    factor = budget.state("acct", Q).factor
    assert factor == pytest.approx((0.5 + _bucket.RECOVERY_PER_S) * 0.5)
    # Additive recovery: RECOVERY_PER_S per second, back to 1 and no further.
    clock.advance(10)
    assert budget.state("acct", Q).factor == pytest.approx(factor + 10 * _bucket.RECOVERY_PER_S)
    clock.advance(100)
    assert budget.state("acct", Q).factor == 1.0


def test_a_cut_slows_every_waiter_and_drops_the_burst(budget: Budget) -> None:
    assert budget.refused("acct", Q) is True
    # The bucket was full, but after a refusal nobody bursts, and the rate is halved.
    assert wait_for(budget, 5) == pytest.approx(5 / (10 * _bucket.DECREASE))


def test_aimd_never_stops_the_quota(budget: Budget, clock: FakeClock) -> None:
    for _ in range(40):
        budget.refused("acct", Q)
        clock.advance(_bucket.COOLDOWN_S)
    state = budget.state("acct", Q)
    assert _bucket.MIN_FACTOR <= state.factor < 0.2
    assert math.isfinite(wait_for(budget, 1))


def test_state_is_a_copy_refilled_to_now(budget: Budget, clock: FakeClock) -> None:
    wait_for(budget, 20)
    clock.advance(0.5)
    state = budget.state("acct", Q)
    assert state.balance == pytest.approx(5.0) and state.updated == clock.now
    state.balance = 1e9
    assert budget.state("acct", Q).balance == pytest.approx(5.0)
    fresh = budget.state("nobody", Q)
    assert fresh.balance == Q.capacity and fresh.last_cut == -math.inf
