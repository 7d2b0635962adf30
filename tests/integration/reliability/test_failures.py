"""Failures that retrying cannot fix: the error names the failed inputs, the inputs that
did succeed come back in ``partial_result``, and resending ``failed_indices`` finishes
the job with exactly the vectors an unbroken run gives. Nothing is silently dropped.

The recipe these tests prove (also in README.md, "Reliability and security")::

    try:
        result = client.embed_texts(texts)
    except MMEmbedError as error:
        done = error.partial_result             # rows for error.partial_result.input_indices
        rest = client.embed_texts([texts[i] for i in error.failed_indices])
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import numpy as np
import pytest

from mm_embed import (
    AuthenticationError,
    BadRequestError,
    EmbeddingResult,
    InternalServerError,
    MMEmbedError,
    NotFoundError,
    RateLimitError,
)
from mm_embed.emulator import Emulator
from mm_embed.retry import RetryPolicy
from tests.integration._helpers import Caller, fg_client, same_result, viking_client, wait_for

TEXTS = [f"failure test text {i}: blue square near a river" for i in range(50)]
HUGE = "word " * 300  # over FG-CLIP's 196 tokens: only the provider can tell (it counts)
BATCH = 10


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(retry_after=0) as running:
        yield running


@pytest.fixture(scope="module")
def reference(emu: Emulator) -> dict[str, EmbeddingResult]:
    with fg_client(emu) as fg, viking_client(emu) as vk:
        return {"fgclip": fg.embed_texts(TEXTS), "viking": vk.embed(TEXTS, model="bge-m3")}


NewCaller = Callable[..., Caller]


@pytest.fixture
async def new_caller(emu: Emulator, asynchronous: bool) -> AsyncIterator[NewCaller]:
    """``new_caller(route, **options)``: a client of the test's flavour (``asynchronous``,
    from its parametrization) on the module's emulator, in batches of ``BATCH`` unless
    told; closed after the test."""
    made: list[Caller] = []

    def make(route: str, **options: Any) -> Caller:
        options.setdefault("max_batch_size", BATCH)
        caller = Caller(emu, route, asynchronous, **options)
        made.append(caller)
        return caller

    yield make
    for caller in made:
        await caller.close()


def texts_with_too_long(index: int) -> list[str]:
    """:data:`TEXTS` with the one at ``index`` over FG-CLIP's token limit."""
    texts = list(TEXTS)
    texts[index] = HUGE
    return texts


def subset(result: EmbeddingResult, indices: list[int]) -> EmbeddingResult:
    """The rows of ``result`` for the given inputs, renumbered as a call on just them."""
    rows: Any = np.concatenate([result.rows_for_input(i) for i in indices]) if indices else []
    part = result.take(np.asarray(rows, dtype=np.int64))
    part.input_indices = np.searchsorted(np.asarray(indices), part.input_indices)
    return part


def check_partial(error: MMEmbedError, reference: EmbeddingResult, n: int) -> list[int]:
    """Every input is either in ``partial_result`` (with its exact vector) or in
    ``failed_indices``; never both, never neither. Returns the succeeded inputs."""
    assert error.partial_result is not None
    done = sorted({int(i) for i in error.partial_result.input_indices})
    assert set(done).isdisjoint(error.failed_indices)
    assert sorted([*done, *error.failed_indices]) == list(range(n))
    assert set(error.input_indices) <= set(error.failed_indices)
    same_result(error.partial_result, reference.take(np.asarray(done, np.int64)), "partial")
    return done


def billed(emu: Emulator) -> Counter[str]:
    return Counter(h for r in emu.log if r.embedded for h in r.item_hashes)


FLAVOURS = pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
ROUTES = pytest.mark.parametrize("route", ["fgclip", "viking"])


@FLAVOURS
async def test_bad_request_names_the_batch_and_keeps_the_rest(
    emu: Emulator, reference: dict[str, EmbeddingResult], new_caller: NewCaller
) -> None:
    texts = texts_with_too_long(23)
    emu.clear_log()
    caller = new_caller("fgclip", max_concurrency=1)
    with pytest.raises(BadRequestError) as caught:
        await caller.embed(texts)
    error = caught.value
    assert error.code == 400 and "196" in error.message
    assert error.input_indices == tuple(range(20, 30))
    assert "(inputs 20, 21, 22" in str(error)
    assert error.failed_indices == tuple(range(20, 50))  # with one worker, 30.. never started
    assert check_partial(error, reference["fgclip"], 50) == list(range(20))
    assert caller.stats.retries == 0
    assert len(emu.log) == 3  # two good batches, the refused one, nothing after it

    # Resume: fix the input and resend only what failed.
    texts[23] = TEXTS[23]
    rest = await caller.embed([texts[i] for i in error.failed_indices])
    same_result(rest, subset(reference["fgclip"], list(error.failed_indices)), "resumed")
    # Every input was embedded exactly once over the failed call and the resume.
    assert sorted(billed(emu).values()) == [1] * 50


@FLAVOURS
async def test_failure_with_calls_in_flight_loses_nothing(
    reference: dict[str, EmbeddingResult], new_caller: NewCaller
) -> None:
    """Four workers: the calls in flight when one fails still land in partial_result."""
    texts = texts_with_too_long(12)
    caller = new_caller("fgclip", max_concurrency=4, max_batch_size=5)
    with pytest.raises(BadRequestError) as caught:
        await caller.embed(texts)
    error = caught.value
    assert error.input_indices == tuple(range(10, 15))
    done = check_partial(error, reference["fgclip"], 50)
    assert 12 not in done and set(range(10, 15)) <= set(error.failed_indices)


@FLAVOURS
@ROUTES
async def test_authentication_error_is_not_retried(
    emu: Emulator, new_caller: NewCaller, route: str
) -> None:
    emu.clear_log()
    wrong = {"api_key": "not-the-key"} if route == "fgclip" else {"secret_key": "not-the-secret"}
    caller = new_caller(route, max_concurrency=1, **wrong)
    with pytest.raises(AuthenticationError) as caught:
        await caller.embed(TEXTS)
    error = caught.value
    assert error.status_code == 401
    assert error.code == (401 if route == "fgclip" else 1000001)
    assert error.input_indices == tuple(range(BATCH))
    assert error.failed_indices == tuple(range(50))
    assert error.partial_result is not None and len(error.partial_result) == 0
    assert len(emu.log) == 1 and caller.stats.retries == 0


@FLAVOURS
@ROUTES
async def test_not_found_is_not_retried(emu: Emulator, new_caller: NewCaller, route: str) -> None:
    """A wrong base URL path: HTTP 404 with a body that is not the provider's JSON."""
    caller = new_caller(route, max_concurrency=2, base_url=emu.url + "/no/such/prefix")
    with pytest.raises(NotFoundError) as caught:
        await caller.embed(TEXTS[:25])
    error = caught.value
    assert error.status_code == 404
    assert error.input_indices in {tuple(range(0, 10)), tuple(range(10, 20))}
    assert set(error.failed_indices) >= set(error.input_indices)
    assert caller.stats.retries == 0


@FLAVOURS
@ROUTES
@pytest.mark.parametrize(
    ("fault", "raised"), [("503", InternalServerError), ("429", RateLimitError)]
)
async def test_retries_exhausted_then_resume(
    emu: Emulator,
    reference: dict[str, EmbeddingResult],
    new_caller: NewCaller,
    route: str,
    fault: str,
    raised: type[MMEmbedError],
) -> None:
    emu.clear_log()
    texts = TEXTS[:30]
    caller = new_caller(route, max_concurrency=1)
    caller.client.transport.retry = RetryPolicy(max_retries=2, initial_delay=0.01, max_delay=0.02)
    # Batch 0 passes; batch 1 faults on its first try and on both retries.
    emu.queue_faults("none", fault, fault, fault)
    with pytest.raises(raised) as caught:
        await caller.embed(texts)
    error = caught.value
    assert error.input_indices == tuple(range(10, 20))
    assert error.failed_indices == tuple(range(10, 30))
    if route == "viking" and fault == "429":
        assert getattr(error, "code", None) == 1000029
    want = subset(reference[route], list(range(30)))
    assert check_partial(error, want, 30) == list(range(10))
    assert (caller.stats.requests, caller.stats.retries, caller.stats.failures) == (4, 2, 1)
    assert wait_for(lambda: len(emu.log) == 4)

    rest = await caller.embed([texts[i] for i in error.failed_indices])
    same_result(rest, subset(want, list(error.failed_indices)), "resumed")
    # Faulted attempts embed nothing: each input was billed exactly once in all.
    assert sorted(billed(emu).values()) == [1] * 30
