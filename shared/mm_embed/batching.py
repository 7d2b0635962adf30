"""Split inputs into wire-legal calls, run them with bounded concurrency, merge in order.

Planning is pure (:func:`plan_chunks`); running has a thread-pool twin
(:func:`run_calls`) and an asyncio twin (:func:`arun_calls`) that share the merge and
failure bookkeeping (:class:`_Outcome`). When some calls fail for good, no new call is
started, the ones in flight finish, and the first failure (in input order) is raised
with ``failed_indices`` and ``partial_result`` filled in: nothing is silently dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from tqdm.auto import tqdm

from .errors import InputError, MMEmbedError
from .results import EmbeddingResult, ImageInfo, UsageMeter

__all__ = ["CallBatch", "PlannedCall", "RunSettings", "arun_calls", "plan_chunks", "run_calls"]


def plan_chunks(
    sizes: Sequence[int],
    *,
    max_items: int,
    max_bytes: int,
    overhead: int,
    field: str,
    indices: Sequence[int] | None = None,
    weights: Sequence[int] | None = None,
    max_weight: int | None = None,
) -> list[list[int]]:
    """Group positions ``0..len(sizes)-1`` into consecutive chunks of at most ``max_items``
    items whose encoded sizes plus ``overhead`` stay within ``max_bytes``.

    ``indices`` gives the caller's index of each position (for error messages) when the
    sizes are a subset of the caller's inputs. ``weights`` with ``max_weight`` caps a
    chunk's total weight too (images per request); a heavier single item goes alone.
    """
    chunks: list[list[int]] = []
    current: list[int] = []
    used = overhead
    carried = 0
    for position, size in enumerate(sizes):
        if overhead + size > max_bytes:
            raise InputError(
                f"item is {size} bytes once encoded; one request may not exceed the body limit",
                field=field,
                index=indices[position] if indices is not None else position,
                limit=f"{max_bytes} bytes",
            )
        weight = weights[position] if weights is not None else 0
        if current and (
            len(current) >= max_items
            or used + size > max_bytes
            or (max_weight is not None and carried + weight > max_weight)
        ):
            chunks.append(current)
            current, used, carried = [], overhead, 0
        current.append(position)
        used += size + 1
        carried += weight
    if current:
        chunks.append(current)
    return chunks


@dataclass
class PlannedCall:
    """One wire request of a client call.

    ``items``: caller input index of each wire item (for error reports).
    ``rows``: caller input index of each expected reply row (boxes give several rows).
    ``box_rows``: box position of each reply row (``-1`` for a whole image), or ``None``.
    """

    items: npt.NDArray[np.int64]
    rows: npt.NDArray[np.int64]
    body: bytes
    box_rows: npt.NDArray[np.int64] | None = None
    tokens: int = 0
    images: int = 0


@dataclass
class CallBatch:
    """The wire requests of one client call and what merging their replies needs."""

    calls: Sequence[PlannedCall]
    #: How many inputs the caller passed (failed indices count up to it).
    n_inputs: int
    #: The result of a call with no requests.
    empty: EmbeddingResult
    #: The progress bar's label.
    desc: str = "embedding"


@dataclass(frozen=True)
class RunSettings:
    """How :func:`run_calls` / :func:`arun_calls` run a batch."""

    max_concurrency: int = 1
    show_progress: bool = False
    #: Adds up the usage of every successful request.
    meter: UsageMeter | None = None


class _Outcome:
    """Collects per-call results and errors; merges or raises."""

    def __init__(self, batch: CallBatch, meter: UsageMeter | None) -> None:
        self.calls = batch.calls
        self.meter = meter
        self.n_inputs = batch.n_inputs
        self.empty = batch.empty
        self.results: dict[int, EmbeddingResult] = {}
        self.errors: dict[int, MMEmbedError] = {}

    def record(self, position: int, result: EmbeddingResult) -> None:
        call = self.calls[position]
        result.input_indices = call.rows
        result.box_indices = call.box_rows
        self.results[position] = result
        if self.meter is not None:
            self.meter.add(result.usage)

    def fail(self, position: int, error: MMEmbedError) -> None:
        error.input_indices = tuple(int(i) for i in self.calls[position].items)
        self.errors[position] = error

    def merged(self, positions: Sequence[int]) -> EmbeddingResult:
        parts = [self.results[p] for p in positions]
        # Per-item metadata (FG-CLIP image sizes, text lengths) follows the wire items.
        images: list[ImageInfo | None] | None = None
        lengths: list[int] | None = None
        if any(part.images is not None for part in parts) or any(
            part.text_lengths is not None for part in parts
        ):
            images_by_input: dict[int, ImageInfo | None] = {}
            lengths_by_input: dict[int, int] = {}
            for p in positions:
                part, items = self.results[p], self.calls[p].items
                for k, idx in enumerate(items):
                    if part.images is not None and k < len(part.images):
                        images_by_input[int(idx)] = part.images[k]
                    if part.text_lengths is not None and k < len(part.text_lengths):
                        lengths_by_input[int(idx)] = part.text_lengths[k]
            if images_by_input:
                images = [images_by_input.get(i) for i in sorted(images_by_input)]
            if lengths_by_input:
                lengths = [lengths_by_input[i] for i in sorted(lengths_by_input)]
        merged = EmbeddingResult.concat(parts)
        order = np.argsort(merged.input_indices, kind="stable")
        if not np.array_equal(order, np.arange(len(order))):
            merged = merged.take(order)
        merged.images, merged.text_lengths = images, lengths
        return merged

    def finish(self) -> EmbeddingResult:
        done = sorted(self.results)
        result = self.merged(done) if done else self.empty
        if not self.errors:
            return result
        first = self.errors[min(self.errors)]
        succeeded = {int(i) for p in done for i in self.calls[p].items}
        first.failed_indices = tuple(i for i in range(self.n_inputs) if i not in succeeded)
        first.partial_result = result
        raise first


def _progress(batch: CallBatch, settings: RunSettings) -> tqdm[Any] | None:
    if not settings.show_progress:
        return None
    return tqdm(total=batch.n_inputs, desc=batch.desc, unit="item", leave=False)


def run_calls(
    batch: CallBatch,
    send: Callable[[PlannedCall], EmbeddingResult],
    settings: RunSettings = RunSettings(),
) -> EmbeddingResult:
    """Run the batch's calls on up to ``max_concurrency`` threads; results in caller order."""
    calls, max_concurrency = batch.calls, settings.max_concurrency
    outcome = _Outcome(batch, settings.meter)
    bar = _progress(batch, settings)
    try:
        if max_concurrency <= 1 or len(calls) <= 1:
            for position, call in enumerate(calls):
                try:
                    outcome.record(position, send(call))
                except MMEmbedError as error:
                    outcome.fail(position, error)
                    break
                if bar is not None:
                    bar.update(len(call.items))
        else:
            _run_pool(calls, send, outcome, max_concurrency, bar)
    finally:
        if bar is not None:
            bar.close()
    return outcome.finish()


def _run_pool(
    calls: Sequence[PlannedCall],
    send: Callable[[PlannedCall], EmbeddingResult],
    outcome: _Outcome,
    max_concurrency: int,
    bar: tqdm[Any] | None,
) -> None:
    queue: Iterator[int] = iter(range(len(calls)))
    with ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="mm-embed") as pool:
        running: dict[Future[EmbeddingResult], int] = {}

        def submit_next() -> None:
            if outcome.errors:
                return  # stop starting calls once one has failed for good
            position = next(queue, None)
            if position is not None:
                running[pool.submit(send, calls[position])] = position

        for _ in range(max_concurrency):
            submit_next()
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                position = running.pop(future)
                try:
                    outcome.record(position, future.result())
                except MMEmbedError as error:
                    outcome.fail(position, error)
                if bar is not None:
                    bar.update(len(calls[position].items))
                submit_next()


async def arun_calls(
    batch: CallBatch,
    send: Callable[[PlannedCall], Awaitable[EmbeddingResult]],
    settings: RunSettings = RunSettings(),
) -> EmbeddingResult:
    """Run the batch's calls as up to ``max_concurrency`` concurrent tasks; results in
    caller order.

    Cancelling the awaiting task cancels every call in flight and waits for them, so no
    background task or open request outlives it.
    """
    calls, max_concurrency = batch.calls, settings.max_concurrency
    outcome = _Outcome(batch, settings.meter)
    bar = _progress(batch, settings)
    queue: Iterator[int] = iter(range(len(calls)))

    async def worker() -> None:
        while not outcome.errors:
            position = next(queue, None)
            if position is None:
                return
            try:
                outcome.record(position, await send(calls[position]))
            except MMEmbedError as error:
                outcome.fail(position, error)
            if bar is not None:
                bar.update(len(calls[position].items))

    workers = [
        asyncio.ensure_future(worker()) for _ in range(max(1, min(max_concurrency, len(calls))))
    ]
    try:
        await asyncio.gather(*workers)
    except BaseException:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        raise
    finally:
        if bar is not None:
            bar.close()
    return outcome.finish()
