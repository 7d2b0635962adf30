"""The streaming engine: items are read lazily, grouped in batches, embedded on a
bounded pool of threads, and handed back **in input order**.

Memory is bounded by ``max_pending`` batches (in flight or finished and waiting for an
earlier one), never by the corpus. Failure policy, per batch:

* a record that cannot become an item, a duplicate id, an item the client refuses before
  sending (``InputError``) or one the provider cannot take at all: rejected, the rest of
  the batch goes on;
* a provider refusal of a call (HTTP 4xx such as 400, or a provider code): the failed
  call is split in halves and re-sent until the refused item is alone, which is rejected
  with the provider's code and message (a refused call embeds nothing, so no item is
  embedded twice);
* a transient failure the client's retries could not get past (timeouts, 429, 5xx):
  the unfinished items are re-sent after a pause, up to ``max_rounds`` times, then the
  run stops with :class:`BulkAborted` (nothing is rejected for a provider outage);
* bad credentials, no permission, unknown model (401/403/404): the run stops at once.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Container, Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import (
    AuthenticationError,
    InputError,
    MMEmbedError,
    NotFoundError,
    PermissionDeniedError,
    ResponseFormatError,
)
from ..results import EmbeddingResult, SparseVector
from ..retry import RetryPolicy
from .dedup import IdSet
from .items import (
    BadRecord,
    BulkItem,
    ItemResult,
    Reject,
    RejectCode,
    coerce_record,
    format_location,
)
from .providers import Provider, Unsupported, make_provider

__all__ = ["BatchResult", "BulkAborted", "BulkEmbedder", "BulkStats", "allocate", "embed_stream"]

_FATAL = (AuthenticationError, PermissionDeniedError, NotFoundError)


class BulkAborted(MMEmbedError):
    """The run stopped before the end: the provider stayed unavailable, refused the
    credentials or the model, or too many items were rejected. Everything finished
    before it is kept; a file run can be resumed. ``cause`` is the last error."""

    def __init__(self, message: str, *, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.cause = cause


class _Stopped(Exception):
    """The consumer went away; the batch was not (fully) run."""


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


@dataclass
class BatchResult:
    """The outcome of input items ``start .. start + size - 1``, rows in input order.

    Per row: ``ids``, ``index`` (input position), ``box`` (box position, ``-1`` for a
    text or whole image), ``dense`` (``float32[rows, dim]``), ``sparse``, ``tokens`` (the
    item's share of billed tokens, on its first row). ``rejects`` lists the items with no
    rows. ``status`` is ``"done"``, or ``"skipped"`` / ``"cached"`` for batches an
    earlier run finished (no rows: the caller has them). ``payload`` is free for a
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
class _Batch:
    start: int
    size: int
    items: list[tuple[int, BulkItem]]
    rejects: list[Reject]


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


def _field_of(error: InputError, item: BulkItem) -> str:
    name = (error.field or "").lower()
    if "box" in name:
        return "boxes"
    if "image" in name or (name == "inputs" and item.image is not None and item.text is None):
        return "image"
    if "text" in name or name == "inputs":
        return "text" if item.text is not None else "image"
    return error.field or "input"


def _input_message(error: InputError) -> str:
    """The client's message without its ``field[index]:`` prefix (its index is the
    position inside one call, meaningless to the reader of a reject)."""
    text = error.message
    head, sep, rest = text.partition(": ")
    return rest if sep and (head == error.field or head.startswith(f"{error.field}[")) else text


class _Accumulator:
    """Results and rejects of one batch, assembled in input order at the end."""

    def __init__(self, batch: _Batch, provider: Provider) -> None:
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
            batch.start, batch.size, rejects=self.rejects, billed_tokens=self.billed
        )
        if not self.parts:
            result.dense = (
                np.zeros((0, provider.dimension or 0), np.float32) if provider.dense else None
            )
            result.sparse = [] if provider.sparse else None
            return result
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
        return result


class BulkEmbedder:
    """Embeds any iterable of items with bounded memory, results in input order.

    Args:
        client: a blocking :class:`~mm_embed.VikingClient` or :class:`~mm_embed.FGClipClient`
            (its retries, timeouts and, for Viking, token budget apply to every call).
        model, model_version, dimension, sparse, dense: what to embed with (Viking needs
            ``model``; FG-CLIP takes none of them).
        batch_size: items per client call (default: the client's wire batch size).
        max_concurrency: client calls in flight (default: the client's ``max_concurrency``).
        max_pending: batches read ahead and held in order (default ``4 * max_concurrency``).
        tokens_per_minute: a token budget for FG-CLIP (Viking: set it on the client).
        check_duplicates: reject an item whose id was seen before (costs ~17-34 bytes per
            id; see :mod:`mm_embed.bulk.dedup`).
        max_rounds: re-sends of unfinished items after the client's own retries ran out.
        round_delay: seconds before the first such re-send (doubled each time).
        max_rejects: stop with :class:`BulkAborted` once more items than this are rejected.

    Items are :class:`BulkItem`, mappings with ``id`` and ``text`` / ``image`` /
    ``boxes``, or plain strings (their id is their position).
    """

    def __init__(
        self,
        client: object,
        *,
        model: str | None = None,
        model_version: str | None = None,
        dimension: int | None = None,
        sparse: bool = False,
        dense: bool = True,
        batch_size: int | None = None,
        max_concurrency: int | None = None,
        max_pending: int | None = None,
        tokens_per_minute: int | None = None,
        check_duplicates: bool = True,
        max_rounds: int = 4,
        round_delay: float = 2.0,
        max_rejects: int | None = None,
    ) -> None:
        self.provider = make_provider(
            client,
            model=model,
            model_version=model_version,
            dimension=dimension,
            dense=dense,
            sparse=sparse,
            tokens_per_minute=tokens_per_minute,
        )
        self.batch_size = _positive(batch_size or self.provider.max_batch, "batch_size")
        self.max_concurrency = _positive(
            max_concurrency or self.provider.max_concurrency, "max_concurrency"
        )
        self.max_pending = _positive(max_pending or 4 * self.max_concurrency, "max_pending")
        self.check_duplicates = check_duplicates
        self.max_rounds = max_rounds
        self.round_delay = round_delay
        self.max_rejects = max_rejects
        self.stats = BulkStats()
        self._dimension_lock = threading.Lock()

    # ------------------------------------------------------------------ public
    @property
    def retries(self) -> int:
        """Wire retries by the client plus re-send rounds by the engine."""
        return self.provider.stats.retries + self.stats.rounds

    @property
    def dimension(self) -> int | None:
        return self.provider.dimension

    def stream(self, items: Iterable[object]) -> Iterator[ItemResult]:
        """One :class:`ItemResult` per input item, in input order."""
        for batch in self.iter_batches(items):
            yield from batch.items()

    def iter_batches(
        self,
        items: Iterable[object],
        *,
        skip_items: int = 0,
        cached: Container[int] = (),
        on_result: Callable[[BatchResult], None] | None = None,
    ) -> Generator[BatchResult, None, None]:
        """Batches of ``batch_size`` input items, in input order.

        ``skip_items`` (a multiple of ``batch_size``): the first items are read (their ids
        still count for duplicates) but not sent, and come back as ``"skipped"`` batches.
        ``cached``: start positions of batches finished by an earlier run, likewise
        returned as ``"cached"``. ``on_result`` runs on the worker thread as soon as a
        batch is done, before later batches are yielded (e.g. to make it durable).
        """
        if skip_items % self.batch_size:
            raise ValueError(
                f"skip_items ({skip_items}) must be a multiple of batch_size ({self.batch_size})"
            )
        stop = threading.Event()
        batches = self._batches(items)
        pending: deque[Future[BatchResult] | BatchResult] = deque()
        pool = ThreadPoolExecutor(self.max_concurrency, thread_name_prefix="mm-embed-bulk")
        rejected = 0
        try:
            exhausted = False
            while True:
                while not exhausted and len(pending) < self.max_pending:
                    batch = next(batches, None)
                    if batch is None:
                        exhausted = True
                    elif batch.start + batch.size <= skip_items:
                        self.stats.add(skipped=batch.size)
                        pending.append(BatchResult(batch.start, batch.size, status="skipped"))
                    elif batch.start in cached:
                        self.stats.add(skipped=batch.size)
                        pending.append(BatchResult(batch.start, batch.size, status="cached"))
                    else:
                        pending.append(pool.submit(self._work, batch, stop, on_result))
                if not pending:
                    return
                head = pending.popleft()
                result = head.result() if isinstance(head, Future) else head
                rejected += len(result.rejects)
                if self.max_rejects is not None and rejected > self.max_rejects:
                    last = result.rejects[-1]
                    yield result
                    raise BulkAborted(
                        f"{rejected} items rejected, more than the limit of {self.max_rejects}; "
                        f"the last: {last.location}: {last.message}"
                    )
                yield result
        finally:
            stop.set()
            for item in pending:
                if isinstance(item, Future):
                    item.cancel()
            pool.shutdown(wait=True, cancel_futures=True)

    # ------------------------------------------------------------------ reading
    def _batches(self, items: Iterable[object]) -> Iterator[_Batch]:
        seen = IdSet() if self.check_duplicates else None
        batch = _Batch(0, 0, [], [])
        for index, record in enumerate(items):
            self.stats.add(items=1)
            checked = coerce_record(record, index=index)
            if seen is not None and checked.id is not None:
                line = checked.line if checked.line is not None else index
                first = seen.add(checked.id, line)
                if first is not None and isinstance(checked, BulkItem):
                    checked = BadRecord(
                        f"duplicate id {checked.id!r}: first seen at "
                        f"{format_location(checked.source, first)}",
                        "id",
                        checked.id,
                        code=RejectCode.DUPLICATE_ID,
                        source=checked.source,
                        line=checked.line,
                    )
            if isinstance(checked, BadRecord):
                batch.rejects.append(
                    Reject(
                        index,
                        checked.id,
                        checked.location,
                        checked.field,
                        checked.code,
                        checked.message,
                    )
                )
            else:
                batch.items.append((index, checked))
            batch.size += 1
            if batch.size == self.batch_size:
                yield batch
                batch = _Batch(index + 1, 0, [], [])
        if batch.size:
            yield batch

    # ------------------------------------------------------------------ embedding
    def _work(
        self,
        batch: _Batch,
        stop: threading.Event,
        on_result: Callable[[BatchResult], None] | None,
    ) -> BatchResult:
        if stop.is_set():
            raise _Stopped()
        acc = _Accumulator(batch, self.provider)
        groups: dict[str, list[int]] = {}
        for pos, (_, item) in enumerate(batch.items):
            try:
                kind = self.provider.kind(item)
            except Unsupported as problem:
                acc.reject(
                    pos, field=problem.field, code=RejectCode.UNSUPPORTED, message=problem.message
                )
            else:
                groups.setdefault(kind, []).append(pos)
        for kind, members in groups.items():
            self._resolve(kind, members, acc, stop)
        result = acc.finish()
        self._check_dimension(result)
        self.stats.add(
            embedded=result.embedded,
            rejected=len(result.rejects),
            rows=len(result),
            tokens=result.billed_tokens,
        )
        if on_result is not None:
            on_result(result)
        return result

    def _resolve(
        self, kind: str, members: list[int], acc: _Accumulator, stop: threading.Event
    ) -> None:
        queue: deque[list[int]] = deque([members])
        rounds = 0
        while queue:
            group = queue.popleft()
            if stop.is_set():
                raise _Stopped()
            self.stats.add(calls=1)
            try:
                result = self.provider.embed(kind, [acc.item(p) for p in group])
            except InputError as error:
                # Raised before anything was sent: drop the named item, or halve the call
                # when the client could not say which item it was.
                if error.index is not None and 0 <= error.index < len(group):
                    bad = group[error.index]
                    acc.reject(
                        bad,
                        field=_field_of(error, acc.item(bad)),
                        code=RejectCode.INVALID_INPUT,
                        message=_input_message(error),
                    )
                    rest = group[: error.index] + group[error.index + 1 :]
                    if rest:
                        queue.appendleft(rest)
                elif len(group) == 1:
                    acc.reject(
                        group[0],
                        field=_field_of(error, acc.item(group[0])),
                        code=RejectCode.INVALID_INPUT,
                        message=_input_message(error),
                    )
                else:
                    self.stats.add(splits=1)
                    half = len(group) // 2
                    queue.extendleft([group[half:], group[:half]])
                continue
            except _FATAL as error:
                raise BulkAborted(f"the provider refused the run: {error}", cause=error) from error
            except MMEmbedError as error:
                if error.partial_result is not None:
                    acc.record(group, error.partial_result)
                failed = [group[i] for i in error.failed_indices] or list(group)
                if RetryPolicy.is_retryable(error):
                    rounds += 1
                    if rounds > self.max_rounds:
                        raise BulkAborted(
                            f"the provider kept failing after {self.max_rounds} re-sends "
                            f"(plus the client's retries): {error}",
                            cause=error,
                        ) from error
                    self.stats.add(rounds=1)
                    if stop.wait(self.round_delay * 2 ** (rounds - 1)):
                        raise _Stopped() from error
                    queue.appendleft(failed)
                    continue
                refused = [group[i] for i in error.input_indices] or failed
                others = [p for p in failed if p not in set(refused)]
                if others:
                    queue.append(others)
                if len(refused) == 1:
                    acc.reject(
                        refused[0],
                        field="image" if acc.item(refused[0]).image is not None else "text",
                        code=getattr(error, "code", None) or getattr(error, "status_code", None),
                        message=error.message,
                        status=getattr(error, "status_code", None),
                        request_id=getattr(error, "request_id", None),
                    )
                else:
                    self.stats.add(splits=1)
                    half = len(refused) // 2
                    queue.extendleft([refused[half:], refused[:half]])
                continue
            acc.record(group, result)

    def _check_dimension(self, result: BatchResult) -> None:
        if result.dense is None or len(result) == 0:
            return
        dim = int(result.dense.shape[1])
        with self._dimension_lock:
            if self.provider.dimension is None:
                self.provider.dimension = dim
            elif self.provider.dimension != dim:
                raise BulkAborted(
                    f"the provider returned {dim}-dimensional vectors, expected "
                    f"{self.provider.dimension}",
                    cause=ResponseFormatError("dimension changed during the run"),
                )


def embed_stream(client: object, items: Iterable[object], **options: Any) -> Iterator[ItemResult]:
    """Embed ``items`` with ``client`` and yield one :class:`ItemResult` per item, in
    order, with bounded memory. ``options`` are :class:`BulkEmbedder`'s."""
    return BulkEmbedder(client, **options).stream(items)


def _positive(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return value
