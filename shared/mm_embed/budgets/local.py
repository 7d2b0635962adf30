""":class:`LocalBudget`: the quota shared by every client of one process (the default)."""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable

from . import _bucket
from ._bucket import BucketState, Quota
from .base import Budget, Ticket

__all__ = ["LocalBudget"]


class LocalBudget(Budget):
    """Buckets in this process's memory, behind one lock held only for arithmetic.

    The process-wide default (:func:`mm_embed.budgets.default_budget`) is one of these,
    so two clients in one process with the same credentials share their quota without
    being told.
    """

    in_memory = True

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(clock)
        self._lock = threading.Lock()
        self._states: dict[tuple[str, str], BucketState] = {}

    def __repr__(self) -> str:
        return f"LocalBudget(buckets={len(self._states)})"

    def _state(self, account: str, quota: Quota, now: float) -> BucketState:
        key = (account, quota.name)
        state = self._states.get(key)
        if state is None:
            state = self._states[key] = _bucket.new_state(quota, now)
        return state

    def take(self, account: str, quota: Quota, amount: float) -> Ticket:
        with self._lock:
            now = self._clock()
            position = _bucket.take(self._state(account, quota, now), quota, amount, now)
        return Ticket(account, quota, position, amount)

    def join(self, account: str, quota: Quota, amount: float) -> Ticket | None:
        with self._lock:
            now = self._clock()
            position = _bucket.join(self._state(account, quota, now), quota, amount, now)
        return None if position is None else Ticket(account, quota, position, amount)

    def due_in(self, ticket: Ticket) -> float:
        with self._lock:
            now = self._clock()
            state = self._state(ticket.account, ticket.quota, now)
            return _bucket.due_in(state, ticket.quota, ticket.position, now)

    def adjust(self, account: str, quota: Quota, delta: float) -> None:
        with self._lock:
            now = self._clock()
            _bucket.adjust(self._state(account, quota, now), quota, delta, now)

    def refused(self, account: str, quota: Quota) -> bool:
        with self._lock:
            now = self._clock()
            return _bucket.refused(self._state(account, quota, now), quota, now)

    def state(self, account: str, quota: Quota) -> BucketState:
        with self._lock:
            now = self._clock()
            state = self._state(account, quota, now)
            _bucket.due_in(state, quota, 0.0, now)  # refill to now
            return copy.copy(state)
