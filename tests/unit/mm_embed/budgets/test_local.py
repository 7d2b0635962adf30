"""Quota budgets: the bucket arithmetic on a fake clock (tickets in arrival order,
refunds, AIMD) and the clients' use of it across threads, tasks and client objects."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any

import pytest

from mm_embed import ImageItem, VikingClient
from mm_embed.budgets import LocalBudget, Quota, _bucket, resolve_budget
from mm_embed.errors import ConfigurationError
from mm_embed.providers.viking.protocol import estimate_tokens
from tests.unit._helpers import (
    VIKING_AK,
    VIKING_SK,
    FakeClock,
    FakeViking,
    build_viking,
    json_response,
    png_bytes,
    viking_tokens,
)

Q = Quota("tokens:m", rate=10.0, capacity=20.0)


def wait_for(budget: LocalBudget, amount: float, quota: Quota = Q) -> float:
    return budget.due_in(budget.take("acct", quota, amount))


# --------------------------------------------------------------------------- arithmetic


def test_bucket_starts_full_then_meters_in_arrival_order() -> None:
    clock = FakeClock(1000.0)
    budget = LocalBudget(clock)
    assert wait_for(budget, 20) == 0.0
    assert wait_for(budget, 5) == pytest.approx(0.5)
    # Tickets queue: the next caller waits behind the previous one.
    assert wait_for(budget, 5) == pytest.approx(1.0)
    clock.advance(1.0)
    assert wait_for(budget, 10) == pytest.approx(1.0)
    assert budget.state("acct", Q).consumed == pytest.approx(40)


def test_per_minute_quota_holds_the_whole_minute() -> None:
    quota = Quota.per_minute("tokens:x", 120_000)
    assert quota.rate == pytest.approx(2000) and quota.capacity == 120_000
    budget = LocalBudget(FakeClock(1000.0))
    assert wait_for(budget, 120_000, quota) == 0.0
    assert wait_for(budget, 2000, quota) == pytest.approx(1.0)


def test_idle_refill_is_capped_at_capacity() -> None:
    clock = FakeClock(1000.0)
    budget = LocalBudget(clock)
    wait_for(budget, 20)
    clock.advance(3600)
    assert wait_for(budget, 20) == 0.0
    assert wait_for(budget, 1) == pytest.approx(0.1)


@pytest.mark.parametrize(("rate", "capacity"), [(0, 1), (-1, 1), (1, 0), (float("nan"), 1)])
def test_quota_must_be_positive(rate: float, capacity: float) -> None:
    with pytest.raises(ValueError, match="quota"):
        Quota("q", rate, capacity)


def test_settle_charges_and_refunds() -> None:
    clock = FakeClock(1000.0)
    budget = LocalBudget(clock)
    ticket = budget.take("acct", Q, 20)
    assert budget.due_in(ticket) == 0.0
    budget.settle(ticket, 30)  # the reply said 30 units, not 20
    assert wait_for(budget, 0) == pytest.approx(1.0)
    budget.adjust("acct", Q, -30)  # nothing was used after all
    assert wait_for(budget, 10) == 0.0
    # A refund never lifts the balance above the capacity.
    budget.adjust("acct", Q, -1000)
    assert wait_for(budget, 20) == 0.0
    assert wait_for(budget, 1) == pytest.approx(0.1)


def test_a_refund_brings_a_waiting_ticket_forward() -> None:
    clock = FakeClock(1000.0)
    budget = LocalBudget(clock)
    first = budget.take("acct", Q, 20)  # empties the bucket
    waiting = budget.take("acct", Q, 10)
    assert budget.due_in(waiting) == pytest.approx(1.0)
    clock.advance(0.05)
    budget.cancel(first)  # the earlier call used nothing
    assert budget.due_in(waiting) == 0.0


def test_accounts_and_quotas_are_separate_buckets() -> None:
    budget = LocalBudget(FakeClock(1000.0))
    assert wait_for(budget, 20) == 0.0
    assert budget.due_in(budget.take("other", Q, 20)) == 0.0
    assert budget.due_in(budget.take("acct", Quota("tokens:n", 10, 20), 20)) == 0.0
    assert wait_for(budget, 10) == pytest.approx(1.0)


def test_tickets_are_thread_safe() -> None:
    budget = LocalBudget(FakeClock(1000.0))
    quota = Quota("q", 1, 1)
    waits: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(200):
            wait = budget.due_in(budget.take("acct", quota, 1))
            with lock:
                waits.append(wait)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert budget.state("acct", quota).consumed == 1600
    # Every unit got its own slot: waits are exactly 0, 1, 2, ... 1599 seconds.
    assert sorted(waits) == [float(i) for i in range(1600)]


def test_aimd_halves_once_per_cooldown_then_recovers_additively() -> None:
    clock = FakeClock(1000.0)
    budget = LocalBudget(clock)
    wait_for(budget, 20)
    assert budget.refused("acct", Q) is True
    # Refusals of requests already in flight within the cooldown count once.
    assert budget.refused("acct", Q) is False
    state = budget.state("acct", Q)
    assert state.factor == pytest.approx(_bucket.DECREASE)
    # Half the rate: 10 units now take 2 s instead of 1 s.
    assert wait_for(budget, 10) == pytest.approx(2.0, rel=0.01)
    clock.advance(_bucket.COOLDOWN_S)
    assert budget.refused("acct", Q) is True
    assert budget.state("acct", Q).factor == pytest.approx(0.25, abs=0.03)
    clock.advance(100)
    assert budget.state("acct", Q).factor == 1.0


def test_aimd_never_stops_the_quota() -> None:
    clock = FakeClock(1000.0)
    budget = LocalBudget(clock)
    for _ in range(50):
        budget.refused("acct", Q)
        clock.advance(_bucket.COOLDOWN_S)
    assert budget.state("acct", Q).factor >= _bucket.MIN_FACTOR


def test_a_refusal_drops_the_burst_for_every_holder() -> None:
    budget = LocalBudget(FakeClock(1000.0))
    budget.refused("acct", Q)
    # The bucket was full, but after a refusal nobody bursts.
    assert wait_for(budget, 5) > 0


def test_resolve_budget() -> None:
    mine = LocalBudget()
    assert resolve_budget(mine) is mine
    assert resolve_budget("memory://") is resolve_budget(None)
    with pytest.raises(ConfigurationError, match="scheme"):
        resolve_budget("ftp://x")
    with pytest.raises(ConfigurationError, match="budget URL"):
        resolve_budget("nonsense")


def test_environment_picks_the_default_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MM_EMBED_BUDGET", "memory://")
    assert resolve_budget(None) is resolve_budget("memory://")
    monkeypatch.setenv("MM_EMBED_BUDGET", "gopher://x")
    with pytest.raises(ConfigurationError, match="gopher"):
        resolve_budget(None)


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
TPM = 1_200  # 20 tokens/s; the bucket holds the whole minute (1,200 tokens)


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


def _tokens_state(twin: Any, model: str = "bge-m3") -> Any:
    client = twin.client
    quota = client.tokens_quota(model)
    return client.budget.state(client.account, quota)


async def test_tokens_per_minute_budget(kind: str) -> None:
    provider = FakeViking()
    twin = build_viking(kind, provider, tokens_per_minute=TPM, max_concurrency=2)
    rate, burst = TPM / 60, TPM
    # The burst is spent first; then 6 workers x 3 calls wait for the refill.
    await twin.embed([TEXT * 11], model="bge-m3")  # ~120 billed of 1200
    twin.client.budget.adjust(twin.client.account, twin.client.tokens_quota("bge-m3"), burst)
    jobs = [[f"{TEXT}{w}-{k}"] for w in range(6) for k in range(3)]
    loop = asyncio.get_running_loop()
    start = loop.time()
    await _run_workers(kind, twin, jobs, model="bge-m3")
    elapsed = loop.time() - start
    stamps = _token_stamps(provider)[1:]
    total = sum(a for _, a in stamps)
    # Throttled: everything after the spent burst takes its time at the budget's rate.
    assert elapsed >= (total - 120) / rate * 0.8
    for window in (0.5, 1.0):
        assert sliding_max(stamps, window) <= 120 + rate * window + max(a for _, a in stamps)
    # Estimates were corrected with the usage the replies stated.
    assert sum(estimate_tokens(j[0]) for j in jobs) > total


async def test_tokens_budget_is_per_model(kind: str) -> None:
    twin = build_viking(kind, FakeViking(), tokens_per_minute=600)
    await twin.embed(["a b c"], model="bge-m3")
    await twin.embed(["a b c d e f"], model="bge-large-zh")
    a, b = _tokens_state(twin, "bge-m3"), _tokens_state(twin, "bge-large-zh")
    assert a.consumed == viking_tokens({"text": "a b c"})
    assert b.consumed == viking_tokens({"text": "a b c d e f"})


async def test_usage_above_estimate_slows_the_next_call(kind: str) -> None:
    # 10 tokens/s, a 600-token minute. The reply bills 625 for a call estimated at 16:
    # only the corrected charge makes the next call wait, about (625 - 600) / 10 s.
    provider = FakeViking(usage_scale=62)
    twin = build_viking(kind, provider, tokens_per_minute=600)
    billed = viking_tokens({"text": TEXT}) * 62
    assert estimate_tokens(TEXT) < 600 < billed
    loop = asyncio.get_running_loop()
    await twin.embed([TEXT], model="bge-m3")
    assert _tokens_state(twin).consumed == pytest.approx(billed)
    start = loop.time()
    await twin.embed(["x"], model="bge-m3")
    expected = (billed - 600) / 10
    assert loop.time() - start >= expected * 0.8
    assert provider.seen[1].at - provider.seen[0].at >= expected * 0.8


async def test_refused_call_gives_its_tokens_back(kind: str) -> None:
    provider = FakeViking(
        fault=lambda n, body, req: json_response(400, {"code": 1000003, "message": "bad"})
    )
    twin = build_viking(kind, provider, tokens_per_minute=6000)
    with pytest.raises(Exception, match="bad"):
        await twin.embed([TEXT], model="bge-m3")
    assert _tokens_state(twin).consumed == 0


async def test_quota_refusal_backs_off_every_holder(kind: str) -> None:
    refusals = iter([True, False, False])
    provider = FakeViking(
        fault=lambda n, body, req: (
            json_response(429, {"code": 1000029, "message": "rate limited"})
            if next(refusals, False)
            else None
        )
    )
    budget = LocalBudget()
    twin = build_viking(kind, provider, tokens_per_minute=60_000, budget=budget)
    other = build_viking(kind, FakeViking(), tokens_per_minute=60_000, budget=budget)
    await twin.embed([TEXT], model="bge-m3")
    # The other client (same account, same budget) sees the cut rate too.
    assert _tokens_state(other).factor < 1.0


async def test_clients_with_the_same_credentials_share_the_process_budget(kind: str) -> None:
    one = build_viking(kind, FakeViking(), tokens_per_minute=600, budget=None)
    two = build_viking(kind, FakeViking(), tokens_per_minute=600, budget=None)
    before = _tokens_state(one).consumed
    await two.embed([TEXT], model="doubao-embedding")
    assert one.client.budget is two.client.budget
    assert _tokens_state(one, "doubao-embedding").consumed > 0
    assert _tokens_state(one).consumed == before  # per model
    stranger = VikingClient("AKother", VIKING_SK, tokens_per_minute=600)
    assert stranger.account != one.client.account
    assert VikingClient(VIKING_AK, VIKING_SK).account == one.client.account
    stranger.close()


def test_catalogue_defaults_per_model() -> None:
    client = VikingClient(VIKING_AK, VIKING_SK)
    for model in ("doubao-embedding", "doubao-embedding-large", "doubao-embedding-vision"):
        quota = client.tokens_quota(model)
        assert quota is not None and quota.capacity == 5_000
    bge = client.tokens_quota("bge-m3")
    assert bge is not None and bge.capacity == 120_000
    assert VikingClient(VIKING_AK, VIKING_SK, tokens_per_minute=None).tokens_quota("bge-m3") is None
    fixed = VikingClient(VIKING_AK, VIKING_SK, tokens_per_minute=9000).tokens_quota(
        "doubao-embedding"
    )
    assert fixed is not None and fixed.capacity == 9000
    with pytest.raises(ConfigurationError, match="tokens_per_minute"):
        VikingClient(VIKING_AK, VIKING_SK, tokens_per_minute=0)
    client.close()


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


class ThreadRecordingBudget(LocalBudget):
    """A budget that says it does I/O, and records which threads call it."""

    in_memory = False

    def __init__(self) -> None:
        super().__init__()
        self.threads: set[int] = set()

    def take(self, account: str, quota: Quota, amount: float) -> Any:
        self.threads.add(threading.get_ident())
        return super().take(account, quota, amount)

    def due_in(self, ticket: Any) -> float:
        self.threads.add(threading.get_ident())
        return super().due_in(ticket)

    def adjust(self, account: str, quota: Quota, delta: float) -> None:
        self.threads.add(threading.get_ident())
        super().adjust(account, quota, delta)


async def test_a_budget_doing_io_is_never_called_on_the_event_loop() -> None:
    budget = ThreadRecordingBudget()
    twin = build_viking("async", FakeViking(), tokens_per_minute=6000, budget=budget)
    await twin.embed([TEXT, TEXT + "2"], model="bge-m3")
    assert budget.threads and threading.get_ident() not in budget.threads
    # An in-memory budget is plain arithmetic: it stays on the loop (no thread hop).
    local = LocalBudget()
    assert local.in_memory and not ThreadRecordingBudget.in_memory
