"""What one running emulator remembers: the request log, counters and shared runtime objects."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import threading
from collections import Counter, deque
from dataclasses import dataclass, field

from .config import EmulatorConfig
from .faults import FaultInjector
from .media import MediaFetcher
from .ratelimit import Budgets

__all__ = ["EmulatorState", "RequestLog", "RequestRecord", "item_hash"]


def item_hash(content: bytes) -> str:
    """Short SHA-256 of one item's content (FG-CLIP: the text or image string; Viking:
    the item as canonical JSON), so tests can spot an item embedded twice."""
    return hashlib.sha256(content).hexdigest()[:16]


@dataclass(frozen=True)
class RequestRecord:
    """One request as the emulator saw it. Holds no secret (no headers, no keys).

    ``code`` is the provider code sent (FG-CLIP ``context.code``, Viking ``code``;
    ``None`` for a fault with no body). ``embedded`` is true only when vectors were
    sent back, so ``[h for r in log if r.embedded for h in r.item_hashes]`` lists every
    item embedded (once per time it was embedded).
    """

    time: float
    route: str
    method: str
    path: str
    request_id: str
    status: int | None
    code: int | None
    message: str
    fault: str | None
    model: str | None
    items: int
    item_hashes: tuple[str, ...]
    embedded: bool
    auth: str | None
    duration_ms: float


class RequestLog:
    """Thread-safe bounded log plus counters."""

    def __init__(self, maxlen: int = 100_000) -> None:
        self._lock = threading.Lock()
        self._records: deque[RequestRecord] = deque(maxlen=maxlen)
        self._counters: Counter[str] = Counter()

    def add(self, record: RequestRecord) -> None:
        with self._lock:
            self._records.append(record)
            c = self._counters
            c["requests"] += 1
            c[f"route:{record.route}"] += 1
            c[f"status:{record.status}"] += 1
            if record.fault:
                c["faults"] += 1
                c[f"fault:{record.fault}"] += 1
            if record.embedded:
                c["items_embedded"] += record.items

    def records(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._records)

    def counters(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counters)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()
            self._counters.clear()


@dataclass
class EmulatorState:
    """Runtime objects shared by the routes of one app."""

    config: EmulatorConfig
    log: RequestLog = field(default_factory=RequestLog)
    injector: FaultInjector = field(init=False)
    budgets: Budgets = field(init=False)
    fetcher: MediaFetcher = field(init=False)
    _loop: asyncio.AbstractEventLoop | None = field(default=None, init=False, repr=False)
    _shutdown: asyncio.Event | None = field(default=None, init=False, repr=False)
    _stopping: threading.Event = field(default_factory=threading.Event, init=False, repr=False)

    def __post_init__(self) -> None:
        cfg = self.config
        self.injector = FaultInjector(cfg.fault_rate, cfg.faults, cfg.seed)
        self.budgets = Budgets(cfg.tpm, cfg.images_per_second)
        self.fetcher = MediaFetcher(
            timeout_s=cfg.fetch_timeout_s, tos_dir=cfg.tos_dir, allow=cfg.fetch_allow
        )

    def bind_loop(self) -> None:
        """Called on the server's loop at startup."""
        self._loop = asyncio.get_running_loop()
        self._shutdown = asyncio.Event()
        if self._stopping.is_set():
            self._shutdown.set()

    def reset_shutdown(self) -> None:
        """Forget an earlier shutdown, before serving again."""
        self._stopping.clear()

    def begin_shutdown(self) -> None:
        """Wake every request sleeping in a ``timeout`` fault; safe from any thread."""
        self._stopping.set()
        loop, event = self._loop, self._shutdown
        if loop is not None and event is not None and not loop.is_closed():
            # The loop may close between the check and the call.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(event.set)

    async def sleep(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; return ``True`` if shutdown cut it short."""
        if self._shutdown is None:
            await asyncio.sleep(seconds)
            return False
        try:
            await asyncio.wait_for(self._shutdown.wait(), timeout=seconds)
        except TimeoutError:
            return False
        return True
