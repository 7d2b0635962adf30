"""DenseSparsePairing: one provider request per text for both vectors, shared by every
asker (cache, expiry, LRU bound, coalescing across threads and tasks, caller-index errors).

Pure unit tests with fake fetch functions, plus the real core client behind
``httpx.MockTransport`` for an error that comes out of the batching layer.
"""

from __future__ import annotations

import asyncio
import copy
import pickle
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from mm_embed import EmbeddingResult, SparseVector
from mm_embed.errors import (
    BadRequestError,
    ConfigurationError,
    InputError,
    ResponseFormatError,
)
from mm_embed.pairing import DenseSparsePairing, PairEntry
from tests.unit._helpers import FakeViking, build_viking, fp, json_response

MODEL: dict[str, Any] = {"model": "bge-m3"}
WAIT = 5.0  # seconds: the bound on every wait in these tests


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def result_for(texts: list[str], call: int) -> EmbeddingResult:
    """Both vectors: dense ``[fp(text), call]``, sparse ``{text: 1}``."""
    return EmbeddingResult(
        dense={"float": np.array([[fp(t), float(call)] for t in texts], dtype=np.float32)},
        sparse=[SparseVector({t: 1.0}) for t in texts],
        input_indices=np.arange(len(texts), dtype=np.int64),
    )


class Provider:
    """A fetch function recording its calls; ``gate`` (when set) holds each call until
    it is set, ``fail`` (when set) is raised instead of answering."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.calls: list[list[str]] = []
        self.started = threading.Event()
        self.gate = gate
        self.fail: BaseException | None = None
        self._lock = threading.Lock()

    def __call__(self, texts: list[str]) -> EmbeddingResult:
        with self._lock:
            self.calls.append(list(texts))
            call = len(self.calls)
        self.started.set()
        if self.gate is not None:
            assert self.gate.wait(WAIT), "the test never released the fetch"
        if self.fail is not None:
            raise self.fail
        return result_for(texts, call)


class AsyncProvider:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.started = asyncio.Event()
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail: BaseException | None = None

    async def __call__(self, texts: list[str]) -> EmbeddingResult:
        self.calls.append(list(texts))
        call = len(self.calls)
        self.started.set()
        await asyncio.wait_for(self.gate.wait(), WAIT)
        if self.fail is not None:
            raise self.fail
        return result_for(texts, call)


def text_of(entry: PairEntry) -> str:
    (token,) = entry.sparse.weights
    assert entry.dense[0] == fp(token)
    return token


async def until(condition: Callable[[], bool]) -> None:
    """Yield to the loop (and to worker threads) until ``condition`` holds, bounded."""
    for _ in range(int(WAIT / 0.002)):
        if condition():
            return
        await asyncio.sleep(0.002)
    raise AssertionError("condition not reached in time")


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.002)


# --------------------------------------------------------------------------- caching


def test_one_fetch_per_text_in_caller_order() -> None:
    cache, provider = DenseSparsePairing(), Provider()
    entries = cache.get_or_fetch(["b", "a", "b", "c"], provider, **MODEL)
    assert provider.calls == [["b", "a", "c"]]  # de-duplicated, one call
    assert [text_of(e) for e in entries] == ["b", "a", "b", "c"]
    assert entries[0] is entries[2]
    assert entries[1].dense_list() == [fp("a"), 1.0]
    with pytest.raises(ValueError, match="read-only"):
        entries[0].dense[0] = 0.0  # shared by every caller: nobody may change it
    assert (cache.reused, cache.coalesced, cache.fetched) == (0, 0, 3)


def test_held_texts_are_reused_and_only_new_ones_fetched() -> None:
    cache, provider = DenseSparsePairing(), Provider()
    cache.get_or_fetch(["a", "b"], provider, **MODEL)
    entries = cache.get_or_fetch(["b", "x", "a"], provider, **MODEL)
    assert provider.calls == [["a", "b"], ["x"]]
    assert [e.dense_list()[1] for e in entries] == [1.0, 2.0, 1.0]
    assert cache.get_or_fetch(["a", "a"], provider, **MODEL)[0].dense_list() == [fp("a"), 1.0]
    assert len(provider.calls) == 2  # both halves stay: a repeated ask costs nothing
    assert (cache.reused, cache.fetched) == (3, 3)
    assert cache.get_or_fetch([], provider, **MODEL) == []
    assert len(provider.calls) == 2


def test_keys_hold_model_version_and_dimension() -> None:
    cache, provider = DenseSparsePairing(), Provider()
    cache.get_or_fetch(["a"], provider, model="bge-m3")
    cache.get_or_fetch(["a"], provider, model="bge-m3", model_version="v2")
    cache.get_or_fetch(["a"], provider, model="bge-m3", dimension=512)
    cache.get_or_fetch(["a"], provider, model="doubao-embedding-and-m3")
    cache.get_or_fetch(["a"], provider, model="bge-m3", dimension=512)
    assert len(provider.calls) == 4 and len(cache) == 4


def test_entries_expire_after_ttl() -> None:
    clock, provider = Clock(), Provider()
    cache = DenseSparsePairing(ttl_seconds=10, clock=clock)
    cache.get_or_fetch(["a"], provider, **MODEL)
    clock.now += 9.99
    cache.get_or_fetch(["a"], provider, **MODEL)
    assert len(provider.calls) == 1
    clock.now += 0.01  # 10 s after arrival: expired (use does not extend it)
    assert cache.get_or_fetch(["a"], provider, **MODEL)[0].dense_list()[1] == 2.0
    assert len(provider.calls) == 2


def test_least_recently_used_go_first() -> None:
    clock, provider = Clock(), Provider()
    cache = DenseSparsePairing(max_entries=2, clock=clock)
    cache.get_or_fetch(["a", "b"], provider, **MODEL)
    cache.get_or_fetch(["a"], provider, **MODEL)  # "a" used again: "b" is now the oldest
    cache.get_or_fetch(["c"], provider, **MODEL)
    assert len(cache) == 2
    cache.get_or_fetch(["a", "c"], provider, **MODEL)
    assert len(provider.calls) == 2
    cache.get_or_fetch(["b"], provider, **MODEL)
    assert provider.calls[-1] == ["b"]
    # A call larger than the cache still gets every vector; the cache keeps the last.
    entries = cache.get_or_fetch(["p", "q", "r", "s"], provider, **MODEL)
    assert [text_of(e) for e in entries] == ["p", "q", "r", "s"] and len(cache) == 2


def test_expired_entries_are_purged_before_live_ones_are_evicted() -> None:
    clock, provider = Clock(), Provider()
    cache = DenseSparsePairing(ttl_seconds=5, max_entries=2, clock=clock)
    cache.get_or_fetch(["old"], provider, **MODEL)
    clock.now += 3
    cache.get_or_fetch(["live"], provider, **MODEL)
    cache.get_or_fetch(["old"], provider, **MODEL)  # refresh "old" in LRU order only
    clock.now += 3  # "old" expired (6 s), "live" not (3 s)
    cache.get_or_fetch(["new"], provider, **MODEL)
    cache.get_or_fetch(["live"], provider, **MODEL)
    assert provider.calls == [["old"], ["live"], ["new"]]


def test_bad_texts_fail_before_anything_is_sent() -> None:
    cache, provider = DenseSparsePairing(), Provider()
    with pytest.raises(InputError, match=r"texts\[2\]: text is empty") as info:
        cache.get_or_fetch(["a", "b", " "], provider, **MODEL)
    assert info.value.index == 2 and info.value.field == "texts"
    with pytest.raises(InputError, match=r"texts\[0\]: expected a str, got int"):
        cache.get_or_fetch([7], provider, **MODEL)  # type: ignore[list-item]
    with pytest.raises(InputError, match="wrap a single text in a list"):
        cache.get_or_fetch("abc", provider, **MODEL)
    assert provider.calls == []


def test_settings_are_checked() -> None:
    for ttl in (0, -1.0, float("nan"), True, "60"):
        with pytest.raises(ConfigurationError, match="ttl_seconds"):
            DenseSparsePairing(ttl_seconds=ttl)  # type: ignore[arg-type]
    for size in (0, -3, 1.5, True):
        with pytest.raises(ConfigurationError, match="max_entries"):
            DenseSparsePairing(max_entries=size)  # type: ignore[arg-type]


def test_pickles_and_copies_are_empty_with_the_same_limits() -> None:
    cache = DenseSparsePairing(ttl_seconds=7, max_entries=3)
    cache.get_or_fetch(["a"], Provider(), **MODEL)
    for twin in (pickle.loads(pickle.dumps(cache)), copy.deepcopy(cache), copy.copy(cache)):
        assert (twin.ttl_seconds, twin.max_entries, len(twin)) == (7.0, 3, 0)
        assert twin.get_or_fetch(["a"], Provider(), **MODEL)[0].dense_list()[0] == fp("a")
    assert len(cache) == 1 and "entries=1" in repr(cache)


def test_a_reply_without_both_vectors_is_an_error_and_nothing_is_kept() -> None:
    cache = DenseSparsePairing()

    def dense_only(texts: list[str]) -> EmbeddingResult:
        good = result_for(texts, 1)
        return EmbeddingResult(dense=good.dense, input_indices=good.input_indices)

    def short(texts: list[str]) -> EmbeddingResult:
        return result_for(texts[:-1], 1)

    for fetch in (dense_only, short):
        with pytest.raises(ResponseFormatError, match="one dense and one sparse vector"):
            cache.get_or_fetch(["a", "b"], fetch, **MODEL)
    assert len(cache) == 0
    assert len(cache.get_or_fetch(["a", "b"], Provider(), **MODEL)) == 2  # not stuck in flight


# --------------------------------------------------------------------------- coalescing


def test_threads_asking_for_texts_in_flight_wait_for_one_fetch() -> None:
    gate = threading.Event()
    cache, provider = DenseSparsePairing(), Provider(gate)
    got: dict[str, list[PairEntry]] = {}

    def ask(name: str, texts: list[str]) -> None:
        got[name] = cache.get_or_fetch(texts, provider, **MODEL)

    first = threading.Thread(target=ask, args=("first", ["q", "r"]))
    first.start()
    assert provider.started.wait(WAIT)
    same = threading.Thread(target=ask, args=("same", ["r", "q"]))
    more = threading.Thread(target=ask, args=("more", ["q", "s"]))
    same.start()
    more.start()
    wait_until(lambda: cache.coalesced == 3 and len(provider.calls) == 2)
    gate.set()
    for thread in (first, same, more):
        thread.join(WAIT)
        assert not thread.is_alive()
    # One fetch for q and r, however many threads asked; s (new) in its own.
    assert provider.calls == [["q", "r"], ["s"]]
    assert [text_of(e) for e in got["same"]] == ["r", "q"]
    assert got["same"][1] is got["first"][0] is got["more"][0]
    assert (cache.reused, cache.coalesced, cache.fetched) == (0, 3, 3)


async def test_tasks_asking_for_texts_in_flight_await_one_fetch() -> None:
    cache, provider = DenseSparsePairing(), AsyncProvider()
    provider.gate.clear()
    first = asyncio.create_task(cache.aget_or_fetch(["q", "r"], provider, **MODEL))
    await asyncio.wait_for(provider.started.wait(), WAIT)
    others = [
        asyncio.create_task(cache.aget_or_fetch(["r", "q"], provider, **MODEL)) for _ in range(5)
    ]
    await asyncio.sleep(0.01)
    provider.gate.set()
    results = await asyncio.wait_for(asyncio.gather(first, *others), WAIT)
    assert provider.calls == [["q", "r"]]
    assert all([text_of(e) for e in r] == ["r", "q"] for r in results[1:])
    assert cache.coalesced == 10


async def test_a_thread_and_a_task_share_one_fetch() -> None:
    # Task first, then a blocking call in a worker thread.
    cache, provider = DenseSparsePairing(), AsyncProvider()
    provider.gate.clear()
    sync_calls: list[list[str]] = []

    def sync_fetch(texts: list[str]) -> EmbeddingResult:
        sync_calls.append(texts)
        return result_for(texts, 99)

    task = asyncio.create_task(cache.aget_or_fetch(["t"], provider, **MODEL))
    await asyncio.wait_for(provider.started.wait(), WAIT)
    worker = asyncio.create_task(asyncio.to_thread(cache.get_or_fetch, ["t"], sync_fetch, **MODEL))
    await until(lambda: cache.coalesced >= 1)
    provider.gate.set()
    by_task, by_thread = await asyncio.wait_for(asyncio.gather(task, worker), WAIT)
    assert by_task[0] is by_thread[0] and provider.calls == [["t"]] and sync_calls == []

    # A blocking call in a worker thread first, then a task.
    gate = threading.Event()
    blocking = Provider(gate)
    worker = asyncio.create_task(asyncio.to_thread(cache.get_or_fetch, ["u"], blocking, **MODEL))
    await until(blocking.started.is_set)
    waiting = asyncio.create_task(cache.aget_or_fetch(["u"], provider, **MODEL))
    await until(lambda: cache.coalesced >= 2)
    gate.set()
    by_thread, by_task = await asyncio.wait_for(asyncio.gather(worker, waiting), WAIT)
    assert by_task[0] is by_thread[0] and blocking.calls == [["u"]]
    assert provider.calls == [["t"]]


async def test_a_blocking_call_on_the_loop_thread_fetches_itself_instead_of_deadlocking() -> None:
    cache, provider = DenseSparsePairing(), AsyncProvider()
    provider.gate.clear()
    task = asyncio.create_task(cache.aget_or_fetch(["q"], provider, **MODEL))
    await asyncio.wait_for(provider.started.wait(), WAIT)
    blocking = Provider()
    # The task cannot run while this thread blocks, so waiting for it would hang.
    assert text_of(cache.get_or_fetch(["q"], blocking, **MODEL)[0]) == "q"
    assert blocking.calls == [["q"]]
    provider.gate.set()
    assert text_of((await asyncio.wait_for(task, WAIT))[0]) == "q"


async def test_a_blocking_call_on_the_loop_thread_takes_over_a_fetch_not_yet_sent() -> None:
    # LlamaIndex's Qdrant store calls its sparse function synchronously inside aquery,
    # while the dense retriever's task (started alongside) embeds the same query.
    cache, provider, blocking = DenseSparsePairing(), AsyncProvider(), Provider()
    got: list[list[PairEntry]] = []

    async def sparse_side() -> None:
        got.append(cache.get_or_fetch(["r", "q"], blocking, **MODEL))

    dense_side = cache.aget_or_fetch(["q", "p"], provider, **MODEL)
    by_task, _ = await asyncio.wait_for(asyncio.gather(dense_side, sparse_side()), WAIT)
    assert blocking.calls == [["r", "q", "p"]] and provider.calls == []  # one request
    assert (cache.fetched, cache.coalesced) == (3, 2)  # the task's two came with it
    assert [text_of(e) for e in by_task] == ["q", "p"]
    assert by_task[0] is got[0][1]
    assert len(cache.get_or_fetch(["p", "q", "r"], blocking, **MODEL)) == 3
    assert len(blocking.calls) == 1


async def test_errors_of_a_fetch_taken_over_reach_the_task_with_its_indices() -> None:
    cache, provider, blocking = DenseSparsePairing(), AsyncProvider(), Provider()
    # Sent by the blocking call: ["c", "b", "x", "a"]; the provider refuses "a" (position 3).
    blocking.fail = BadRequestError("refused", status_code=400, input_indices=[3])
    errors: list[BadRequestError] = []

    async def sparse_side() -> None:
        try:
            cache.get_or_fetch(["c", "b"], blocking, **MODEL)
        except BadRequestError as exc:
            errors.append(exc)

    dense_side = cache.aget_or_fetch(["x", "a", "b"], provider, **MODEL)
    results = await asyncio.wait_for(
        asyncio.gather(dense_side, sparse_side(), return_exceptions=True), WAIT
    )
    assert blocking.calls == [["c", "b", "x", "a"]] and provider.calls == []
    (blocking_error,) = errors
    assert (blocking_error.input_indices, blocking_error.failed_indices) == ((), (0, 1))
    task_error = results[0]
    assert isinstance(task_error, BadRequestError)
    assert (task_error.input_indices, task_error.failed_indices) == ((1,), (0, 1, 2))
    blocking.fail = None
    assert len(await cache.aget_or_fetch(["x", "a", "b"], provider, **MODEL)) == 3


async def test_a_waiter_whose_fetch_was_cancelled_fetches_itself() -> None:
    cache, provider = DenseSparsePairing(), AsyncProvider()
    provider.gate.clear()
    owner = asyncio.create_task(cache.aget_or_fetch(["q"], provider, **MODEL))
    await asyncio.wait_for(provider.started.wait(), WAIT)
    waiter = asyncio.create_task(cache.aget_or_fetch(["q", "z"], provider, **MODEL))
    await until(lambda: cache.coalesced >= 1)
    owner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await owner
    provider.gate.set()
    entries = await asyncio.wait_for(waiter, WAIT)
    assert [text_of(e) for e in entries] == ["q", "z"]
    assert provider.calls == [["q"], ["z"], ["q"]]


async def test_a_cancelled_waiter_does_not_cancel_the_fetch() -> None:
    cache, provider = DenseSparsePairing(), AsyncProvider()
    provider.gate.clear()
    owner = asyncio.create_task(cache.aget_or_fetch(["q"], provider, **MODEL))
    await asyncio.wait_for(provider.started.wait(), WAIT)
    waiter = asyncio.create_task(cache.aget_or_fetch(["q"], provider, **MODEL))
    await until(lambda: cache.coalesced >= 1)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    provider.gate.set()
    assert text_of((await asyncio.wait_for(owner, WAIT))[0]) == "q"
    assert text_of((await cache.aget_or_fetch(["q"], provider, **MODEL))[0]) == "q"
    assert provider.calls == [["q"]]


def test_many_threads_and_tasks_send_each_text_once() -> None:
    """Blocking callers on 4 threads and 8 tasks on 2 event loops ask for random,
    overlapping lists (with repeats) while fetches are slow: every text reaches the
    provider exactly once, and every caller gets its own texts in its own order."""
    cache = DenseSparsePairing(ttl_seconds=3600)
    texts = [f"t{i}" for i in range(60)]
    sent: list[str] = []
    lock = threading.Lock()
    problems: list[str] = []

    def record(batch: list[str]) -> EmbeddingResult:
        with lock:
            sent.extend(batch)
        return result_for(batch, 0)

    def fetch(batch: list[str]) -> EmbeddingResult:
        time.sleep(0.003)
        return record(batch)

    async def afetch(batch: list[str]) -> EmbeddingResult:
        await asyncio.sleep(0.003)
        return record(batch)

    def check(asked: list[str], entries: list[PairEntry]) -> None:
        if [text_of(e) for e in entries] != asked:
            problems.append(f"wrong vectors for {asked}")

    def blocking_caller(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(15):
            asked = rng.sample(texts, 6) * 2
            check(asked, cache.get_or_fetch(asked, fetch, **MODEL))

    async def task_caller(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(15):
            asked = rng.sample(texts, 6)
            check(asked, await cache.aget_or_fetch(asked, afetch, **MODEL))

    async def tasks(first: int) -> None:
        await asyncio.gather(*(task_caller(first + i) for i in range(4)))

    workers = [threading.Thread(target=blocking_caller, args=(i,)) for i in range(4)]
    workers += [threading.Thread(target=asyncio.run, args=(tasks(10 * k),)) for k in (1, 2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(WAIT * 2)
        assert not worker.is_alive()
    assert problems == []
    assert sorted(sent) == sorted(set(sent))  # no text sent twice
    assert cache.fetched == len(sent) and len(cache) == len(sent)
    assert cache.reused + cache.coalesced > 0


# --------------------------------------------------------------------------- errors


def test_errors_name_the_callers_indices_and_later_calls_retry() -> None:
    cache, provider = DenseSparsePairing(), Provider()
    cache.get_or_fetch(["y"], provider, **MODEL)
    provider.fail = BadRequestError("refused", status_code=400, input_indices=[1])
    with pytest.raises(BadRequestError) as info:
        # Sent: ["x", "z"]; the provider refused position 1 of that list ("z").
        cache.get_or_fetch(["y", "x", "y", "z", "x"], provider, **MODEL)
    error = info.value
    assert provider.calls[-1] == ["x", "z"]
    assert error.input_indices == (3,)
    assert error.failed_indices == (1, 3, 4)
    assert error.partial_result is None
    assert "(inputs 3)" in str(error)
    provider.fail = None
    entries = cache.get_or_fetch(["z", "x"], provider, **MODEL)  # nothing left in flight
    assert [text_of(e) for e in entries] == ["z", "x"] and provider.calls[-1] == ["z", "x"]


def test_other_exceptions_propagate_unchanged() -> None:
    cache, provider = DenseSparsePairing(), Provider()
    provider.fail = RuntimeError("boom")
    with pytest.raises(RuntimeError, match="boom"):
        cache.get_or_fetch(["a"], provider, **MODEL)
    provider.fail = None
    assert len(cache.get_or_fetch(["a"], provider, **MODEL)) == 1


def test_a_waiting_thread_gets_the_error_with_its_own_indices() -> None:
    gate = threading.Event()
    cache, provider = DenseSparsePairing(), Provider(gate)
    cache.get_or_fetch(["held"], Provider(), **MODEL)
    provider.fail = BadRequestError("refused", status_code=400, input_indices=[0, 1])
    errors: dict[str, BadRequestError] = {}

    def ask(name: str, texts: list[str]) -> None:
        try:
            cache.get_or_fetch(texts, provider, **MODEL)
        except BadRequestError as exc:
            errors[name] = exc

    owner = threading.Thread(target=ask, args=("owner", ["a", "b"]))
    owner.start()
    assert provider.started.wait(WAIT)
    waiter = threading.Thread(target=ask, args=("waiter", ["held", "b", "held"]))
    waiter.start()
    wait_until(lambda: cache.coalesced == 1)
    gate.set()
    for thread in (owner, waiter):
        thread.join(WAIT)
        assert not thread.is_alive()
    assert len(provider.calls) == 1
    assert (errors["owner"].input_indices, errors["owner"].failed_indices) == ((0, 1), (0, 1))
    # The waiter's "b" is its index 1 (it sent nothing itself).
    assert (errors["waiter"].input_indices, errors["waiter"].failed_indices) == ((1,), (1,))
    assert errors["waiter"] is not errors["owner"]


def test_an_input_error_of_another_caller_makes_the_waiter_fetch_itself() -> None:
    gate = threading.Event()
    cache, provider = DenseSparsePairing(), Provider(gate)
    # What the core client says about a text it cannot send: its position in the list.
    provider.fail = InputError("item is too large", field="inputs", index=1, limit="1 byte")
    cache.get_or_fetch(["ok"], Provider(), model="other")  # an unrelated held text
    errors: list[InputError] = []
    got: list[list[PairEntry]] = []

    def owner() -> None:
        try:
            cache.get_or_fetch(["fine", "huge"], provider, **MODEL)
        except InputError as exc:
            errors.append(exc)

    def waiter() -> None:
        got.append(cache.get_or_fetch(["fine"], Provider(), **MODEL))

    threads = [threading.Thread(target=owner), threading.Thread(target=waiter)]
    threads[0].start()
    assert provider.started.wait(WAIT)
    threads[1].start()
    wait_until(lambda: cache.coalesced == 1)
    gate.set()
    for thread in threads:
        thread.join(WAIT)
        assert not thread.is_alive()
    (error,) = errors
    assert str(error) == "texts[1]: item is too large (limit: 1 byte)"
    assert (error.index, error.field, error.input_indices) == (1, "texts", (1,))
    assert error.failed_indices == (0, 1)
    assert [text_of(e) for e in got[0]] == ["fine"]  # not failed by someone else's input


def test_caller_index_of_a_refused_input_and_duplicates() -> None:
    cache, provider = DenseSparsePairing(), Provider()
    cache.get_or_fetch(["held"], provider, **MODEL)
    provider.fail = InputError("item is too large", field="inputs", index=0)
    with pytest.raises(InputError) as info:
        cache.get_or_fetch(["held", "big", "held", "big"], provider, **MODEL)
    assert str(info.value) == "texts[1]: item is too large"
    assert info.value.failed_indices == (1, 3)


# --------------------------------------------------------------------------- real client


class FailTheT2ChunkOnce:
    def __init__(self) -> None:
        self.failed = False

    def __call__(self, number: int, body: dict[str, Any], request: Any) -> Any:
        if not self.failed and any(item.get("text") == "t2" for item in body.get("data", [])):
            self.failed = True
            return json_response(
                400, {"code": 1000003, "message": "bad item", "request_id": "vk-bad"}
            )
        return None


def test_a_failed_chunk_of_the_core_client_keeps_the_rest_and_maps_indices() -> None:
    provider = FakeViking(fault=FailTheT2ChunkOnce())
    twin = build_viking("sync", provider, max_batch_size=2)
    client = twin.client
    cache = DenseSparsePairing()

    def fetch(texts: list[str]) -> EmbeddingResult:
        return client.embed(texts, model="bge-m3", return_dense=True, return_sparse=True)  # type: ignore[no-any-return]

    cache.get_or_fetch(["h0"], fetch, **MODEL)
    caller = ["h0", "t0", "t1", "h0", "t2", "t3", "t4"]
    with pytest.raises(BadRequestError) as info:
        # Sent ["t0".."t4"] in chunks [t0 t1] [t2 t3] [t4]; the second chunk fails.
        cache.get_or_fetch(caller, fetch, **MODEL)
    error = info.value
    assert error.input_indices == (4, 5)
    assert error.failed_indices == (4, 5)
    assert error.partial_result is None
    assert error.request_id == "vk-bad"
    sent = len(provider.seen)
    # The chunks that succeeded were kept: a retry sends only the failed texts.
    entries = cache.get_or_fetch(caller, fetch, **MODEL)
    assert [e.dense[0] for e in entries] == [fp(t) for t in caller]
    assert [item["text"] for item in provider.bodies[sent]["data"]] == ["t2", "t3"]
    assert len(provider.seen) == sent + 1
    client.close()
