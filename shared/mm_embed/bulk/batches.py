"""Batches: the input items of one batch, and its outcome (:class:`BatchResult`)
assembled in input order from the calls that embedded it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from .. import EmbeddingResult, SparseVector
from .fingerprint import Prints
from .items import BulkItem, ItemResult, Reject
from .providers import Provider

__all__ = ["BatchAssembler", "BatchResult", "InputBatch", "allocate"]


@dataclass
class BatchResult:
    """The outcome of input items ``start .. start + size - 1``, rows in input order.

    Per row: ``ids``, ``index`` (input position), ``box`` (box position, ``-1`` for a
    text or whole image), ``dense`` (``float32[rows, dim]``), ``sparse``, ``tokens`` (the
    item's share of billed tokens, on its first row). ``rejects`` lists the items with no
    rows. ``status`` is ``"done"``, or ``"skipped"`` / ``"cached"`` for batches an
    earlier run finished (no rows: the caller has them). ``fingerprints`` holds the
    records' content fingerprints when they were asked for. ``payload`` is free for a
    ``on_result`` hook (e.g. an Arrow table built on the worker thread).
    """

    start: int
    size: int
    ids: list[str] = field(default_factory=list)
    index: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    box: npt.NDArray[np.int32] = field(default_factory=lambda: np.zeros(0, np.int32))
    dense: npt.NDArray[np.float32] | None = None
    sparse: list[SparseVector] | None = None
    tokens: npt.NDArray[np.int32] = field(default_factory=lambda: np.zeros(0, np.int32))
    rejects: list[Reject] = field(default_factory=list)
    billed_tokens: int = 0
    status: str = "done"
    fingerprints: Prints | None = None
    payload: Any = None

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def embedded(self) -> int:
        """Items with rows."""
        return self.size - len(self.rejects) if self.status == "done" else 0

    def items(self) -> Iterator[ItemResult]:
        """One :class:`ItemResult` per input item of the batch, in order."""
        if self.status != "done":
            raise ValueError(f"batch at {self.start} was {self.status}: its rows are not here")
        rejects = {r.index: r for r in self.rejects}
        bounds = np.searchsorted(self.index, np.arange(self.start, self.start + self.size + 1))
        for k in range(self.size):
            i = self.start + k
            if i in rejects:
                yield ItemResult(index=i, id=rejects[i].id, reject=rejects[i])
                continue
            lo, hi = int(bounds[k]), int(bounds[k + 1])
            yield ItemResult(
                index=i,
                id=self.ids[lo],
                dense=self.dense[lo:hi] if self.dense is not None else None,
                sparse=tuple(self.sparse[lo:hi]) if self.sparse is not None else None,
                boxes=self.box[lo:hi] if self.box[lo:hi].max(initial=-1) >= 0 else None,
                tokens=int(self.tokens[lo:hi].sum()),
            )


@dataclass
class InputBatch:
    """Input items ``start .. start + size - 1`` as read: the items to send (with their
    input positions), the records rejected on reading, and their fingerprints."""

    start: int
    size: int = 0
    items: list[tuple[int, BulkItem]] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    prints: list[int] | None = None

    @property
    def fingerprints(self) -> Prints | None:
        return None if self.prints is None else np.asarray(self.prints, np.uint64)


def allocate(total: int, weights: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Split the integer ``total`` in proportion to ``weights`` (largest remainder):
    the shares are integers, sum to ``total`` and depend only on the inputs."""
    w = np.asarray(weights, dtype=np.float64)
    if len(w) == 0:
        return np.zeros(0, np.int64)
    if total <= 0:
        return np.zeros(len(w), np.int64)
    if w.sum() <= 0:
        w = np.ones(len(w))
    exact = total * w / w.sum()
    shares: npt.NDArray[np.int64] = np.floor(exact).astype(np.int64)
    left = int(total - shares.sum())
    if left > 0:
        order = np.argsort(-(exact - shares), kind="stable")
        shares[order[:left]] += 1
    return shares


class BatchAssembler:
    """Results and rejects of one batch, assembled in input order at the end.

    Positions (``pos``) are indices into ``batch.items``."""

    def __init__(self, batch: InputBatch, provider: Provider) -> None:
        self.batch, self.provider = batch, provider
        self.parts: list[tuple[npt.NDArray[np.int64], EmbeddingResult]] = []
        self.rejects: list[Reject] = list(batch.rejects)
        self.billed = 0

    def item(self, pos: int) -> BulkItem:
        return self.batch.items[pos][1]

    def record(self, members: list[int], result: EmbeddingResult) -> None:
        if len(result) == 0:
            return
        positions = np.asarray(members, np.int64)[result.input_indices]
        self.parts.append((positions, result))
        self.billed += result.usage.total_tokens

    def reject(
        self,
        pos: int,
        *,
        field: str | None,
        code: str | int | None,
        message: str,
        status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        index, item = self.batch.items[pos]
        self.rejects.append(
            Reject(index, item.id, item.location, field, code, message, status, request_id)
        )

    def finish(self) -> BatchResult:
        batch, provider = self.batch, self.provider
        self.rejects.sort(key=lambda r: r.index)
        result = BatchResult(
            batch.start,
            batch.size,
            rejects=self.rejects,
            billed_tokens=self.billed,
            fingerprints=batch.fingerprints,
        )
        if not self.parts:
            result.dense = (
                np.zeros((0, provider.dimension or 0), np.float32) if provider.dense else None
            )
            result.sparse = [] if provider.sparse else None
            return result
        self._fill_rows(result)
        return result

    def _fill_rows(self, result: BatchResult) -> None:
        batch, provider = self.batch, self.provider
        positions = np.concatenate([p for p, _ in self.parts])
        boxes = np.concatenate(
            [
                r.box_indices if r.box_indices is not None else np.full(len(r), -1, np.int64)
                for _, r in self.parts
            ]
        )
        order = np.lexsort((boxes, positions))
        positions, boxes = positions[order], boxes[order]
        result.index = np.asarray([batch.items[p][0] for p in positions], np.int64)
        result.ids = [batch.items[p][1].id for p in positions]
        result.box = boxes.astype(np.int32)
        if provider.dense:
            dense = np.concatenate([r.embeddings for _, r in self.parts]).astype(
                np.float32, copy=False
            )
            result.dense = np.ascontiguousarray(dense[order])
        if provider.sparse:
            flat = [v for _, r in self.parts for v in (r.sparse or [])]
            result.sparse = [flat[k] for k in order]
        # The item's share of the billed tokens goes on its first row.
        first = np.flatnonzero(np.r_[True, positions[1:] != positions[:-1]])
        weights = [provider.weight(batch.items[p][1]) for p in positions[first]]
        tokens = np.zeros(len(positions), np.int32)
        tokens[first] = allocate(self.billed, weights)
        result.tokens = tokens
