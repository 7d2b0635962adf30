""":class:`RayBudget`: an account's quota as a named, detached Ray actor.

Every Ray actor that embeds, and every driver, holds the same account; the provider
counts their requests together. One actor per cluster holds the buckets, so the whole
cluster stays inside the account's quota: a client in any process takes its tickets
from it. The actor keeps the buckets of a :class:`~mm_embed.budgets.LocalBudget`
(the arithmetic of :mod:`mm_embed.budgets._bucket`, so its numbers equal an
in-process budget's) and runs one call at a time; its clock is its own, so hosts need
no synchronised clocks.

It is *detached*: it outlives the driver that created it, so a resumed run joins the
budget the killed run was spending instead of starting with a fresh minute the
provider never gave back. It asks for no CPU.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

from ..budgets import BucketState, Budget, LocalBudget, Quota, Ticket
from .runtime import require_ray

__all__ = ["DEFAULT_NAME", "DEFAULT_NAMESPACE", "BudgetActor", "RayBudget"]

#: The actor's name when none is given: one budget per cluster and namespace.
DEFAULT_NAME = "mm-embed-budget"
#: The Ray namespace of the actor (named actors are looked up within a namespace).
DEFAULT_NAMESPACE = "mm-embed"


class BudgetActor:
    """The state behind a :class:`RayBudget` (the class the actor runs).

    ``clock`` is any picklable zero-argument callable returning seconds (default
    :func:`time.monotonic` of the actor's process). An actor that Ray restarted after a
    crash starts each bucket empty, not full: the provider's window was being spent
    while it was down.
    """

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        ray = require_ray()
        self._budget = LocalBudget(clock or time.monotonic)
        with warnings.catch_warnings():  # Ray's own property calls a deprecated one
            warnings.simplefilter("ignore")
            self._restarted = bool(ray.get_runtime_context().was_current_actor_reconstructed)
        self._seen: set[tuple[str, str]] = set()

    def _touch(self, account: str, quota: Quota) -> None:
        key = (account, quota.name)
        if key in self._seen:
            return
        self._seen.add(key)
        if self._restarted:
            self._budget.adjust(account, quota, quota.capacity)

    def take(self, account: str, quota: Quota, amount: float) -> float:
        self._touch(account, quota)
        return self._budget.take(account, quota, amount).position

    def join(self, account: str, quota: Quota, amount: float) -> float | None:
        self._touch(account, quota)
        ticket = self._budget.join(account, quota, amount)
        return None if ticket is None else ticket.position

    def due_in(self, account: str, quota: Quota, position: float, amount: float) -> float:
        self._touch(account, quota)
        return self._budget.due_in(Ticket(account, quota, position, amount))

    def adjust(self, account: str, quota: Quota, delta: float) -> None:
        self._touch(account, quota)
        self._budget.adjust(account, quota, delta)

    def refused(self, account: str, quota: Quota) -> bool:
        self._touch(account, quota)
        return self._budget.refused(account, quota)

    def state(self, account: str, quota: Quota) -> BucketState:
        self._touch(account, quota)
        return self._budget.state(account, quota)


class RayBudget(Budget):
    """The account's quota for a whole Ray cluster: a named, detached actor.

    ``RayBudget()`` creates the actor ``name`` in ``namespace`` or joins it if it exists,
    on first use (so building one costs nothing until a client takes a ticket). Pass it
    as ``budget=`` to any client, or to :func:`mm_embed.ray.embed_dataset`. It pickles as
    its name: the copy in a worker looks the same actor up.

    ``clock`` (a picklable zero-argument callable) is given to the actor when this
    object creates it; an existing actor keeps its own. :meth:`close` lets go of this
    handle only; :meth:`destroy` removes the actor for every holder.
    """

    def __init__(
        self,
        name: str = DEFAULT_NAME,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__()
        self.name, self.namespace, self._actor_clock = name, namespace, clock
        self._handle: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RayBudget(name={self.name!r}, namespace={self.namespace!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rejoin, (self.name, self.namespace, self._actor_clock))

    @property
    def actor(self) -> Any:
        """The actor's handle (created or looked up on first use)."""
        if self._handle is None:
            with self._lock:
                if self._handle is None:
                    ray = require_ray()
                    self._handle = (
                        ray.remote(BudgetActor)
                        .options(
                            name=self.name,
                            namespace=self.namespace,
                            lifetime="detached",
                            get_if_exists=True,
                            num_cpus=0,
                            max_restarts=-1,
                        )
                        .remote(self._actor_clock)
                    )
        return self._handle

    def _call(self, method: str, *args: Any) -> Any:
        ray = require_ray()
        return ray.get(getattr(self.actor, method).remote(*args))

    def take(self, account: str, quota: Quota, amount: float) -> Ticket:
        return Ticket(account, quota, float(self._call("take", account, quota, amount)), amount)

    def join(self, account: str, quota: Quota, amount: float) -> Ticket | None:
        # One atomic call to the actor, as the other stores do: the base class's
        # state-then-take would cost two calls and let racing holders overshoot.
        position = self._call("join", account, quota, amount)
        return None if position is None else Ticket(account, quota, float(position), amount)

    def due_in(self, ticket: Ticket) -> float:
        return float(
            self._call("due_in", ticket.account, ticket.quota, ticket.position, ticket.amount)
        )

    def adjust(self, account: str, quota: Quota, delta: float) -> None:
        self._call("adjust", account, quota, delta)

    def refused(self, account: str, quota: Quota) -> bool:
        return bool(self._call("refused", account, quota))

    def state(self, account: str, quota: Quota) -> BucketState:
        state = self._call("state", account, quota)
        assert isinstance(state, BucketState)
        return state

    def close(self) -> None:
        with self._lock:
            self._handle = None

    def destroy(self) -> None:
        """Kill the actor (every holder loses the budget; the next use starts a fresh
        one with a full minute)."""
        ray = require_ray()
        with self._lock:
            handle, self._handle = self._handle, None
        if handle is None:
            try:
                handle = ray.get_actor(self.name, namespace=self.namespace)
            except ValueError:
                return
        ray.kill(handle)


def _rejoin(name: str, namespace: str, clock: Callable[[], float] | None) -> RayBudget:
    return RayBudget(name, namespace=namespace, clock=clock)
