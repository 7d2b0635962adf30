"""The counters of one streaming engine."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

__all__ = ["BulkStats"]


@dataclass
class BulkStats:
    """Counters of one engine (thread-safe updates)."""

    #: Input records read (items and bad records).
    items: int = 0
    #: Items embedded in this run.
    embedded: int = 0
    #: Items rejected in this run.
    rejected: int = 0
    #: Output rows produced (several per item with boxes).
    rows: int = 0
    #: Records passed over because an earlier run finished them.
    skipped: int = 0
    #: Billed tokens (provider usage) of this run.
    tokens: int = 0
    #: Client calls made (each is one or more wire requests).
    calls: int = 0
    #: Times unfinished items were re-sent after the client's retries ran out.
    rounds: int = 0
    #: Calls split to isolate a refused item.
    splits: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)
