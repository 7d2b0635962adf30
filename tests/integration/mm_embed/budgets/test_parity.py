"""Parity: one scenario (takes, joins, waits, refunds, extra charges, refusals, idle
gaps, two accounts, two quotas) run against LocalBudget, FileBudget and RedisBudget on the same
fake clock gives identical waits, tickets and states, to the last bit."""

from __future__ import annotations

import random
from dataclasses import astuple
from typing import Any

import pytest

from mm_embed.budgets import Budget, Quota, Ticket
from tests.integration._helpers import BACKENDS, BudgetFactory, FakeClock

QUOTAS = (Quota("tokens:a", rate=2000.0, capacity=120_000.0), Quota("images", 15.0, 7.0))
ACCOUNTS = ("acct-1", "acct-2")


def scenario(seed: int, steps: int) -> list[tuple[str, Any]]:
    """A reproducible list of operations; each names its arguments, not a backend."""
    rng = random.Random(seed)
    ops: list[tuple[str, Any]] = []
    for _ in range(steps):
        roll = rng.random()
        account, quota = rng.choice(ACCOUNTS), rng.randrange(len(QUOTAS))
        scale = QUOTAS[quota].capacity
        if roll < 0.2:
            ops.append(("take", (account, quota, rng.uniform(0, scale / 3))))
        elif roll < 0.35:
            ops.append(("join", (account, quota, rng.uniform(0, scale / 3))))
        elif roll < 0.6:
            ops.append(("due_in", rng.randrange(1 << 30)))  # which outstanding ticket
        elif roll < 0.7:
            ops.append(("adjust", (account, quota, rng.uniform(-scale / 4, scale / 4))))
        elif roll < 0.75:
            # Refusals come in bursts (requests in flight together): the cooldown shows.
            ops.extend([("refused", (account, quota))] * rng.randint(1, 3))
        elif roll < 0.8:
            ops.append(("state", (account, quota)))
        else:
            gap = rng.choice((0.0, rng.uniform(0, 0.2), rng.uniform(0, 5), rng.uniform(0, 90)))
            ops.append(("advance", gap))
    return ops


def play(budget: Budget, clock: FakeClock, ops: list[tuple[str, Any]]) -> list[Any]:
    """Run ``ops`` and return everything the budget answered."""
    tickets: list[Ticket] = []
    out: list[Any] = []
    for name, args in ops:
        if name == "advance":
            clock.advance(args)
        elif name == "due_in":
            if tickets:
                out.append(budget.due_in(tickets[args % len(tickets)]))
        elif name in ("take", "join"):
            account, quota, amount = args
            ticket = getattr(budget, name)(account, QUOTAS[quota], amount)
            if ticket is not None:
                tickets.append(ticket)
            out.append(None if ticket is None else ticket.position)
        elif name == "state":
            account, quota = args
            out.append(astuple(budget.state(account, QUOTAS[quota])))
        else:
            account, quota, *rest = args
            out.append(getattr(budget, name)(account, QUOTAS[quota], *rest))
    for account in ACCOUNTS:
        for quota in QUOTAS:
            out.append(astuple(budget.state(account, quota)))
    return out


@pytest.mark.parametrize("seed", range(4))
def test_three_backends_answer_identically(make_budget: BudgetFactory, seed: int) -> None:
    ops = scenario(seed, 400)
    answers = {}
    for kind in BACKENDS:
        clock = FakeClock()
        answers[kind] = play(make_budget(kind, clock), clock, ops)
    assert answers["file"] == answers["local"]
    assert answers["redis"] == answers["local"]
    # The scenario exercised waiting, cutting and refunds, not only idle buckets.
    waits = [a for a in answers["local"] if isinstance(a, float) and 0 < a < 1e6]
    assert len(waits) > 20
    assert any(a is True for a in answers["local"]) and any(a is False for a in answers["local"])
    assert None in answers["local"]  # some joins found the line a window long
