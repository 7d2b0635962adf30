"""Token buckets for the emulator's quotas (tokens per minute per model, images per second)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["Budgets", "TokenBucket"]


class TokenBucket:
    """A bucket of ``capacity`` units refilled at ``rate`` units per second.

    A request of ``n`` units is admitted when the bucket holds ``min(n, capacity)``;
    admitting it may drive the level negative, so a request larger than the whole
    capacity still gets through once the bucket is full, then blocks the next ones.
    """

    def __init__(
        self, capacity: float, rate: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.capacity = capacity
        self.rate = rate
        self._clock = clock
        self._level = capacity
        self._stamp = clock()
        self._lock = threading.Lock()

    def try_take(self, amount: float) -> bool:
        """Take ``amount`` units if admitted; say whether it was."""
        with self._lock:
            now = self._clock()
            self._level = min(self.capacity, self._level + (now - self._stamp) * self.rate)
            self._stamp = now
            if self._level + 1e-9 < min(amount, self.capacity):
                return False
            self._level -= amount
            return True


class Budgets:
    """The configured quotas; ``None`` disables one."""

    def __init__(self, tpm: int | None, images_per_second: float | None) -> None:
        self._tpm = tpm
        self._lock = threading.Lock()
        self._per_model: dict[str, TokenBucket] = {}
        self._images = (
            TokenBucket(images_per_second, images_per_second) if images_per_second else None
        )

    def admit(self, model: str, tokens: int, images: int) -> str | None:
        """``None`` when the request fits, else which budget it exceeds."""
        if self._images is not None and images > 0 and not self._images.try_take(images):
            return "images per second"
        if self._tpm is not None and tokens > 0:
            with self._lock:
                bucket = self._per_model.get(model)
                if bucket is None:
                    bucket = self._per_model[model] = TokenBucket(self._tpm, self._tpm / 60.0)
            if not bucket.try_take(tokens):
                return "tokens per minute"
        return None
