"""``RayBudget``: the quota arithmetic of ``LocalBudget`` in one named, detached actor
that every process of the cluster shares."""

from __future__ import annotations

import pickle
import sys
from typing import Any

import pytest
import ray
import ray.cloudpickle

from mm_embed.budgets import LocalBudget, Quota
from mm_embed.budgets._bucket import COOLDOWN_S
from mm_embed.ray import RayBudget
from tests.integration._helpers import RayCluster, wait_until

# The workers cannot import this file: its classes travel by value.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

QUOTA = Quota.per_minute("tokens:bge-m3", 6000)
IMAGES = Quota("images", 15.0, 7.0)


@ray.remote(num_cpus=0)
class FakeClock:
    """A clock the test moves by hand, read by the budget actor."""

    def __init__(self) -> None:
        self.now = 0.0

    def read(self) -> float:
        return self.now

    def set(self, now: float) -> None:
        self.now = now


class RemoteClock:
    """A picklable clock that reads :class:`FakeClock`."""

    def __init__(self, actor: Any) -> None:
        self.actor = actor

    def __call__(self) -> float:
        return float(ray.get(self.actor.read.remote()))


def _script(budget: Any, at: Any) -> list[object]:
    """The same calls at the same (fake) times; everything the budget answers."""
    seen: list[object] = []
    at(0.0)
    first = budget.take("acct", QUOTA, 5000.0)
    second = budget.take("acct", QUOTA, 2000.0)
    seen += [first.position, second.position, budget.due_in(first), budget.due_in(second)]
    at(3.5)
    seen += [budget.due_in(second)]
    budget.settle(first, 3100.0)  # the reply billed less: the refund brings "second" on
    seen += [budget.due_in(second), budget.state("acct", QUOTA)]
    at(4.0)
    seen += [budget.refused("acct", QUOTA)]
    at(4.0 + COOLDOWN_S / 2)
    seen += [budget.refused("acct", QUOTA), budget.state("acct", QUOTA)]
    at(9.0)
    joined = budget.join("acct", QUOTA, 100.0)  # the line is short: joins
    big = budget.take("acct", QUOTA, 9000.0)  # over the whole bucket: waits for a full one
    seen += [joined, big.position, budget.due_in(big)]
    seen += [budget.join("acct", QUOTA, 100.0)]  # the line is a window long: refused
    other = budget.take("other-account", QUOTA, 10.0)
    images = budget.take("acct", IMAGES, 7.0)
    seen += [budget.due_in(other), budget.due_in(images), budget.state("acct", IMAGES)]
    budget.cancel(big)
    at(40.0)
    seen += [budget.state("acct", QUOTA), budget.state("other-account", QUOTA)]
    return seen


@pytest.mark.timeout(120)
def test_its_numbers_equal_local_budgets_on_the_same_clock(ray_cluster: RayCluster) -> None:
    local_now = [0.0]
    local = LocalBudget(clock=lambda: local_now[0])
    expected = _script(local, lambda t: local_now.__setitem__(0, t))

    clock = FakeClock.remote()
    remote = RayBudget(
        ray_cluster.budget_name(), namespace=ray_cluster.namespace, clock=RemoteClock(clock)
    )
    try:
        got = _script(remote, lambda t: ray.get(clock.set.remote(t)))
    finally:
        remote.destroy()
    assert got == expected
    # The script did reach every branch: a wait, a cut, a cooldown, a full-bucket wait.
    assert expected[2] == 0 and expected[3] > 0 and expected[7] is True and expected[8] is False
    # ... and join both ways: into a short line, and not into a window-long one.
    assert expected[10] is not None and expected[13] is None


@ray.remote(num_cpus=0)
def _take_from(budget: RayBudget, times: int) -> list[float]:
    return [budget.take("acct", QUOTA, 10.0).position for _ in range(times)]


@pytest.mark.timeout(120)
def test_every_process_shares_one_actor(ray_cluster: RayCluster) -> None:
    budget = RayBudget(ray_cluster.budget_name(), namespace=ray_cluster.namespace)
    try:
        copy = pickle.loads(pickle.dumps(budget))
        assert copy.name == budget.name and "token" not in repr(copy).lower()
        positions = [
            p for batch in ray.get([_take_from.remote(budget, 20) for _ in range(3)]) for p in batch
        ]
        positions += [copy.take("acct", QUOTA, 10.0).position]
        # One line for everyone: 61 tickets of 10 units, each place given once.
        assert sorted(positions) == [10.0 * k for k in range(1, 62)]
        assert budget.state("acct", QUOTA).reserved == 610.0
    finally:
        budget.destroy()


@pytest.mark.timeout(120)
def test_it_outlives_its_creator_and_a_restart_starts_it_empty(ray_cluster: RayCluster) -> None:
    name, namespace = ray_cluster.budget_name(), ray_cluster.namespace

    @ray.remote(num_cpus=0)
    def create_and_spend() -> float:
        budget = RayBudget(name, namespace=namespace)
        budget.adjust("acct", QUOTA, 1000.0)
        return budget.state("acct", QUOTA).balance

    assert ray.get(create_and_spend.remote()) == pytest.approx(5000.0, abs=5.0)
    joined = RayBudget(name, namespace=ray_cluster.namespace)
    try:
        # The task that created it is gone; the actor (detached) and its state are not.
        assert joined.state("acct", QUOTA).consumed == 1000.0
        ray.kill(ray.get_actor(name, namespace=ray_cluster.namespace), no_restart=False)

        def restarted() -> bool:
            try:
                return joined.state("acct", QUOTA).consumed != 1000.0
            except ray.exceptions.RayActorError:
                return False

        wait_until(restarted, 60, "the budget actor to restart")
        # Restarted after a crash, it does not hand out a fresh minute.
        assert joined.state("acct", QUOTA).balance < 0.05 * QUOTA.capacity
    finally:
        joined.destroy()


@pytest.mark.timeout(120)
def test_a_ray_url_names_the_cluster_budget(
    ray_cluster: RayCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mm_embed.budgets import budget_from_url, resolve_budget

    name = ray_cluster.budget_name()
    url = f"ray://{ray_cluster.namespace}/{name}"
    budget = budget_from_url(url)
    try:
        assert isinstance(budget, RayBudget)
        assert (budget.name, budget.namespace) == (name, ray_cluster.namespace)
        monkeypatch.setenv("MM_EMBED_BUDGET", url)
        assert resolve_budget(None) is budget  # one object per URL in a process
        ticket = resolve_budget(None).take("acct", QUOTA, 10.0)
        assert budget.state("acct", QUOTA).reserved == ticket.position == 10.0
    finally:
        budget.destroy()
