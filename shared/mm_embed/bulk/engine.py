"""The streaming engine: items are read lazily, grouped in batches, embedded on a
bounded pool of threads, and handed back **in input order**.

Memory is bounded by ``max_pending`` batches (in flight or finished and waiting for an
earlier one), never by the corpus. What happens to an item or a call that fails:
:mod:`mm_embed.bulk.calls`.

A corpus job drives an engine through :class:`BatchEngine`; :class:`BulkEmbedder` (a
thread pool in this process) is the one implementation here.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

from ..errors import ResponseFormatError
from .batches import BatchAssembler, BatchResult, InputBatch
from .calls import BatchCalls, BulkAborted, Stopped
from .checkpoint import CheckpointError
from .dedup import IdSet
from .fingerprint import Prints, first_difference, record_print
from .image_guard import oversized_image
from .items import (
    BadRecord,
    BulkItem,
    ItemResult,
    RejectCode,
    coerce_record,
    format_location,
)
from .options import EngineOptions, with_settings
from .providers import Provider, Unsupported, make_provider
from .stats import BulkStats

__all__ = [
    "BatchEngine",
    "BulkAborted",
    "BulkEmbedder",
    "InputChanged",
    "Replay",
    "embed_stream",
]

OnResult = Callable[[BatchResult], None]


class InputChanged(CheckpointError):
    """The input read again by a resume is not what the earlier run finished: a record
    inside the finished part differs, or the input ends before it. ``index`` (0-based)
    and ``location`` name the first differing record when there is one."""

    def __init__(
        self, message: str, *, index: int | None = None, location: str | None = None
    ) -> None:
        super().__init__(
            f"cannot resume: {message}; the input changed since the earlier run. Restore "
            "it, or start again with --overwrite (overwrite=True)"
        )
        self.index, self.location = index, location


class Replay(Protocol):
    """An earlier run's finished work, checked against the input as it is read again."""

    @property
    def done(self) -> int:
        """Items ``0 .. done - 1`` are finished and written: read and checked, not sent."""

    def expect(self, start: int, size: int) -> tuple[Prints, str]:
        """The fingerprints the earlier run recorded for items ``start .. start + size - 1``
        and where it keeps them (for messages)."""

    def reusable(self, start: int, prints: Prints) -> bool:
        """Whether a finished batch at ``start`` holds exactly these records (it is then
        not sent again)."""


class BatchEngine(Protocol):
    """What a corpus job needs from an engine."""

    provider: Provider
    batch_size: int
    stats: BulkStats

    @property
    def retries(self) -> int: ...

    def iter_batches(
        self,
        items: Iterable[object],
        *,
        replay: Replay | None = None,
        fingerprints: bool = False,
        on_result: OnResult | None = None,
    ) -> Generator[BatchResult, None, None]: ...


class BulkEmbedder:
    """Embeds any iterable of items with bounded memory, results in input order.

    ``client`` is a blocking :class:`~mm_embed.VikingClient` or
    :class:`~mm_embed.FGClipClient` (its retries, timeouts and, for Viking, token budget
    apply to every call). The settings are an :class:`EngineOptions`, given whole
    (``options``) and/or by name (``BulkEmbedder(client, model="bge-m3", batch_size=50)``).

    Items are :class:`BulkItem`, mappings with ``id`` and ``text`` / ``image`` /
    ``boxes``, or plain strings (their id is their position).
    """

    def __init__(
        self, client: object, options: EngineOptions | None = None, **settings: Any
    ) -> None:
        self.options = opts = with_settings(options, EngineOptions, settings)
        self.provider = make_provider(client, opts)
        self.batch_size = opts.batch_size or self.provider.max_batch
        self.max_concurrency = opts.max_concurrency or self.provider.max_concurrency
        self.max_pending = opts.max_pending or 4 * self.max_concurrency
        self.stats = BulkStats()
        self._dimension_lock = threading.Lock()

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
        replay: Replay | None = None,
        fingerprints: bool = False,
        on_result: OnResult | None = None,
    ) -> Generator[BatchResult, None, None]:
        """Batches of ``batch_size`` input items, in input order.

        ``replay``: an earlier run finished the first ``replay.done`` items (a multiple
        of ``batch_size``): they are read (their ids still count for duplicates) and
        checked against its fingerprints, not sent, and come back as ``"skipped"``
        batches, each as soon as it is read, before anything is sent; a difference
        raises :class:`InputChanged`. A later batch it finished comes back as
        ``"cached"`` when its records are unchanged, else it is sent again.
        ``fingerprints``: fill :attr:`BatchResult.fingerprints` (always, with a replay).
        ``on_result`` runs on the worker thread as soon as a batch is done, before later
        batches are yielded (e.g. to make it durable).
        """
        done = replay.done if replay is not None else 0
        if done % self.batch_size:
            raise ValueError(f"replay.done ({done}) must be a multiple of batch_size")
        batches = self._read(items, fingerprints=fingerprints or replay is not None)
        if replay is not None and done:
            following = yield from self._replayed(batches, replay)
            if following is None:
                return
            batches = itertools.chain([following], batches)
        pipeline = _Pipeline(self, on_result)
        try:
            yield from self._pipelined(batches, pipeline, replay)
        finally:
            pipeline.close()

    # ------------------------------------------------------------------ reading
    def _read(self, items: Iterable[object], *, fingerprints: bool) -> Iterator[InputBatch]:
        seen = IdSet() if self.options.check_duplicates else None
        batch = InputBatch(0, prints=[] if fingerprints else None)
        for index, record in enumerate(items):
            self.stats.add(items=1)
            checked = _readable_again(coerce_record(record, index=index))
            if batch.prints is not None:
                batch.prints.append(record_print(checked))
            checked = _unless_duplicate(seen, checked, index)
            if isinstance(checked, BadRecord):
                batch.rejects.append(checked.reject(index))
            else:
                batch.items.append((index, checked))
            batch.size += 1
            if batch.size == self.batch_size:
                yield batch
                batch = InputBatch(index + 1, prints=[] if fingerprints else None)
        if batch.size:
            yield batch

    def _replayed(
        self, batches: Iterator[InputBatch], replay: Replay
    ) -> Generator[BatchResult, None, InputBatch | None]:
        """Check and yield the batches an earlier run finished; return the first batch
        after them (``None`` when the input ends exactly there)."""
        read = 0
        for batch in batches:
            if batch.start >= replay.done:
                return batch
            _check_replayed(batch, replay)
            read = batch.start + batch.size
            self.stats.add(skipped=batch.size)
            yield BatchResult(
                batch.start, batch.size, status="skipped", fingerprints=batch.fingerprints
            )
        if read < replay.done:
            raise InputChanged(
                f"the input ends after {read} items, but the earlier run finished {replay.done}"
            )
        return None

    def _pipelined(
        self, batches: Iterator[InputBatch], pipeline: _Pipeline, replay: Replay | None
    ) -> Generator[BatchResult, None, None]:
        rejected = 0
        exhausted = False
        while True:
            while not exhausted and len(pipeline.pending) < self.max_pending:
                batch = next(batches, None)
                if batch is None:
                    exhausted = True
                elif replay is not None and _reusable(replay, batch):
                    self.stats.add(skipped=batch.size)
                    pipeline.finished(batch, "cached")
                else:
                    pipeline.submit(batch)
            if not pipeline.pending:
                return
            result = pipeline.next_result()
            rejected += len(result.rejects)
            yield result
            limit = self.options.max_rejects
            if limit is not None and rejected > limit:
                last = result.rejects[-1]
                raise BulkAborted(
                    f"{rejected} items rejected, more than the limit of {limit}; "
                    f"the last: {last.location}: {last.message}"
                )

    # ------------------------------------------------------------------ embedding
    def work(
        self, batch: InputBatch, stop: threading.Event, on_result: OnResult | None
    ) -> BatchResult:
        """Embed one batch (on a worker thread)."""
        if stop.is_set():
            raise Stopped()
        acc = BatchAssembler(batch, self.provider)
        calls = BatchCalls(
            self.provider,
            acc,
            self.stats,
            stop,
            max_rounds=self.options.max_rounds,
            round_delay=self.options.round_delay,
        )
        for kind, members in self._admitted(acc).items():
            calls.run(kind, members)
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

    def _admitted(self, acc: BatchAssembler) -> dict[str, list[int]]:
        """The batch's items by call kind; those the provider cannot take, or whose
        image is over the pixel cap, are rejected here."""
        groups: dict[str, list[int]] = {}
        for pos, (_, item) in enumerate(acc.batch.items):
            try:
                kind = self.provider.kind(item)
            except Unsupported as problem:
                acc.reject(
                    pos, field=problem.field, code=RejectCode.UNSUPPORTED, message=problem.message
                )
                continue
            too_large = oversized_image(item.image, self.options.max_image_pixels)
            if too_large is not None:
                acc.reject(pos, field="image", code=RejectCode.IMAGE_TOO_LARGE, message=too_large)
                continue
            groups.setdefault(kind, []).append(pos)
        return groups

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


class _Pipeline:
    """Batches on the thread pool (or finished earlier), handed back in input order."""

    def __init__(self, engine: BulkEmbedder, on_result: OnResult | None) -> None:
        self.engine, self.on_result = engine, on_result
        self.stop = threading.Event()
        self.pending: deque[Future[BatchResult] | BatchResult] = deque()
        self.pool = ThreadPoolExecutor(engine.max_concurrency, thread_name_prefix="mm-embed-bulk")

    def submit(self, batch: InputBatch) -> None:
        self.pending.append(self.pool.submit(self.engine.work, batch, self.stop, self.on_result))

    def finished(self, batch: InputBatch, status: str) -> None:
        self.pending.append(
            BatchResult(batch.start, batch.size, status=status, fingerprints=batch.fingerprints)
        )

    def next_result(self) -> BatchResult:
        head = self.pending.popleft()
        return head.result() if isinstance(head, Future) else head

    def close(self) -> None:
        self.stop.set()
        for item in self.pending:
            if isinstance(item, Future):
                item.cancel()
        self.pool.shutdown(wait=True, cancel_futures=True)


def _unless_duplicate(
    seen: IdSet | None, checked: BulkItem | BadRecord, index: int
) -> BulkItem | BadRecord:
    """``checked``, or a :class:`BadRecord` when its id was used by an earlier record."""
    if seen is None or checked.id is None:
        return checked
    line = checked.line if checked.line is not None else index
    first = seen.add(checked.id, line)
    if first is None or not isinstance(checked, BulkItem):
        return checked
    return BadRecord(
        f"duplicate id {checked.id!r}: first seen at {format_location(checked.source, first)}",
        "id",
        checked.id,
        code=RejectCode.DUPLICATE_ID,
        source=checked.source,
        line=checked.line,
    )


def _readable_again(record: BulkItem | BadRecord) -> BulkItem | BadRecord:
    """``record``, with an image stream read into bytes: a batch may be sent more than
    once (split to isolate a refusal, re-sent after an outage), a stream read once."""
    if not isinstance(record, BulkItem) or not hasattr(record.image, "read"):
        return record
    try:
        data = record.image.read()  # type: ignore[union-attr]
    except (OSError, ValueError) as exc:
        data = exc
    if isinstance(data, (bytes, bytearray)):
        return dataclasses.replace(record, image=bytes(data))
    problem = (
        f"cannot read the image stream ({data})"
        if isinstance(data, Exception)
        else ("the image stream must be opened in binary mode")
    )
    return BadRecord(problem, "image", record.id, source=record.source, line=record.line)


def _reusable(replay: Replay, batch: InputBatch) -> bool:
    prints = batch.fingerprints
    return prints is not None and replay.reusable(batch.start, prints)


def _check_replayed(batch: InputBatch, replay: Replay) -> None:
    found = batch.fingerprints
    assert found is not None
    expected, origin = replay.expect(batch.start, batch.size)
    at = first_difference(expected, found)
    if at is None:
        return
    index = batch.start + at
    where, item_id = _describe(batch, index)
    raise InputChanged(
        f"input item {index} ({where}{item_id}) is not the item the earlier run embedded "
        f"at that position (recorded in {origin})",
        index=index,
        location=where,
    )


def _describe(batch: InputBatch, index: int) -> tuple[str, str]:
    """Where item ``index`` of ``batch`` was read, and its id (as ``, id '...'``)."""
    for i, item in batch.items:
        if i == index:
            return item.location, f", id {item.id!r}"
    for reject in batch.rejects:
        if reject.index == index:
            return reject.location, f", id {reject.id!r}" if reject.id is not None else ""
    return f"item {index}", ""


def embed_stream(client: object, items: Iterable[object], **settings: Any) -> Iterator[ItemResult]:
    """Embed ``items`` with ``client`` and yield one :class:`ItemResult` per item, in
    order, with bounded memory. ``settings`` are :class:`EngineOptions` fields."""
    return BulkEmbedder(client, **settings).stream(items)
