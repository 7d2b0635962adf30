"""Client-side budgets: tokens per minute and images per second.

A :class:`RateLimiter` is a token bucket that hands out *reservations*: ``reserve(n)``
takes ``n`` units at once (the balance may go negative) and returns how long the caller
must wait before sending. The lock is held only for that arithmetic, never while
waiting, so one limiter serves threads (``time.sleep``) and asyncio tasks
(``asyncio.sleep``) alike, and callers are served in arrival order. ``adjust`` corrects
an estimate once the provider's reply states the real usage.

A wait computed once is too long whenever a refund arrives while the caller sleeps (an
over-estimate corrected by an earlier reply). ``take`` therefore hands out a *ticket*
(its place in line) and ``due_in(ticket)`` recomputes the wait from the current
balance, so a caller that sleeps in short steps and asks again goes as soon as the
refunds allow, still in arrival order.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["RateLimiter"]


class RateLimiter:
    """A token bucket of ``rate`` units per second holding at most ``burst`` units."""

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else rate)
        self._clock = clock
        self._balance = self.burst
        self._updated = clock()
        self._lock = threading.Lock()
        #: Units handed out so far (after corrections), for reports.
        self.consumed = 0.0
        # Sum of every amount taken: a ticket is this sum just after its own amount.
        # ``balance + reserved`` only ever grows by refill and refunds, and a ticket is
        # due once it reaches the ticket.
        self._reserved = 0.0

    @classmethod
    def per_minute(cls, amount: float, *, burst_seconds: float = 2.0) -> RateLimiter:
        """A budget of ``amount`` per minute; the bucket holds ``burst_seconds`` of it."""
        rate = amount / 60.0
        return cls(rate, rate * burst_seconds)

    def _refill(self) -> None:
        now = self._clock()
        self._balance = min(self.burst, self._balance + (now - self._updated) * self.rate)
        self._updated = now

    def reserve(self, amount: float) -> float:
        """Take ``amount`` units; return the seconds to wait before using them."""
        return self.due_in(self.take(amount))

    def take(self, amount: float) -> float:
        """Take ``amount`` units in line; return the ticket to pass to :meth:`due_in`."""
        with self._lock:
            self._refill()
            self._balance -= amount
            self.consumed += amount
            self._reserved += amount
            return self._reserved

    def due_in(self, ticket: float) -> float:
        """Seconds until the units of ``ticket`` may be used, counting every refill and
        refund so far (ask again after sleeping: refunds can only bring it closer)."""
        with self._lock:
            self._refill()
            short = ticket - (self._balance + self._reserved)
            return short / self.rate if short > 0 else 0.0

    def acquire(
        self,
        amount: float,
        *,
        sleep: Callable[[float], None] = time.sleep,
        recheck: float = 0.05,
    ) -> None:
        """Take ``amount`` in line and block until it is due, asking again every
        ``recheck`` seconds so refunds that arrive meanwhile bring it forward."""
        ticket = self.take(amount)
        while (wait := self.due_in(ticket)) > 0:
            sleep(min(wait, recheck))

    def adjust(self, delta: float) -> None:
        """Charge ``delta`` more units (negative: give units back) after the fact."""
        with self._lock:
            self._refill()
            self._balance = min(self.burst, self._balance - delta)
            self.consumed += delta
