"""An in-memory sparse vector index: exact dot-product search, numpy only, no server.

Meant for small corpora (up to some hundred thousand vectors), tests and demos. Postings
are kept as three parallel numpy arrays sorted by term index (an inverted index), so a
query touches only the postings of its own terms.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

from ..errors import InputError

__all__ = ["SparseIndex", "SparseLike", "as_index_values"]

#: A :class:`~mm_embed.results.SparseVector`, an ``{index: value}`` dict, an
#: ``(indices, values)`` pair, or any object with ``.indices`` and ``.values``
#: (``langchain_qdrant.SparseVector``, ``qdrant_client.models.SparseVector``).
SparseLike: TypeAlias = Any

_MAX_INDEX = (1 << 32) - 1


def as_index_values(
    vector: SparseLike, *, field: str = "vector", index: int | None = None
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """Normalise a sparse vector to sorted unique ``(indices, values)`` arrays.

    Repeated indices are summed; indices must be integers in ``[0, 2**32)`` and values
    finite numbers.
    """
    if isinstance(vector, Mapping):
        raw_i: Any = list(vector.keys())
        raw_v: Any = list(vector.values())
    elif hasattr(vector, "indices") and hasattr(vector, "values"):
        raw_i, raw_v = vector.indices, vector.values
    elif isinstance(vector, tuple) and len(vector) == 2:
        raw_i, raw_v = vector
    else:
        raise InputError(
            "a sparse vector must be a SparseVector, an {index: value} dict or an "
            f"(indices, values) pair, got {type(vector).__name__}",
            field=field,
            index=index,
        )
    try:
        idx = np.asarray(list(raw_i), dtype=np.int64)
        val = np.asarray(list(raw_v), dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise InputError(
            "sparse indices must be integers and values numbers", field=field, index=index
        ) from None
    if idx.ndim != 1 or val.ndim != 1 or len(idx) != len(val):
        raise InputError(
            f"sparse vector has {idx.size} indices but {val.size} values",
            field=field,
            index=index,
        )
    if len(idx) and (idx.min() < 0 or idx.max() > _MAX_INDEX):
        raise InputError(
            "sparse indices must be in [0, 2**32)", field=field, index=index, limit="2**32 - 1"
        )
    if not np.all(np.isfinite(val)):
        raise InputError("sparse values must be finite", field=field, index=index)
    unique, inverse = np.unique(idx, return_inverse=True)
    summed = np.zeros(len(unique), dtype=np.float64)
    np.add.at(summed, inverse, val)
    return unique, summed.astype(np.float32)


class SparseIndex:
    """Exact sparse dot-product search over documents identified by ``str`` ids.

    * :meth:`add` inserts or replaces vectors (adding an existing id replaces it).
    * :meth:`search` returns ``[(doc_id, score), ...]``, best first, only documents that
      share at least one index with the query (a zero score is "not retrieved"); equal
      scores are ordered by ``doc_id`` ascending.

    Thread-safe: writers and readers take one lock; the postings are rebuilt lazily on
    the first search after a write.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: dict[str, int] = {}  # doc_id -> row
        self._ids: list[str | None] = []  # row -> doc_id (None once replaced or removed)
        self._pending: list[tuple[int, npt.NDArray[np.int64], npt.NDArray[np.float32]]] = []
        self._terms = np.zeros(0, np.int64)
        self._docs = np.zeros(0, np.int64)
        self._vals = np.zeros(0, np.float32)
        self._dead: set[int] = set()

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._rows

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._rows))

    def __repr__(self) -> str:
        return f"SparseIndex(documents={len(self)})"

    def add(self, ids: Sequence[str], vectors: Sequence[SparseLike]) -> None:
        """Insert (or replace) one vector per id."""
        if isinstance(ids, str) or len(ids) != len(vectors):
            raise InputError(
                "ids and vectors must be lists of the same length",
                field="ids",
                limit=f"{len(vectors)} entries",
            )
        parsed = []
        for i, (doc_id, vector) in enumerate(zip(ids, vectors, strict=True)):
            if not isinstance(doc_id, str):
                raise InputError("doc ids must be str", field="ids", index=i)
            parsed.append((doc_id, *as_index_values(vector, field="vectors", index=i)))
        with self._lock:
            for doc_id, idx, val in parsed:
                self._drop(doc_id)
                row = len(self._ids)
                self._ids.append(doc_id)
                self._rows[doc_id] = row
                self._pending.append((row, idx, val))

    def add_vectors(self, items: Mapping[str, SparseLike]) -> None:
        """Insert (or replace) ``{doc_id: vector}``."""
        self.add(list(items.keys()), list(items.values()))

    def remove(self, ids: Iterable[str]) -> int:
        """Remove documents; returns how many were present."""
        with self._lock:
            return sum(self._drop(doc_id) for doc_id in ids)

    def _drop(self, doc_id: str) -> bool:
        row = self._rows.pop(doc_id, None)
        if row is None:
            return False
        self._ids[row] = None
        self._dead.add(row)
        return True

    def _compact(self) -> None:
        """Merge pending vectors into the sorted postings and purge dead rows."""
        if not self._pending and not self._dead:
            return
        terms = [self._terms] + [idx for _, idx, _ in self._pending]
        docs = [self._docs] + [np.full(len(idx), row, np.int64) for row, idx, _ in self._pending]
        vals = [self._vals] + [val for _, _, val in self._pending]
        t, d, v = np.concatenate(terms), np.concatenate(docs), np.concatenate(vals)
        if self._dead:
            keep = ~np.isin(d, np.fromiter(self._dead, np.int64, len(self._dead)))
            t, d, v = t[keep], d[keep], v[keep]
        order = np.lexsort((d, t))
        self._terms, self._docs, self._vals = t[order], d[order], v[order]
        self._pending.clear()
        self._dead.clear()

    def scores(self, query: SparseLike) -> dict[str, float]:
        """``{doc_id: dot product}`` for every document sharing an index with ``query``."""
        q_idx, q_val = as_index_values(query, field="query")
        with self._lock:
            self._compact()
            lo = np.searchsorted(self._terms, q_idx, side="left")
            hi = np.searchsorted(self._terms, q_idx, side="right")
            hits = [
                (self._docs[a:b], self._vals[a:b] * w)
                for a, b, w in zip(lo, hi, q_val, strict=True)
                if b > a
            ]
            if not hits:
                return {}
            docs = np.concatenate([d for d, _ in hits])
            contrib = np.concatenate([c for _, c in hits]).astype(np.float64)
            rows, inverse = np.unique(docs, return_inverse=True)
            total = np.zeros(len(rows), dtype=np.float64)
            np.add.at(total, inverse, contrib)
            ids = self._ids
            return {
                ids[row]: float(s)
                for row, s in zip(rows.tolist(), total.tolist(), strict=True)
                if ids[row] is not None and math.isfinite(s)
            }

    def search(self, query: SparseLike, top_k: int = 10) -> list[tuple[str, float]]:
        """The ``top_k`` best ``(doc_id, score)`` by dot product, best first."""
        if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 0:
            raise InputError(f"top_k must be an int >= 0, got {top_k!r}", field="top_k")
        scored = self.scores(query)
        return sorted(scored.items(), key=lambda item: (-item[1], item[0]))[:top_k]

    def search_many(
        self, queries: Sequence[SparseLike], top_k: int = 10
    ) -> list[list[tuple[str, float]]]:
        """:meth:`search` for each query, in order."""
        return [self.search(q, top_k) for q in queries]
