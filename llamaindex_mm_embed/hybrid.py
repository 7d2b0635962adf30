"""One provider call per text when dense and sparse vectors come from one Viking model.

A hybrid index needs both vectors of every text, and LlamaIndex asks for them at two
different moments (the embed model for dense, the vector store's sparse function for
sparse). :class:`DenseSparsePair` joins the two: whichever side asks first requests
both vectors in one call and leaves the other half here; the other side takes it (once)
instead of calling the provider again. Halves nobody takes expire after ``ttl_seconds``
and the store never holds more than ``max_entries`` texts.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from mm_embed import EmbeddingResult

from ._common import dense_rows, sparse_rows

if TYPE_CHECKING:
    from .viking import VikingEmbedding

__all__ = ["DenseSparsePair"]

Kind = Literal["dense", "sparse"]


@dataclass
class _Halves:
    dense: list[float] | None
    sparse: dict[int, float] | None
    expires: float


class DenseSparsePair:
    """The shared, short-lived store of a dense model paired with a sparse model.

    The request parameters (model, version, dimension) are read from ``dense`` at each
    call, and every stored half is keyed by them and the text, so a half is only ever
    reused for the exact request that produced it. Thread- and task-safe.
    """

    def __init__(
        self,
        dense: VikingEmbedding,
        *,
        ttl_seconds: float = 600.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl_seconds <= 0 or max_entries < 1:
            raise ValueError("ttl_seconds must be > 0 and max_entries >= 1")
        self._dense = dense
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, _Halves] = OrderedDict()
        #: Texts served from the store / texts the provider was asked for.
        self.reused = 0
        self.fetched = 0

    def request_options(self) -> dict[str, Any]:
        """``model``, ``model_version`` and ``dimension`` of the combined call."""
        dense = self._dense
        return {
            "model": dense.model_name,
            "model_version": dense.model_version,
            "dimension": dense.dimension,
        }

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __deepcopy__(self, memo: dict[int, Any]) -> DenseSparsePair:
        return self  # a copied model stays paired with the same store

    # ------------------------------------------------------------------ resolving

    def resolve(
        self, kind: Kind, texts: Sequence[str], fetch: Callable[[list[str]], EmbeddingResult]
    ) -> list[Any]:
        """``kind`` vectors of ``texts``: taken from the store, or fetched together with
        the other kind by ``fetch(missing_texts)`` (which must return both)."""
        options, found, missing = self._take(kind, texts)
        result = fetch(missing) if missing else None
        return self._finish(kind, texts, options, found, missing, result)

    async def aresolve(
        self,
        kind: Kind,
        texts: Sequence[str],
        fetch: Callable[[list[str]], Awaitable[EmbeddingResult]],
    ) -> list[Any]:
        """Async twin of :meth:`resolve`."""
        options, found, missing = self._take(kind, texts)
        result = await fetch(missing) if missing else None
        return self._finish(kind, texts, options, found, missing, result)

    # ------------------------------------------------------------------ store

    def _key(self, options: dict[str, Any], text: str) -> Hashable:
        return (options["model"], options["model_version"], options["dimension"], text)

    def _take(
        self, kind: Kind, texts: Sequence[str]
    ) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
        options = self.request_options()
        found: dict[str, Any] = {}
        unique = list(dict.fromkeys(texts))
        with self._lock:
            self._expire(self._clock())
            for text in unique:
                key = self._key(options, text)
                entry = self._entries.get(key)
                value = getattr(entry, kind) if entry is not None else None
                if entry is None or value is None:
                    continue
                found[text] = value
                setattr(entry, kind, None)
                if entry.dense is None and entry.sparse is None:
                    del self._entries[key]
            self.reused += len(found)
            missing = [text for text in unique if text not in found]
            self.fetched += len(missing)
        return options, found, missing

    def _finish(
        self,
        kind: Kind,
        texts: Sequence[str],
        options: dict[str, Any],
        found: dict[str, Any],
        missing: list[str],
        result: EmbeddingResult | None,
    ) -> list[Any]:
        if result is not None:
            dense, sparse = dense_rows(result), sparse_rows(result)
            mine, other = (dense, sparse) if kind == "dense" else (sparse, dense)
            expires = self._clock() + self.ttl_seconds
            with self._lock:
                for text, value in zip(missing, other, strict=True):
                    key = self._key(options, text)
                    halves = self._entries.pop(key, None) or _Halves(None, None, expires)
                    setattr(halves, "sparse" if kind == "dense" else "dense", value)
                    halves.expires = expires
                    self._entries[key] = halves
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
            found.update(zip(missing, mine, strict=True))
        return [found[text] for text in texts]

    def _expire(self, now: float) -> None:
        # Entries are kept in insertion order with one ttl, so the oldest expire first.
        while self._entries:
            key, halves = next(iter(self._entries.items()))
            if halves.expires > now:
                break
            del self._entries[key]
