"""Client-side budgets: tokens per minute and images per second.

A :class:`RateLimiter` is a token bucket that hands out *reservations*: ``reserve(n)``
takes ``n`` units at once (the balance may go negative) and returns how long the caller
must wait before sending. The lock is held only for that arithmetic, never while
waiting, so one limiter serves threads (``time.sleep``) and asyncio tasks
(``asyncio.sleep``) alike, and callers are served in arrival order. ``adjust`` corrects
an estimate once the provider's reply states the real usage.
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
        with self._lock:
            self._refill()
            self._balance -= amount
            self.consumed += amount
            return 0.0 if self._balance >= 0 else -self._balance / self.rate

    def adjust(self, delta: float) -> None:
        """Charge ``delta`` more units (negative: give units back) after the fact."""
        with self._lock:
            self._refill()
            self._balance = min(self.burst, self._balance - delta)
            self.consumed += delta
