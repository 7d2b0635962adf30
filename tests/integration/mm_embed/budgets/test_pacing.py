"""Budget pacing found by benchmarks/ceiling.py: refunds reach callers already asleep,
and image requests leave the provider's per-second bucket room for jitter."""

from __future__ import annotations

import time
from typing import Any

import pytest

from mm_embed import ImageItem, VikingClient
from mm_embed.budgets import LocalBudget, Quota
from mm_embed.emulator import SAMPLES, sample_png
from mm_embed.emulator.tokens import count_tokens
from mm_embed.providers.viking.protocol import estimate_tokens
from tests.integration._helpers import FakeClock

Q = Quota("tokens:m", rate=10.0, capacity=10.0)


def test_a_refund_brings_every_waiting_ticket_forward() -> None:
    clock = FakeClock(100.0)
    budget = LocalBudget(clock)
    first = budget.take("a", Q, 10)
    second = budget.take("a", Q, 10)
    third = budget.take("a", Q, 10)
    assert budget.due_in(first) == 0.0
    assert budget.due_in(second) == pytest.approx(1.0)
    assert budget.due_in(third) == pytest.approx(2.0)
    budget.cancel(first)  # the first call's reply billed nothing
    assert budget.due_in(second) == 0.0
    assert budget.due_in(third) == pytest.approx(1.0)
    clock.now += 0.5
    assert budget.due_in(third) == pytest.approx(0.5)
    # The wait a caller sees on arrival is take() then due_in().
    assert budget.due_in(budget.take("a", Q, 5)) == pytest.approx(1.0)
    assert budget.state("a", Q).consumed == pytest.approx(10 + 10 + 10 - 10 + 5)


def test_a_request_larger_than_the_bucket_waits_for_a_full_bucket() -> None:
    clock = FakeClock(100.0)
    budget = LocalBudget(clock)
    budget.take("a", Q, 10)
    big = budget.take("a", Q, 25)  # more than the bucket ever holds
    after = budget.take("a", Q, 5)
    assert budget.due_in(big) == pytest.approx(1.0)  # a full bucket, not 2.5 s
    assert budget.due_in(after) == pytest.approx(3.0)  # behind all 25 units it took


def test_an_extra_charge_pushes_waiting_tickets_back() -> None:
    clock = FakeClock(100.0)
    budget = LocalBudget(clock)
    first = budget.take("a", Q, 10)
    waiting = budget.take("a", Q, 10)
    assert budget.due_in(waiting) == pytest.approx(1.0)
    budget.settle(first, 15)
    assert budget.due_in(waiting) == pytest.approx(1.5)


def _texts(n: int) -> list[str]:
    # English words: the client's estimate (a char count) is about twice the emulator's.
    return [f"pacing probe number {i} with several plain english words in it" for i in range(n)]


def test_over_estimates_do_not_hold_back_calls_already_waiting(make_emulator: Any) -> None:
    tpm = 12_000  # 200 tokens/s; both buckets hold the whole minute
    emu = make_emulator(tpm=tpm)
    texts = _texts(100)
    billed = sum(count_tokens(t) for t in texts)
    estimated = sum(estimate_tokens(t) for t in texts)
    assert estimated > 1.6 * billed
    rate, burst = tpm / 60, 0.0
    # The minute is spent, on the server and in the client's budget: everything is paced.
    spend = " ".join(f"w{i}" for i in range(tpm))
    with VikingClient(
        emu.access_key, emu.secret_key, base_url=emu.url, tokens_per_minute=None
    ) as spender:
        spender.embed([spend], model="bge-m3", return_sparse=False)
    with VikingClient(
        emu.access_key,
        emu.secret_key,
        base_url=emu.url,
        tokens_per_minute=tpm,
        max_batch_size=10,
        max_concurrency=8,
        budget=LocalBudget(),
    ) as client:
        quota = client.tokens_quota("bge-m3")
        assert quota is not None
        client.budget.adjust(client.account, quota, quota.capacity)
        start = time.monotonic()
        result = client.embed(texts, model="bge-m3", return_sparse=False)
        elapsed = time.monotonic() - start
    assert len(result) == 100
    # Paced by what the replies billed, not by what was estimated before sending: with
    # waits fixed at reservation time the 8 calls queued at the start alone took
    # (8 * estimate - burst) / rate.
    assert elapsed >= (billed - burst) / rate * 0.8
    first_eight = estimated * 8 / 10
    assert elapsed < (first_eight - burst) / rate * 0.8
    assert not [r for r in emu.log if r.code == 1000029]


def test_a_request_estimated_above_the_whole_quota_still_goes(make_emulator: Any) -> None:
    # One text estimated at more than the minute holds: it waits for a full bucket, not
    # for a balance it can never reach.
    emu = make_emulator()
    with VikingClient(
        emu.access_key,
        emu.secret_key,
        base_url=emu.url,
        tokens_per_minute=600,
        budget=LocalBudget(),
    ) as client:
        start = time.monotonic()
        client.embed([" ".join(f"w{i}" for i in range(800))], model="bge-m3")
        assert time.monotonic() - start < 5.0


def test_image_requests_carry_half_a_second_of_budget(make_emulator: Any) -> None:
    emu = make_emulator(images_per_second=6)
    pngs = [sample_png(name) for name in SAMPLES]
    images = [ImageItem(pngs[i % len(pngs)]) for i in range(15)]
    with VikingClient(
        emu.access_key, emu.secret_key, base_url=emu.url, images_per_second=6, max_retries=0
    ) as client:
        result = client.embed(images, model="bge-visualized-m3")
    assert len(result) == 15
    sent = [r for r in emu.log if r.route == "viking" and r.method == "POST"]
    assert max(r.items for r in sent) == 3
    assert all(r.code == 0 for r in sent)
