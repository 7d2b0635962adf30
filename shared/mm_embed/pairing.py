"""Dense and sparse vectors of one Viking model from one provider request per text.

A hybrid index or query needs both vectors of every text, and frameworks ask for them
at different moments, sometimes at the same moment (LangChain's ``HybridRetriever``
runs its dense and sparse retrievers as two concurrent tasks; LlamaIndex asks the embed
model, then the vector store's sparse function). :class:`DenseSparsePairing` is the one
object that joins them: the framework adapters of a dense and a sparse model hold the
same pairing, and every asker shares the provider's work:

* **One request per text.** A text that is neither cached nor in flight is fetched with
  both vectors (the caller's ``fetch`` asks ``return_dense`` and ``return_sparse``
  together); a call's missing texts go in one ``fetch`` call, each text once however
  often the caller repeats it.
* **No second request for a text in flight.** A caller whose text another thread or
  task is fetching waits for that fetch instead of sending its own. The waiting is on a
  :class:`concurrent.futures.Future` per fetch, which threads wait on directly and
  asyncio tasks through :func:`asyncio.wrap_future`, so a thread and a task coalesce too.
* **Reuse until expiry.** Both vectors of a text stay for ``ttl_seconds`` after they
  arrived, for every asker and any number of asks (a repeated query costs nothing); at
  most ``max_entries`` texts are kept, the least recently used dropped first. Entries
  are shared and read-only. Keys are ``(model, model_version, dimension, text)``, so a
  vector is only ever reused for the exact request that produced it.

Errors: a failed fetch leaves nothing in flight (the next call asks again) and every
caller gets an error whose ``input_indices`` and ``failed_indices`` are positions in
*its own* ``texts`` (not in the list that was sent); an :class:`~mm_embed.InputError`
also names the caller's ``texts[i]``. ``partial_result`` is ``None`` on these errors:
the texts that did succeed before the fetch gave up are kept in the cache instead, so
retrying the same call fetches only the ones that failed.

Blocking calls made on an event loop's thread (LlamaIndex's Qdrant store calls its
sparse function inside ``aquery``) cannot wait for a task of that loop: the task needs
the thread they block. A task therefore yields to its loop once before sending; a
blocking call of that thread that asks for the same text meanwhile (a retriever task
started alongside) takes the texts over and sends them in its own request, which
serves both. Only when the task's request is already under way does such a call send
the text again, rather than deadlock.
"""

from __future__ import annotations

import asyncio
import copy
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np
import numpy.typing as npt

from .config import DEFAULTS
from .errors import ConfigurationError, InputError, MMEmbedError, ResponseFormatError
from .inputs import check_text
from .results import EmbeddingResult, SparseVector

if TYPE_CHECKING:
    from .providers.viking import AsyncVikingClient, VikingClient

__all__ = ["DenseSparsePairing", "PairEntry", "PairRequest", "fetch_pairs"]


class PairRequest(TypedDict):
    """The request that produced a pair of vectors (part of every cache key)."""

    model: str
    model_version: str | None
    dimension: int | None


#: ``(model, model_version, dimension, text)``
Key = tuple[str, str | None, int | None, str]

Fetch = Callable[[list[str]], EmbeddingResult]
AsyncFetch = Callable[[list[str]], Awaitable[EmbeddingResult]]


@dataclass(frozen=True)
class PairEntry:
    """Both vectors of one text. ``dense`` is a read-only row shared by every caller."""

    dense: npt.NDArray[Any]
    sparse: SparseVector

    def dense_list(self) -> list[float]:
        """The dense vector as ``list[float]``, the form frameworks store."""
        return self.dense.astype(np.float64).tolist()  # type: ignore[no-any-return]


@dataclass
class _Slot:
    entry: PairEntry
    expires: float


@dataclass(frozen=True)
class _FlightOutcome:
    #: By position in the flight's keys; ``None`` for a text left without vectors.
    entries: list[PairEntry | None]
    error: BaseException | None


class _Flight:
    """One ``fetch`` call under way: its texts and the future all its askers wait on."""

    def __init__(self, keys: list[Key], task: asyncio.Task[Any] | None) -> None:
        self.keys = keys
        self.positions = {key: i for i, key in enumerate(keys)}
        self.thread = threading.get_ident()
        self.task = task
        #: A blocking caller fetches at once; a task first yields to its loop once.
        self.started = task is None
        #: Taken over (before it started) by a blocking call of the task's own thread.
        self.taken_over = False
        #: Flights this one took over: settled from this one's outcome.
        self.adopted: list[_Flight] = []
        self.future: Future[_FlightOutcome] = Future()
        # A running future cannot be cancelled: a waiter's cancellation (propagated by
        # asyncio.wrap_future) must not cancel the fetch other callers wait on.
        self.future.set_running_or_notify_cancel()

    def texts(self) -> list[str]:
        """The texts to send."""
        return [key[3] for key in self.keys]

    def can_wait(self, thread: int, task: asyncio.Task[Any] | None) -> bool:
        """Whether a caller on ``thread`` (in ``task``, for async callers) may wait.

        On the fetch's own thread only another task of its loop may: a blocking call
        there would stop the loop that has to finish the fetch, and a task cannot wait
        for a fetch it started itself.
        """
        if thread != self.thread:
            return True
        return task is not None and self.task is not None and task is not self.task

    def can_take_over(self, thread: int, task: asyncio.Task[Any] | None) -> bool:
        """Whether a blocking call (``task`` is ``None``) on ``thread`` may send this
        flight's texts itself, in its own request, instead of a task of its loop that
        registered them but has not sent them yet."""
        return task is None and thread == self.thread and self.task is not None and not self.started


@dataclass
class _Plan:
    found: dict[Key, PairEntry]
    waits: dict[Key, _Flight]
    own: _Flight | None


class DenseSparsePairing:
    """Both vectors of each text, fetched once per text and shared by every asker.

    Adapters hold one pairing between a dense and a sparse model of the same Viking
    model and call :meth:`entries` / :meth:`aentries` with their client and request;
    :meth:`get_or_fetch` is the same with any fetch function.

    ``ttl_seconds``: how long vectors are reused after they arrived; ``max_entries``:
    how many texts are kept at most (least recently used dropped first); ``clock``: a
    monotonic clock in seconds (for tests). Thread- and task-safe; one cache may serve
    any number of models (the model is part of each key).

    Memory: a held text costs its dense row (4 bytes per dimension) plus its sparse
    vector as Python objects; measured 10 KiB (1024-d, 30 tokens) to 25 KiB (2048-d,
    100 tokens) per text, so ``max_entries=10_000`` may hold 100-250 MB until expiry.

    Counters (texts, each counted once per call): ``reused`` served from the cache,
    ``coalesced`` taken from a fetch another caller had in flight, ``fetched`` sent to
    the provider.

    Pickles and copies as an empty cache with the same limits.
    """

    def __init__(
        self,
        *,
        ttl_seconds: float = DEFAULTS.pairing_ttl_seconds,
        max_entries: int = DEFAULTS.pairing_max_entries,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, (int, float)):
            raise ConfigurationError(f"ttl_seconds must be a number > 0, got {ttl_seconds!r}")
        if not ttl_seconds > 0:
            raise ConfigurationError(f"ttl_seconds must be > 0, got {ttl_seconds!r}")
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise ConfigurationError(f"max_entries must be an integer >= 1, got {max_entries!r}")
        self.ttl_seconds = float(ttl_seconds)
        self.max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[Key, _Slot] = OrderedDict()  # least recently used first
        # One ttl for all: arrival order is expiry order, so expired texts leave from
        # the front of this one without scanning the cache.
        self._arrivals: OrderedDict[Key, None] = OrderedDict()
        self._in_flight: dict[Key, _Flight] = {}
        self.reused = 0
        self.coalesced = 0
        self.fetched = 0

    def __len__(self) -> int:
        """Texts held (expired ones leave at the next lookup or arrival)."""
        with self._lock:
            return len(self._entries)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(ttl_seconds={self.ttl_seconds}, "
            f"max_entries={self.max_entries}, entries={len(self)})"
        )

    def clear(self) -> None:
        """Drop every held vector (fetches in flight still complete for their askers)."""
        with self._lock:
            self._entries.clear()
            self._arrivals.clear()

    def __getstate__(self) -> dict[str, Any]:
        return {"ttl_seconds": self.ttl_seconds, "max_entries": self.max_entries}

    def __setstate__(self, state: dict[str, Any]) -> None:
        DenseSparsePairing.__init__(
            self, ttl_seconds=state["ttl_seconds"], max_entries=state["max_entries"]
        )

    # ------------------------------------------------------------------ public calls

    def entries(
        self,
        client: VikingClient,
        texts: Sequence[str],
        *,
        model: str,
        model_version: str | None = None,
        dimension: int | None = None,
    ) -> list[PairEntry]:
        """Both vectors of every text from ``client`` (one request for both kinds),
        held, coalesced or fetched; :class:`~mm_embed.InputError` names ``texts[i]``."""
        request = PairRequest(model=model, model_version=model_version, dimension=dimension)
        return self.get_or_fetch(
            texts, lambda missing: _fetch_both(client, missing, request), **request
        )

    async def aentries(
        self,
        client: AsyncVikingClient,
        texts: Sequence[str],
        *,
        model: str,
        model_version: str | None = None,
        dimension: int | None = None,
    ) -> list[PairEntry]:
        """Async twin of :meth:`entries`."""
        request = PairRequest(model=model, model_version=model_version, dimension=dimension)

        async def fetch(missing: list[str]) -> EmbeddingResult:
            return await client.embed(missing, **request, return_dense=True, return_sparse=True)

        return await self.aget_or_fetch(texts, fetch, **request)

    def get_or_fetch(
        self,
        texts: Sequence[str],
        fetch: Fetch,
        *,
        model: str,
        model_version: str | None = None,
        dimension: int | None = None,
    ) -> list[PairEntry]:
        """Both vectors of every text, in the caller's order.

        ``fetch(missing_texts)`` must request dense and sparse vectors of ``model``
        (``model_version``, ``dimension``) together, one row per text; it is called at
        most once, with the texts neither held nor in flight, and not at all when there
        are none. Texts another thread or task is fetching are waited for. Raises
        :class:`~mm_embed.InputError` (nothing sent) for a text that is not a non-empty
        ``str``, and the fetch's error, with the caller's indices, when it fails.
        """
        keys = _keys(texts, model, model_version, dimension)
        found: dict[Key, PairEntry] = {}
        for plan in self._rounds(keys, found, None):
            own = plan.own
            if own is not None and self._claim(own):
                try:
                    result = fetch(own.texts())
                except BaseException as exc:
                    self._abandon(own, exc)
                else:
                    self._finish(own, result, None)
            for flight in set(plan.waits.values()):
                flight.future.result()
        return [found[key] for key in keys]

    async def aget_or_fetch(
        self,
        texts: Sequence[str],
        afetch: AsyncFetch,
        *,
        model: str,
        model_version: str | None = None,
        dimension: int | None = None,
    ) -> list[PairEntry]:
        """Async twin of :meth:`get_or_fetch`: ``afetch`` is awaited, and texts another
        task or thread is fetching are awaited without blocking the event loop."""
        keys = _keys(texts, model, model_version, dimension)
        found: dict[Key, PairEntry] = {}
        for plan in self._rounds(keys, found, asyncio.current_task()):
            own = plan.own
            if own is not None and await self._start(own):
                try:
                    result = await afetch(own.texts())
                except BaseException as exc:
                    self._abandon(own, exc)
                else:
                    self._finish(own, result, None)
            waits = set(plan.waits.values())
            if own is not None and own.taken_over:
                waits.add(own)
            for flight in waits:
                await asyncio.wrap_future(flight.future)
        return [found[key] for key in keys]

    # ------------------------------------------------------------------ internals

    def _rounds(
        self, keys: list[Key], found: dict[Key, PairEntry], task: asyncio.Task[Any] | None
    ) -> Iterator[_Plan]:
        """The plans of one call, for its caller to fetch its own flight and wait for
        the others; after each, ``found`` is filled from the plan's flights.

        A second round only re-fetches texts whose fetch was abandoned by its caller; it
        waits for nobody, so there is never a third.
        """
        pending = list(dict.fromkeys(keys))
        for attempt in range(2):
            plan = self._plan(pending, threading.get_ident() if attempt == 0 else None, task)
            yield plan
            pending = self._collect(keys, plan, found)
            if not pending:
                return

    def _abandon(self, flight: _Flight, exc: BaseException) -> None:
        """Settle ``flight`` with its fetch's error. An ``Exception`` reaches the callers
        through the flight; a cancellation or interrupt is raised on."""
        self._finish(flight, None, exc)
        if not isinstance(exc, Exception):
            raise exc

    async def _start(self, flight: _Flight) -> bool:
        """Yield to the loop once before a task sends its flight; ``False`` when a
        blocking call of the loop's thread took it over meanwhile.

        Frameworks call blocking functions from async code (LlamaIndex's Qdrant store
        calls its sparse function inside ``aquery``): when such a call asks for a text
        a task of the same loop is fetching, it cannot wait (the task needs the thread it
        blocks). Deferring the send by one loop turn lets a call made by a task started
        alongside (``asyncio.gather`` of a dense and a sparse retriever) take the texts
        over and send them once, instead of both sending them.
        """
        try:
            await asyncio.sleep(0)
        except BaseException as exc:
            if self._claim(flight):
                self._finish(flight, None, exc)
            raise
        return self._claim(flight)

    def _claim(self, flight: _Flight) -> bool:
        """Mark ``flight`` as being sent by its caller (``False``: it was taken over)."""
        with self._lock:
            if flight.taken_over:
                self.coalesced += len(flight.keys)
                return False
            flight.started = True
            self.fetched += len(flight.keys)
            return True

    def _plan(
        self, pending: list[Key], thread: int | None, task: asyncio.Task[Any] | None
    ) -> _Plan:
        """Sort ``pending`` into held, in flight (to wait for) and to fetch now.

        ``thread``: the caller's thread, or ``None`` to wait for nobody. Texts in a
        flight the caller may not wait for (:meth:`_Flight.can_wait`) are fetched again;
        a flight it may take over (:meth:`_Flight.can_take_over`) is fetched whole in
        the caller's request, and settled from it.
        """
        found: dict[Key, PairEntry] = {}
        waits: dict[Key, _Flight] = {}
        send: list[Key] = []
        register: list[Key] = []
        adopted: list[_Flight] = []
        with self._lock:
            now = self._clock()
            for key in pending:
                slot = self._entries.get(key)
                if slot is not None and slot.expires > now:
                    self._entries.move_to_end(key)
                    found[key] = slot.entry
                    continue
                if slot is not None:
                    self._drop(key)
                flight = self._in_flight.get(key)
                if flight is not None and thread is not None:
                    if flight.can_wait(thread, task):
                        waits[key] = flight
                        continue
                    if flight.can_take_over(thread, task) and flight not in adopted:
                        adopted.append(flight)
                send.append(key)
                if flight is None:
                    register.append(key)
            # A flight taken over is sent whole, in this caller's one request.
            asked = set(send)
            extra = list(dict.fromkeys(k for f in adopted for k in f.keys if k not in asked))
            own = _Flight(send + extra, task) if send else None
            if own is not None:
                own.adopted = adopted
                for flight in adopted:
                    flight.started = flight.taken_over = True
                    register += [k for k in flight.keys if self._in_flight.get(k) is flight]
                self._in_flight.update(dict.fromkeys(register, own))
            self.reused += len(found)
            self.coalesced += len(waits)
        return _Plan(found, waits, own)

    def _finish(
        self, flight: _Flight, result: EmbeddingResult | None, error: BaseException | None
    ) -> None:
        """Hold what arrived, take the flight's texts off the in-flight table and wake
        every caller waiting on it (always, whatever the fetch did)."""
        count = len(flight.keys)
        entries: list[PairEntry | None] = [None] * count
        try:
            if result is not None:
                entries = _entries_of(result, count, complete=True)
            elif isinstance(error, MMEmbedError) and error.partial_result is not None:
                entries = _entries_of(error.partial_result, count, complete=False)
        except Exception as exc:
            # A reply we cannot read fails the fetch; an unreadable partial result of a
            # failed fetch is only not kept.
            if error is None:
                error = exc
        finally:
            with self._lock:
                expires = self._clock() + self.ttl_seconds
                for key, entry in zip(flight.keys, entries, strict=True):
                    if entry is not None:
                        self._entries[key] = _Slot(entry, expires)
                        self._entries.move_to_end(key)
                        self._arrivals[key] = None
                        self._arrivals.move_to_end(key)
                    if self._in_flight.get(key) is flight:
                        del self._in_flight[key]
                self._evict()
            flight.future.set_result(_FlightOutcome(entries, error))
            for other in flight.adopted:
                try:
                    outcome = _adopted_outcome(flight, other, entries, error)
                except Exception as exc:  # its callers must wake up whatever happens
                    outcome = _FlightOutcome([None] * len(other.keys), error or exc)
                other.future.set_result(outcome)

    def _evict(self) -> None:
        """Drop expired texts, then the least recently used beyond ``max_entries``."""
        now = self._clock()
        while self._arrivals:
            oldest = next(iter(self._arrivals))
            if self._entries[oldest].expires > now:
                break
            self._drop(oldest)
        while len(self._entries) > self.max_entries:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: Key) -> None:
        del self._entries[key]
        del self._arrivals[key]

    def _collect(self, keys: list[Key], plan: _Plan, found: dict[Key, PairEntry]) -> list[Key]:
        """Fill ``found`` from the plan's finished flights; return the texts to fetch
        again (their fetch was abandoned by its caller or failed on another caller's
        input); raise the caller's error when any text failed otherwise."""
        found.update(plan.found)
        mine = set(keys)
        retry: list[Key] = []
        failed: list[tuple[Key, _Flight]] = []
        waits = list(plan.waits.items())
        # The own flight may also hold texts of a flight it took over: not this caller's.
        own = [(k, plan.own) for k in plan.own.keys if k in mine] if plan.own is not None else []
        for key, flight in own + waits:
            outcome = flight.future.result()
            entry = outcome.entries[flight.positions[key]]
            if entry is not None:
                found[key] = entry
            elif (flight is not plan.own or flight.taken_over) and _not_ours(
                outcome.error, flight, mine
            ):
                retry.append(key)
            else:
                failed.append((key, flight))
        if failed:
            key, flight = failed[0]
            error = flight.future.result().error
            assert error is not None
            lost = {k for k, _ in failed} | set(retry)
            raise _for_caller(error, flight, keys, lost).with_traceback(error.__traceback__)
        return retry


def _keys(
    texts: Sequence[str], model: str, model_version: str | None, dimension: int | None
) -> list[Key]:
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise InputError(
            "texts must be a list of str (wrap a single text in a list)", field="texts"
        )
    return [
        (model, model_version, dimension, check_text(text, field="texts", index=i))
        for i, text in enumerate(texts)
    ]


def _entries_of(result: EmbeddingResult, count: int, *, complete: bool) -> list[PairEntry | None]:
    """One entry per position of the sent texts, from ``result.input_indices``."""
    problem = "the provider did not return one dense and one sparse vector per text"
    if result.sparse is None or len(result.sparse) != len(result) or not result.dense:
        raise ResponseFormatError(problem)
    dense = result.embeddings
    entries: list[PairEntry | None] = [None] * count
    for row, position in enumerate(result.input_indices.tolist()):
        if not 0 <= position < count or entries[position] is not None:
            raise ResponseFormatError(problem)
        vector = np.array(dense[row], copy=True)
        vector.setflags(write=False)
        entries[position] = PairEntry(vector, result.sparse[row])
    if complete and any(entry is None for entry in entries):
        raise ResponseFormatError(problem)
    return entries


def _adopted_outcome(
    flight: _Flight, other: _Flight, entries: list[PairEntry | None], error: BaseException | None
) -> _FlightOutcome:
    """The outcome of ``other`` (taken over) from that of ``flight``, which sent its
    texts: entries and error indices moved to positions in ``other``'s texts."""
    mine = [entries[flight.positions[key]] for key in other.keys]
    if error is None:
        return _FlightOutcome(mine, None)
    lost = {key for key, entry in zip(other.keys, mine, strict=True) if entry is None}
    return _FlightOutcome(mine, _for_caller(error, flight, other.keys, lost))


def _not_ours(error: BaseException | None, flight: _Flight, mine: set[Key]) -> bool:
    """Whether a waiter should fetch again rather than fail: the fetch's own caller was
    cancelled or interrupted, or refused another caller's input before sending."""
    if not isinstance(error, Exception):
        return True
    if isinstance(error, InputError) and error.index is not None:
        return not 0 <= error.index < len(flight.keys) or flight.keys[error.index] not in mine
    return False


def _for_caller(
    error: BaseException, flight: _Flight, keys: list[Key], lost: set[Key]
) -> BaseException:
    """``error`` with its indices (positions in the flight's texts) moved to positions in
    the caller's ``keys``; ``partial_result`` dropped (see the module docstring)."""
    if not isinstance(error, MMEmbedError):
        return error
    positions: dict[Key, list[int]] = {}
    for i, key in enumerate(keys):
        positions.setdefault(key, []).append(i)

    def callers(sent: Sequence[int]) -> tuple[int, ...]:
        picked = {
            i for s in sent if 0 <= s < len(flight.keys) for i in positions.get(flight.keys[s], ())
        }
        return tuple(sorted(picked))

    mapped = copy.copy(error)
    mapped.input_indices = callers(error.input_indices)
    mapped.failed_indices = tuple(sorted(i for key in lost for i in positions.get(key, ())))
    mapped.partial_result = None
    if isinstance(mapped, InputError) and isinstance(error, InputError) and error.index is not None:
        index = callers([error.index])
        mapped.index = index[0] if index else None
        mapped.field = "texts"
        mapped.input_indices = index[:1]
        location = f"{error.field or ''}[{error.index}]"
        if mapped.index is not None and error.message.startswith(location):
            mapped.message = f"texts[{mapped.index}]" + error.message[len(location) :]
            mapped.args = (mapped.message,)
    return mapped


def _fetch_both(client: VikingClient, texts: list[str], request: PairRequest) -> EmbeddingResult:
    return client.embed(texts, **request, return_dense=True, return_sparse=True)


def fetch_pairs(
    client: VikingClient,
    texts: Sequence[str],
    *,
    model: str,
    model_version: str | None = None,
    dimension: int | None = None,
) -> EmbeddingResult:
    """Both vectors of ``texts`` in one request per batch, nothing held: for callers that
    need both kinds at the same moment (hybrid store indexing), where no second asker
    will come. The result has one dense row and one sparse vector per text, in order."""
    request = PairRequest(model=model, model_version=model_version, dimension=dimension)
    result = _fetch_both(client, list(texts), request)
    if result.sparse is None or len(result.sparse) != len(result):
        raise ResponseFormatError(
            "the provider did not return one dense and one sparse vector per text"
        )
    return result
