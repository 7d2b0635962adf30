"""The :class:`Budget` interface: an account's quota, shared by every holder.

A budget holds the state of buckets keyed by ``(account, quota name)``; the quota's
size (rate and capacity) comes from the caller on each call, so clients configured
with ``tokens_per_minute`` or the catalogue's default share one state. The
arithmetic is :mod:`mm_embed.budgets._bucket`; backends differ only in where the state
lives and how it is locked: one process (:class:`~mm_embed.budgets.LocalBudget`), one
host (:class:`~mm_embed.budgets.FileBudget`), many hosts
(:class:`~mm_embed.budgets.RedisBudget`), a Ray cluster (``mm_embed.ray.RayBudget``).

Every method is quick (no waiting inside): callers sleep between :meth:`Budget.due_in`
calls, in short steps, so one budget serves threads and asyncio tasks alike and a
refund that arrives meanwhile brings waiters forward.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from ..errors import BudgetError
from ._bucket import BucketState, Quota

__all__ = ["Budget", "BudgetError", "Quota", "Ticket"]


@dataclass(frozen=True)
class Ticket:
    """A place in line: ``position`` in the bucket's running total of units taken."""

    account: str
    quota: Quota
    position: float
    amount: float


class Budget(ABC):
    """An account's quota, shared by every client that holds it.

    ``clock`` is monotonic seconds for in-process backends; shared backends use wall
    time (``time.time``) so that processes and hosts agree.
    """

    #: Whether every call is quick arithmetic in this process (no file or network I/O).
    in_memory: ClassVar[bool] = False

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock

    @abstractmethod
    def take(self, account: str, quota: Quota, amount: float) -> Ticket:
        """Take ``amount`` units of ``quota`` in line (never waits); see :meth:`due_in`."""

    def join(self, account: str, quota: Quota, amount: float) -> Ticket | None:
        """:meth:`take`, but only while the line (units taken and not yet refilled) is
        shorter than ``quota.capacity``, one window; else ``None``: ask again shortly.
        Holders that join rather than take never strand more than one window (and one
        request) if they die holding tickets.

        The stores override this with one atomic step; this fallback reads the state
        first, so racing holders may overshoot the window by a request each.
        """
        if -self.state(account, quota).balance >= quota.capacity:
            return None
        return self.take(account, quota, amount)

    @abstractmethod
    def due_in(self, ticket: Ticket) -> float:
        """Seconds until ``ticket`` may be used (0: now); ask again after sleeping."""

    @abstractmethod
    def adjust(self, account: str, quota: Quota, delta: float) -> None:
        """Settle after the fact: charge ``delta`` more units (negative: refund)."""

    @abstractmethod
    def refused(self, account: str, quota: Quota) -> bool:
        """Record a quota refusal: every holder backs off (AIMD); ``True`` if it cut."""

    @abstractmethod
    def state(self, account: str, quota: Quota) -> BucketState:
        """A copy of the bucket's current state (reports and tests)."""

    def acquire(
        self,
        account: str,
        quota: Quota,
        amount: float,
        *,
        sleep: Callable[[float], None] = time.sleep,
        recheck: float = 0.05,
    ) -> Ticket:
        """Join the line (:meth:`join`) and block until the units are due, asking again
        every ``recheck`` seconds (refunds that arrive meanwhile bring it forward)."""
        while (ticket := self.join(account, quota, amount)) is None:
            sleep(recheck)
        while (wait := self.due_in(ticket)) > 0:
            sleep(min(wait, recheck))
        return ticket

    def settle(self, ticket: Ticket, actual: float) -> None:
        """Correct ``ticket``'s estimate with the ``actual`` amount the provider billed."""
        if actual != ticket.amount:
            self.adjust(ticket.account, ticket.quota, actual - ticket.amount)

    def cancel(self, ticket: Ticket) -> None:
        """Give all of ``ticket`` back (nothing was consumed)."""
        self.adjust(ticket.account, ticket.quota, -ticket.amount)

    def close(self) -> None:  # noqa: B027 - optional: in-memory budgets hold nothing
        """Release the store's resources (connections, files)."""

    def __enter__(self) -> Budget:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
