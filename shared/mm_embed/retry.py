"""The retry policy, sans-I/O: what is retried and how long to wait.

Retried: timeouts and connection errors; HTTP 408, 409, 429 and 5xx; Viking code
1000029 (rate limited) whatever its HTTP status; a reply body we cannot read (a
truncated or garbled body is a transport fault). Never retried: any other 4xx, and any
input error. ``Retry-After`` (seconds or an HTTP date) and ``retry-after-ms`` are
honoured up to ``max_retry_after``; otherwise the wait before retry *n* (1-based) is
``min(initial_delay * 2**(n-1), max_delay)`` reduced by up to ``jitter`` (a fraction),
the official Volcengine SDK's schedule.
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from .errors import (
    APIConnectionError,
    APIStatusError,
    InternalServerError,
    MMEmbedError,
    RateLimitError,
    ResponseFormatError,
)

__all__ = ["RetryPolicy", "parse_retry_after"]

RETRYABLE_STATUS = frozenset({408, 409, 429})
RETRYABLE_CODES = frozenset({1000029})


def _seconds(raw: str, scale: float = 1.0) -> float | None:
    """A finite, non-negative number of seconds, or ``None`` (malformed counts as absent)."""
    try:
        value = float(raw) * scale
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``retry-after`` (seconds or HTTP date).

    A malformed value (``nan``, ``-5``, ``inf``, text) counts as absent, so the normal
    backoff applies instead of retrying at once.
    """
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        seconds = _seconds(raw_ms, 1 / 1000.0)
        if seconds is not None:
            return seconds
    raw = headers.get("retry-after")
    if not raw:
        return None
    seconds = _seconds(raw)
    if seconds is not None or raw.strip().lstrip("+-").replace(".", "", 1).isdigit():
        return seconds
    try:
        moment = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, moment.timestamp() - time.time())


@dataclass(frozen=True)
class RetryPolicy:
    """How many times and how long. ``max_retries=0`` turns retries off."""

    max_retries: int = 3
    initial_delay: float = 0.5
    max_delay: float = 8.0
    jitter: float = 0.25
    #: A ``Retry-After`` longer than this is capped (a misbehaving server cannot stall us).
    max_retry_after: float = 60.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError("max_retries must be >= 0")

    @staticmethod
    def is_retryable(error: BaseException) -> bool:
        if isinstance(error, (APIConnectionError, ResponseFormatError)):
            return True
        if isinstance(error, APIStatusError):
            # FG-CLIP may refuse with HTTP 200 and an HTTP-like code in the body: the class
            # (picked from that code) says what it is, the transport status does not.
            if error.code in RETRYABLE_CODES or isinstance(
                error, (RateLimitError, InternalServerError)
            ):
                return True
            return error.status_code in RETRYABLE_STATUS or error.status_code >= 500
        return False

    def delay(self, retry_number: int, error: MMEmbedError | None = None) -> float:
        """Seconds to sleep before retry ``retry_number`` (1 for the first retry)."""
        retry_after: float | None = getattr(error, "retry_after", None)
        if retry_after is not None:
            return min(float(retry_after), self.max_retry_after)
        base = min(self.initial_delay * 2.0 ** (retry_number - 1), self.max_delay)
        return float(base * (1.0 - self.jitter * self.rng.random()))
