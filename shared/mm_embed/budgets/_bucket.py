"""The arithmetic of a shared quota bucket, sans-I/O (every backend runs this; the Redis
backend runs the same steps in its Lua script).

A bucket of ``capacity`` units refills at ``rate * factor`` units per second. Callers
*take* units in arrival order: the balance may go negative, and each caller gets a
*ticket*: the running total of units taken, just after its own. ``balance + reserved``
only ever grows (by refill and refunds), and a ticket is due once it reaches the ticket,
so callers go in arrival order, and a refund that arrives meanwhile brings every waiting
ticket forward. Replies settle the estimate (refund or extra charge).

AIMD: a quota refusal seen by any holder cuts ``factor`` by half (at most once per
``COOLDOWN_S``, so a burst of refusals from requests already in flight counts once) and
empties the burst; ``factor`` then grows back by ``RECOVERY_PER_S`` per second. Every
holder of the bucket slows down and recovers together.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "COOLDOWN_S",
    "DECREASE",
    "DUE_EPSILON",
    "MIN_FACTOR",
    "RECOVERY_PER_S",
    "BucketState",
    "Quota",
    "adjust",
    "due_in",
    "join",
    "new_state",
    "refused",
    "take",
]

#: Multiplicative decrease on a refusal.
DECREASE = 0.5
#: The factor never falls below this (the quota is never paced to a halt).
MIN_FACTOR = 0.05
#: Additive recovery of the factor per second (0.5 -> 1.0 in 25 s).
RECOVERY_PER_S = 0.02
#: Refusals within this long of a cut do not cut again.
COOLDOWN_S = 1.0
#: A ticket short by no more than this many units is due (float rounding).
DUE_EPSILON = 1e-9


@dataclass(frozen=True)
class Quota:
    """One quota: ``name`` (e.g. ``"tokens:bge-m3"``), ``rate`` units per second, and a
    bucket holding at most ``capacity`` units (what the provider's window allows)."""

    name: str
    rate: float
    capacity: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.rate) and self.rate > 0):
            raise ValueError(f"quota rate must be > 0, got {self.rate!r}")
        if not (math.isfinite(self.capacity) and self.capacity > 0):
            raise ValueError(f"quota capacity must be > 0, got {self.capacity!r}")

    @classmethod
    def per_minute(cls, name: str, amount: float) -> Quota:
        """``amount`` per minute; the bucket holds the whole minute."""
        return cls(name, amount / 60.0, float(amount))


@dataclass
class BucketState:
    """The shared state of one bucket (one account, one quota)."""

    balance: float
    updated: float
    #: Units taken so far, after corrections: a ticket is this total just after its take.
    reserved: float = 0.0
    factor: float = 1.0
    last_cut: float = -math.inf
    #: Units handed out over the bucket's life (reports).
    consumed: float = 0.0


def new_state(quota: Quota, now: float) -> BucketState:
    """A bucket that starts full."""
    return BucketState(balance=quota.capacity, updated=now)


def _refill(state: BucketState, quota: Quota, now: float) -> None:
    elapsed = max(0.0, now - state.updated)
    old = state.factor
    state.factor = min(1.0, old + RECOVERY_PER_S * elapsed)
    # The factor grew linearly over the interval: refill at its average.
    state.balance = min(
        quota.capacity, state.balance + elapsed * quota.rate * (old + state.factor) / 2
    )
    state.updated = max(state.updated, now)


def _take(state: BucketState, quota: Quota, amount: float) -> float:
    # A request larger than the whole bucket waits for a full bucket (the provider
    # admits it then), not for a balance it could never reach; the callers after it
    # still wait for all it took.
    ticket = state.reserved + min(amount, quota.capacity)
    state.balance -= amount
    state.reserved += amount
    state.consumed += amount
    return ticket


def take(state: BucketState, quota: Quota, amount: float, now: float) -> float:
    """Take ``amount`` units in line; return the ticket."""
    _refill(state, quota, now)
    return _take(state, quota, amount)


def join(state: BucketState, quota: Quota, amount: float, now: float) -> float | None:
    """:func:`take`, but only while the line is shorter than one window: the units taken
    and not yet refilled (``-balance``) are fewer than ``capacity``. Else ``None``: ask
    again shortly. So a holder that dies holding tickets strands at most one window
    and one request, which refill like spent units."""
    _refill(state, quota, now)
    if -state.balance >= quota.capacity:
        return None
    return _take(state, quota, amount)


def due_in(state: BucketState, quota: Quota, ticket: float, now: float) -> float:
    """Seconds until ``ticket`` is due at the current rate (0: go now)."""
    _refill(state, quota, now)
    short = ticket - (state.balance + state.reserved)
    return short / (quota.rate * state.factor) if short > DUE_EPSILON else 0.0


def adjust(state: BucketState, quota: Quota, delta: float, now: float) -> None:
    """Charge ``delta`` more units (negative: give units back) after the fact."""
    _refill(state, quota, now)
    state.balance = min(quota.capacity, state.balance - delta)
    state.consumed += delta


def refused(state: BucketState, quota: Quota, now: float) -> bool:
    """A holder saw a quota refusal: cut the rate and drop the burst. Returns whether
    this refusal cut (``False`` within the cooldown of the last cut)."""
    _refill(state, quota, now)
    if now - state.last_cut < COOLDOWN_S:
        return False
    state.factor = max(MIN_FACTOR, state.factor * DECREASE)
    state.last_cut = now
    state.balance = min(state.balance, 0.0)
    return True
