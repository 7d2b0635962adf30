"""Acceptance 3 of the emulator issue: under a 30 % fault rate (429, 500, 503, reset,
malformed, timeout), 2,000 texts through VikingClient come back bitwise identical to a
fault-free run, in order; sync and async."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from mm_embed import EmbeddingResult
from mm_embed.emulator import FAULT_KINDS, Emulator
from mm_embed.retry import RetryPolicy
from tests.integration._helpers import Clients, records

TEXTS = [f"document {i}: 第{i}段 text about topic {i % 37}" for i in range(2000)]
MODEL = "bge-large-zh-and-m3"  # dense and sparse both checked


async def _run(clients: Clients, emu: Emulator) -> tuple[EmbeddingResult, int]:
    # 25 texts a request: 80 requests, so every fault kind turns up.
    vk = clients.viking(emu, tokens_per_minute=None, max_retries=30, timeout=1.0, max_batch_size=25)
    vk.client.transport.retry = RetryPolicy(max_retries=30, initial_delay=0.01, max_delay=0.05)
    result = await vk.embed(TEXTS, model=MODEL)
    return result, int(vk.transport.stats.retries)


def _wait_for_requests(emu: Emulator, count: int, *, within: float) -> None:
    deadline = time.monotonic() + within
    while emu.counters["requests"] < count and time.monotonic() < deadline:
        time.sleep(0.05)


async def test_faulty_run_equals_fault_free_run(
    clients: Clients, make_emulator: Callable[..., Emulator]
) -> None:
    clean_emu = make_emulator()
    clean, clean_retries = await _run(clients, clean_emu)
    assert clean_retries == 0 and clean_emu.counters.get("faults", 0) == 0

    faulty_emu = make_emulator(
        fault_rate=0.3, faults=FAULT_KINDS, timeout_fault_s=1.5, retry_after=0, seed=3
    )
    faulty, retries = await _run(clients, faulty_emu)

    # A timed-out request is logged when its sleep ends, after the client gave up on it.
    _wait_for_requests(faulty_emu, 80 + retries, within=10.0)
    counters = faulty_emu.counters
    assert counters["requests"] == 80 + retries
    assert counters["faults"] >= 15
    assert all(counters.get(f"fault:{kind}", 0) > 0 for kind in FAULT_KINDS), counters
    assert retries == counters["faults"]  # every fault cost exactly one retry
    embedded = [r for r in records(faulty_emu, "viking") if r.embedded]
    assert len(embedded) == 80 and sum(r.items for r in embedded) == 2000

    assert faulty.input_indices.tolist() == list(range(2000))
    assert faulty.embeddings.dtype == clean.embeddings.dtype
    assert faulty.embeddings.tobytes() == clean.embeddings.tobytes()
    assert np.array_equal(faulty.embeddings, clean.embeddings)
    assert faulty.sparse is not None and clean.sparse is not None
    assert [v.weights for v in faulty.sparse] == [v.weights for v in clean.sparse]
