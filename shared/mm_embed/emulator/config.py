"""Emulator settings: one frozen dataclass and the documented default credentials."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "DEFAULT_ACCESS_KEY",
    "DEFAULT_API_KEY",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "DEFAULT_REGION",
    "DEFAULT_SECRET_KEY",
    "DEFAULT_TOKEN",
    "FAULT_KINDS",
    "EmulatorConfig",
]

#: Credentials the emulator accepts unless told otherwise. They are public test values.
DEFAULT_API_KEY = "emulator-key"
DEFAULT_ACCESS_KEY = "AKLTemulator"
DEFAULT_SECRET_KEY = "emulator-secret"
DEFAULT_TOKEN = "emulator-token"
DEFAULT_REGION = "cn-north-1"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765

#: Every fault the emulator can inject.
FAULT_KINDS = ("429", "500", "503", "reset", "malformed", "timeout")


@dataclass(frozen=True)
class EmulatorConfig:
    """How an emulator instance behaves.

    Secrets are excluded from ``repr`` so a config can be logged safely.
    ``tpm`` / ``images_per_second`` of ``None`` mean no budget. ``fault_rate`` is the
    fraction of embedding requests that get one of ``faults`` (chosen by a
    ``random.Random(seed)``). ``retry_after`` (seconds) adds a ``Retry-After`` header to
    every 429 the emulator sends; ``None`` sends none.
    """

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    api_key: str = field(default=DEFAULT_API_KEY, repr=False)
    access_key: str = DEFAULT_ACCESS_KEY
    secret_key: str = field(default=DEFAULT_SECRET_KEY, repr=False)
    token: str = field(default=DEFAULT_TOKEN, repr=False)
    region: str = DEFAULT_REGION
    latency_ms: float = 0.0
    fault_rate: float = 0.0
    faults: tuple[str, ...] = FAULT_KINDS
    timeout_fault_s: float = 30.0
    retry_after: float | None = None
    tpm: int | None = None
    images_per_second: float | None = None
    seed: int = 0
    tos_dir: Path | None = None
    #: Accepted distance between X-Date and the emulator's clock.
    clock_skew_s: float = 15 * 60
    #: Bound on fetching a loopback image URL.
    fetch_timeout_s: float = 5.0

    def __post_init__(self) -> None:
        unknown = [f for f in self.faults if f not in FAULT_KINDS]
        if unknown:
            raise ValueError(f"unknown fault kinds {unknown}; choose from {', '.join(FAULT_KINDS)}")
        if not 0.0 <= self.fault_rate <= 1.0:
            raise ValueError("fault_rate must be within 0..1")
        if self.fault_rate > 0 and not self.faults:
            raise ValueError("fault_rate > 0 needs at least one fault kind")
        if self.latency_ms < 0 or self.timeout_fault_s < 0:
            raise ValueError("latency_ms and timeout_fault_s must be >= 0")
        if self.tpm is not None and self.tpm <= 0:
            raise ValueError("tpm must be positive")
        if self.images_per_second is not None and self.images_per_second <= 0:
            raise ValueError("images_per_second must be positive")
