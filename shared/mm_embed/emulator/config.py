"""Emulator settings: one frozen dataclass and the documented default credentials."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigurationError
from .hosts import AllowEntry, is_loopback_host, parse_allow_entry

__all__ = [
    "CHECKED_CREDENTIALS",
    "DEFAULT_ACCESS_KEY",
    "DEFAULT_API_KEY",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "DEFAULT_REGION",
    "DEFAULT_SECRET_KEY",
    "DEFAULT_TOKEN",
    "FAULT_KINDS",
    "EmulatorConfig",
    "exposure_problem",
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

#: The credentials every request is checked against, with their public default values.
#: Serving beyond loopback needs every one of them set to something else.
CHECKED_CREDENTIALS = {
    "api_key": DEFAULT_API_KEY,
    "access_key": DEFAULT_ACCESS_KEY,
    "secret_key": DEFAULT_SECRET_KEY,
    "token": DEFAULT_TOKEN,
}


def exposure_problem(
    host: str, defaults: Sequence[str], spell: Callable[[str], str] = str
) -> str | None:
    """Why serving on ``host`` with the credentials named in ``defaults`` still at their
    public values is refused (``None``: it is not). ``spell`` names a credential the
    caller's way (a field name, a CLI flag)."""
    if not defaults or is_loopback_host(host):
        return None
    named = ", ".join(spell(name) for name in defaults)
    return (
        f"refusing to serve on {host!r}, which is not a loopback address, with the public "
        f"default value of {named}: anyone who can reach the emulator could use it. Give "
        f"your own {named} (every credential the emulator checks must be set explicitly "
        "to serve beyond loopback), or bind to a loopback address such as 127.0.0.1"
    )


@dataclass(frozen=True)
class EmulatorConfig:
    """How an emulator instance behaves.

    Secrets are excluded from ``repr`` so a config can be logged safely.
    ``tpm`` / ``images_per_second`` of ``None`` mean no budget. ``fault_rate`` is the
    fraction of embedding requests that get one of ``faults`` (chosen by a
    ``random.Random(seed)``). ``retry_after`` (seconds) adds a ``Retry-After`` header to
    every 429 the emulator sends; ``None`` sends none.

    A ``host`` that is not loopback is refused (:class:`~mm_embed.errors.ConfigurationError`)
    unless ``api_key``, ``access_key``, ``secret_key`` and ``token`` are all set to values
    other than the public defaults. ``session_token``, when set, must ride along (signed,
    in ``X-Security-Token``) with every HMAC-signed Viking request. ``fetch_allow`` lists
    the ``HOST[:PORT]`` image URLs may point at besides the emulator itself. ``lenient``
    defaults what third-party FG-CLIP clients leave out (``embedding_types``, ``accept``).
    """

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    api_key: str = field(default=DEFAULT_API_KEY, repr=False)
    access_key: str = DEFAULT_ACCESS_KEY
    secret_key: str = field(default=DEFAULT_SECRET_KEY, repr=False)
    token: str = field(default=DEFAULT_TOKEN, repr=False)
    session_token: str | None = field(default=None, repr=False)
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
    #: Bound on fetching an image URL.
    fetch_timeout_s: float = 5.0
    #: ``HOST[:PORT]`` entries image URLs may point at (besides the emulator itself).
    fetch_allow: tuple[str, ...] = ()
    #: Bound on receiving a request body, from the end of its headers.
    body_timeout_s: float = 30.0
    #: Default a missing FG-CLIP ``embedding_types`` / ``accept`` instead of refusing.
    lenient: bool = False

    def __post_init__(self) -> None:
        problem = self._problem()
        if problem:
            raise ConfigurationError(problem)
        # Normalise so callers may pass a list.
        object.__setattr__(self, "fetch_allow", tuple(self.fetch_allow))
        problem = exposure_problem(self.host, self.default_credentials())
        if problem:
            raise ConfigurationError(problem)

    def _problem(self) -> str | None:
        unknown = [f for f in self.faults if f not in FAULT_KINDS]
        if unknown:
            return f"unknown fault kinds {unknown}; choose from {', '.join(FAULT_KINDS)}"
        if not 0.0 <= self.fault_rate <= 1.0:
            return "fault_rate must be within 0..1"
        if self.fault_rate > 0 and not self.faults:
            return "fault_rate > 0 needs at least one fault kind"
        if self.latency_ms < 0 or self.timeout_fault_s < 0:
            return "latency_ms and timeout_fault_s must be >= 0"
        if self.tpm is not None and self.tpm <= 0:
            return "tpm must be positive"
        if self.images_per_second is not None and self.images_per_second <= 0:
            return "images_per_second must be positive"
        if not self.body_timeout_s > 0 or not self.fetch_timeout_s > 0:
            return "body_timeout_s and fetch_timeout_s must be positive"
        if self.session_token == "":
            return "session_token must not be empty (use None for no session token)"
        try:
            self.allow_entries()
        except ValueError as exc:
            return str(exc)
        return None

    def default_credentials(self) -> list[str]:
        """Names of the checked credentials still at their public default value."""
        return [name for name, value in CHECKED_CREDENTIALS.items() if getattr(self, name) == value]

    def allow_entries(self) -> tuple[AllowEntry, ...]:
        """``fetch_allow`` parsed (:class:`ValueError` for a malformed entry)."""
        return tuple(parse_allow_entry(entry) for entry in self.fetch_allow)
