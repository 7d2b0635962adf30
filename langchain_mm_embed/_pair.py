"""One request for both vectors: the short-lived cache behind a dense and a sparse
embedding object that share one Viking model (see ``VikingSparseEmbeddings.from_dense``).

A hybrid index asks the dense object for a batch of texts, then the sparse object for
the same batch (LangChain's Qdrant store does exactly that, and the same at query time).
When the two are paired, whichever asks first requests ``return_dense`` and
``return_sparse`` together and keeps both halves here for ``ttl`` seconds; the other finds
its half and sends nothing.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from mm_embed import EmbeddingResult, SparseVector
from mm_embed.errors import InputError, ResponseFormatError
from mm_embed.inputs import check_text

__all__ = ["PairCache", "PairEntry", "PairedRequest"]

Key = tuple[str, str | None, int | None, str]


@dataclass(frozen=True)
class PairEntry:
    """Both vectors of one text."""

    dense: npt.NDArray[Any]
    sparse: SparseVector
    expires: float

    def dense_list(self) -> list[float]:
        return self.dense.astype(np.float64).tolist()  # type: ignore[no-any-return]


class PairCache:
    """A thread-safe LRU of :class:`PairEntry` with a time to live.

    Pickles as an empty cache with the same limits.
    """

    def __init__(
        self, ttl: float, max_entries: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not ttl > 0:
            raise ValueError(f"cache_ttl must be > 0 seconds, got {ttl!r}")
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise ValueError(f"cache_size must be an integer >= 1, got {max_entries!r}")
        self.ttl = float(ttl)
        self.max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[Key, PairEntry] = OrderedDict()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def get(self, keys: Sequence[Key]) -> list[PairEntry | None]:
        now = self._clock()
        found: list[PairEntry | None] = []
        with self._lock:
            for key in keys:
                entry = self._entries.get(key)
                if entry is not None and entry.expires <= now:
                    del self._entries[key]
                    entry = None
                elif entry is not None:
                    self._entries.move_to_end(key)
                found.append(entry)
        return found

    def put(self, keys: Sequence[Key], result: EmbeddingResult) -> list[PairEntry]:
        if result.sparse is None or len(result.sparse) != len(keys) or len(result) != len(keys):
            raise ResponseFormatError(
                "the provider did not return one dense and one sparse vector per text"
            )
        expires = self._clock() + self.ttl
        dense = result.embeddings
        entries = [
            PairEntry(dense[row].copy(), result.sparse[row], expires) for row in range(len(keys))
        ]
        with self._lock:
            for key, entry in zip(keys, entries, strict=True):
                self._entries[key] = entry
                self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return entries

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __getstate__(self) -> dict[str, Any]:
        return {"ttl": self.ttl, "max_entries": self.max_entries}

    def __setstate__(self, state: dict[str, Any]) -> None:
        PairCache.__init__(self, state["ttl"], state["max_entries"])


@dataclass
class PairedRequest:
    """The model parameters both paired objects request with, and their cache."""

    model: str
    model_version: str | None
    dimension: int | None
    cache: PairCache

    def options(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "model_version": self.model_version,
            "dimension": self.dimension,
            "return_dense": True,
            "return_sparse": True,
        }

    def lookup(self, texts: Sequence[str]) -> tuple[list[Key], list[PairEntry] | None]:
        """Validate ``texts``; return their keys and their entries when all are cached.

        A partial hit is a miss: the whole list is requested again, so an error names
        the caller's own input indices.
        """
        if isinstance(texts, str) or not isinstance(texts, Sequence):
            raise InputError(
                "texts must be a list of str (wrap a single text in a list)", field="texts"
            )
        keys: list[Key] = [
            (self.model, self.model_version, self.dimension, check_text(t, field="texts", index=i))
            for i, t in enumerate(texts)
        ]
        found = self.cache.get(keys)
        if all(entry is not None for entry in found):
            return keys, [entry for entry in found if entry is not None]
        return keys, None
