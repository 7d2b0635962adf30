"""Acceptance 3: tokens-per-minute and images-per-second budgets, across threads and tasks."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any

import pytest

from mm_embed import ImageItem
from mm_embed.protocol.viking import estimate_tokens
from mm_embed.ratelimit import RateLimiter

from .conftest import FakeViking, build_viking, png_bytes, viking_tokens


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# --------------------------------------------------------------------------- unit


def test_bucket_starts_full_then_meters() -> None:
    clock = FakeClock()
    limiter = RateLimiter(10, 20, clock=clock)
    assert limiter.reserve(20) == 0.0
    assert limiter.reserve(5) == pytest.approx(0.5)
    # Reservations queue: the next caller waits behind the previous one.
    assert limiter.reserve(5) == pytest.approx(1.0)
    clock.advance(1.0)
    assert limiter.reserve(10) == pytest.approx(1.0)
    assert limiter.consumed == pytest.approx(40)


def test_idle_refill_is_capped_at_burst() -> None:
    clock = FakeClock()
    limiter = RateLimiter(10, 20, clock=clock)
    limiter.reserve(20)
    clock.advance(3600)
    assert limiter.reserve(20) == 0.0
    assert limiter.reserve(1) == pytest.approx(0.1)


def test_burst_defaults_to_one_second_and_per_minute_to_two() -> None:
    assert RateLimiter(15).burst == 15
    limiter = RateLimiter.per_minute(120_000)
    assert limiter.rate == pytest.approx(2000)
    assert limiter.burst == pytest.approx(4000)


@pytest.mark.parametrize("rate", [0, -1])
def test_rate_must_be_positive(rate: float) -> None:
    with pytest.raises(ValueError, match="rate"):
        RateLimiter(rate)


def test_adjust_charges_and_refunds() -> None:
    clock = FakeClock()
    limiter = RateLimiter(10, 20, clock=clock)
    assert limiter.reserve(20) == 0.0
    limiter.adjust(10)  # the reply said 30 tokens, not 20
    assert limiter.reserve(0) == pytest.approx(1.0)
    limiter.adjust(-30)  # nothing was used after all
    assert limiter.reserve(10) == 0.0
    # A refund never lifts the balance above the burst.
    limiter.adjust(-1000)
    assert limiter.reserve(20) == 0.0
    assert limiter.reserve(1) == pytest.approx(0.1)
    assert limiter.consumed == pytest.approx(20 + 10 - 30 + 10 - 1000 + 20 + 1)


def test_acquire_goes_early_when_a_refund_arrives_while_it_sleeps() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=10.0, burst=10.0, clock=clock)
    limiter.reserve(10.0)  # the bucket is empty
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds)
        if len(slept) == 1:
            limiter.adjust(-10.0)  # an earlier call used 10 units less than estimated

    limiter.acquire(10.0, sleep=sleep, recheck=0.05)
    # Without the refund it would have waited 1 s; one recheck step is all it took.
    assert slept == [0.05]
    assert limiter.reserve(0.0) == 0.0


def test_acquire_waits_its_turn_without_refunds() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=10.0, burst=10.0, clock=clock)
    limiter.reserve(10.0)
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds)

    limiter.acquire(5.0, sleep=sleep, recheck=0.2)
    assert sum(slept) == pytest.approx(0.5)
    assert max(slept) <= 0.2


def test_reservations_are_thread_safe() -> None:
    clock = FakeClock()
    limiter = RateLimiter(1, 1, clock=clock)
    waits: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(200):
            wait = limiter.reserve(1)
            with lock:
                waits.append(wait)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert limiter.consumed == 1600
    # Every unit got its own slot: waits are exactly 0, 1, 2, ... 1599 seconds.
    assert sorted(waits) == [float(i) for i in range(1600)]


# --------------------------------------------------------------------------- clients


def sliding_max(stamps: Sequence[tuple[float, float]], window: float) -> float:
    """The largest total of amounts whose timestamps fall in any ``window`` seconds."""
    stamps = sorted(stamps)
    best, total, left = 0.0, 0.0, 0
    for t, amount in stamps:
        total += amount
        while stamps[left][0] < t - window:
            total -= stamps[left][1]
            left += 1
        best = max(best, total)
    return best


def _token_stamps(provider: FakeViking) -> list[tuple[float, float]]:
    return [(s.at, float(sum(viking_tokens(i) for i in s.body["data"]))) for s in provider.seen]


def _image_stamps(provider: FakeViking) -> list[tuple[float, float]]:
    return [(s.at, float(sum("image" in i for i in s.body["data"]))) for s in provider.seen]


TEXT = "budget probe text with several words in it "  # 10 tokens billed, 16 estimated
TPM = 30_000  # 500 tokens/s, 1000-token burst


async def _run_workers(kind: str, twin: Any, jobs: list[list[Any]], **embed: Any) -> list[Any]:
    if kind == "async":
        return list(await asyncio.gather(*(twin.embed(job, **embed) for job in jobs)))
    results: list[Any] = [None] * len(jobs)

    def work(k: int) -> None:
        results[k] = twin.client.embed(jobs[k], **embed)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert all(r is not None for r in results)
    return results


async def test_tokens_per_minute_budget(kind: str) -> None:
    provider = FakeViking()
    twin = build_viking(kind, provider, tokens_per_minute=TPM, max_concurrency=2)
    rate, burst = TPM / 60, 2 * TPM / 60
    # 6 workers x 20 single-text calls, ~1540 tokens in all, far over the 1000 burst.
    jobs = [[f"{TEXT}{w}-{k}"] for w in range(6) for k in range(20)]
    loop = asyncio.get_running_loop()
    start = loop.time()
    await _run_workers(kind, twin, jobs, model="bge-m3")
    elapsed = loop.time() - start
    stamps = _token_stamps(provider)
    total = sum(a for _, a in stamps)
    largest = max(a for _, a in stamps)
    assert total > burst
    # Throttled: what goes beyond the burst takes its time at the budget's rate ...
    assert elapsed >= (total - burst) / rate * 0.8
    # ... and no window ever holds more than its share of the budget plus one burst.
    for window in (0.1, 0.25, 0.5):
        assert sliding_max(stamps, window) <= burst + rate * window + largest
    # Estimates were corrected with the usage the replies stated.
    limiter = twin.client.token_limiter("bge-m3")
    assert limiter.consumed == pytest.approx(total)
    assert sum(estimate_tokens(j[0]) for j in jobs) > total


async def test_tokens_budget_is_per_model(kind: str) -> None:
    twin = build_viking(kind, FakeViking(), tokens_per_minute=600)
    await twin.embed(["a b c"], model="bge-m3")
    await twin.embed(["a b c"], model="bge-large-zh")
    a, b = twin.client.token_limiter("bge-m3"), twin.client.token_limiter("bge-large-zh")
    assert a is not b and a is twin.client.token_limiter("bge-m3")


async def test_usage_above_estimate_slows_the_next_call(kind: str) -> None:
    # 100 tokens/s, 200-token burst. The reply bills 250 tokens for a call estimated at 16:
    # only the corrected charge makes the next call wait, about (250 - 200) / 100 s.
    provider = FakeViking(usage_scale=25)
    twin = build_viking(kind, provider, tokens_per_minute=6000)
    billed = viking_tokens({"text": TEXT}) * 25
    assert estimate_tokens(TEXT) < 200 < billed
    loop = asyncio.get_running_loop()
    await twin.embed([TEXT], model="bge-m3")
    limiter = twin.client.token_limiter("bge-m3")
    assert limiter.consumed == pytest.approx(billed)
    start = loop.time()
    await twin.embed(["x"], model="bge-m3")
    expected = (billed - 200) / 100
    assert loop.time() - start >= expected * 0.8
    assert provider.seen[1].at - provider.seen[0].at >= expected * 0.8


async def test_refused_call_gives_its_tokens_back(kind: str) -> None:
    from .conftest import json_response

    provider = FakeViking(
        fault=lambda n, body, req: json_response(400, {"code": 1000003, "message": "bad"})
    )
    twin = build_viking(kind, provider, tokens_per_minute=6000)
    with pytest.raises(Exception, match="bad"):
        await twin.embed([TEXT], model="bge-m3")
    assert twin.client.token_limiter("bge-m3").consumed == 0


def test_one_budget_per_model_even_when_threads_start_together(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import time

    twin = build_viking("sync", FakeViking(), tokens_per_minute=6000)
    original = RateLimiter.per_minute.__func__  # type: ignore[attr-defined]

    def slow(cls: type[RateLimiter], amount: float, /, **kwargs: Any) -> RateLimiter:
        time.sleep(0.05)  # widen the window between "is there one?" and "store it"
        return original(cls, amount, **kwargs)  # type: ignore[no-any-return]

    monkeypatch.setattr(RateLimiter, "per_minute", classmethod(slow))
    found: list[Any] = []
    threads = [
        threading.Thread(target=lambda: found.append(twin.client.token_limiter("bge-m3")))
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert len(found) == 4
    assert all(f is found[0] for f in found)


async def test_images_per_second_budget(kind: str) -> None:
    ips = 20
    provider = FakeViking()
    twin = build_viking(kind, provider, images_per_second=ips, max_concurrency=3)
    image = png_bytes(3, 3)
    jobs = [[ImageItem(image)] for _ in range(44)]
    loop = asyncio.get_running_loop()
    start = loop.time()
    await _run_workers(kind, twin, jobs, model="bge-visualized-m3")
    elapsed = loop.time() - start
    stamps = _image_stamps(provider)
    assert sum(a for _, a in stamps) == 44
    assert elapsed >= (44 - ips) / ips * 0.8
    for window in (0.25, 0.5, 1.0):
        assert sliding_max(stamps, window) <= ips + ips * window + 1


async def test_one_call_never_carries_more_images_than_a_second_allows(kind: str) -> None:
    ips = 20
    provider = FakeViking()
    twin = build_viking(kind, provider, images_per_second=ips, max_concurrency=4)
    inputs = [ImageItem(png_bytes(3 + i % 5, 3)) for i in range(50)] + ["text only"]
    result = await twin.embed(inputs, model="bge-visualized-m3")
    assert len(result) == 51
    stamps = _image_stamps(provider)
    assert max(a for _, a in stamps) <= ips
    for window in (0.5, 1.0):
        assert sliding_max(stamps, window) <= ips + ips * window
