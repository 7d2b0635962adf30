"""Fault soak: 10,000 mixed inputs through the sync and async clients against an emulator
that faults 20 % of requests (429 / Viking 1000029, 500, 503, connection resets,
timeouts, malformed bodies).

Claims checked, for every input:
- it gets exactly the vector (bitwise) and sparse map a fault-free emulator gives it,
  in the caller's order (inputs are distinct and their reference vectors are distinct,
  so a swap would show);
- the client's retry counter equals the faults the emulator injected (each fault costs
  exactly one retry; none were exhausted), and the client's request counter equals the
  requests the emulator saw;
- billing: the emulator embedded each input exactly once (a faulted request is never
  embedded: the emulator picks the fault before it embeds, see ``RequestRecord.embedded``).

Half the inputs go through the blocking clients (thread pools), half through the async
clients, all four async calls at once. ``RELIABILITY_REPORT=path`` appends the measured
numbers as one JSON line (used for the README reliability table).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from mm_embed import AsyncFGClipClient, AsyncVikingClient, EmbeddingResult
from mm_embed.emulator import Emulator, RequestRecord
from tests.integration._helpers import fg_client, noisy_png, same_result, viking_client, wait_for

FAULTS = ("429", "500", "503", "reset", "malformed", "timeout")
FAULT_RATE = 0.2
#: Client read timeout, and how long the emulator stalls on a ``timeout`` fault. Normal
#: requests take milliseconds; the margin keeps a slow CI machine from timing out a
#: request the emulator did serve (which would bill it twice).
CLIENT_TIMEOUT_S = 1.0
TIMEOUT_FAULT_S = 1.3
#: Small wire batches: more requests, so more faults of every kind on both routes.
FG_BATCH = 12
VIKING_BATCH = 20

# 10,000 inputs in all: half sync, half async.
N_FG_TEXTS = 2_200
N_FG_IMAGES = 300
N_FG_BOXED = 300
N_VIKING_TEXTS = 2_200
PER_HALF = N_FG_TEXTS + N_FG_IMAGES + N_FG_BOXED + N_VIKING_TEXTS
VIKING_MODEL = "bge-m3"  # dense + sparse
WORDS = [
    "red",
    "green",
    "blue",
    "circle",
    "square",
    "river",
    "mountain",
    "lantern",
    "harbour",
    "orchard",
    "violin",
]


@dataclass
class Workload:
    fg_texts: list[str]
    fg_images: list[bytes]
    boxed_images: list[bytes]
    boxes: list[list[list[float]]]
    viking_texts: list[str]

    def __len__(self) -> int:
        return (
            len(self.fg_texts)
            + len(self.fg_images)
            + len(self.boxed_images)
            + len(self.viking_texts)
        )


def text(i: int, kind: str) -> str:
    picked = " ".join(WORDS[(i * k) % len(WORDS)] for k in (1, 3, 7))
    return f"{kind} item {i}: {picked} 第{i}号"


def workload(half: int) -> Workload:
    base = half * 100_000
    images = [noisy_png(32, 24, base + i) for i in range(N_FG_IMAGES)]
    boxed = [noisy_png(32, 24, base + 50_000 + i) for i in range(N_FG_BOXED)]
    boxes = [
        [[0, 0, 16, 12], [8, 6, 20, 14], [i % 12, 2, 10, 10]][: 1 + i % 3]
        for i in range(len(boxed))
    ]
    return Workload(
        fg_texts=[text(base + i, "fg") for i in range(N_FG_TEXTS)],
        fg_images=images,
        boxed_images=boxed,
        boxes=[[[float(v) for v in b] for b in per] for per in boxes],
        viking_texts=[text(base + i, "viking") for i in range(N_VIKING_TEXTS)],
    )


@dataclass
class Outcome:
    results: dict[str, EmbeddingResult]
    requests: int
    retries: int
    failures: int
    seconds: float
    per_client: dict[str, tuple[int, int]] = field(default_factory=dict)


def run_sync(emu: Emulator, work: Workload, *, small_batches: bool = True) -> Outcome:
    """``small_batches=False`` (the reference) uses the provider's batch sizes: the
    vectors must not depend on how inputs were batched."""
    started = time.perf_counter()
    fg_batch, viking_batch = (FG_BATCH, VIKING_BATCH) if small_batches else (None, None)
    with (
        fg_client(emu, timeout=CLIENT_TIMEOUT_S, max_concurrency=4, max_batch_size=fg_batch) as fg,
        viking_client(
            emu, timeout=CLIENT_TIMEOUT_S, max_concurrency=4, max_batch_size=viking_batch
        ) as vk,
    ):
        results = {
            "fg_texts": fg.embed_texts(work.fg_texts),
            "fg_images": fg.embed_images(work.fg_images),
            "fg_boxes": fg.embed_images(work.boxed_images, boxes=work.boxes),
            "viking": vk.embed(work.viking_texts, model=VIKING_MODEL),
        }
        stats = [fg.transport.stats, vk.transport.stats]
    return Outcome(
        results,
        requests=sum(s.requests for s in stats),
        retries=sum(s.retries for s in stats),
        failures=sum(s.failures for s in stats),
        seconds=time.perf_counter() - started,
    )


async def run_async(emu: Emulator, work: Workload) -> Outcome:
    started = time.perf_counter()
    fg = fg_client(
        emu, asynchronous=True, timeout=CLIENT_TIMEOUT_S, max_concurrency=4, max_batch_size=FG_BATCH
    )
    vk = viking_client(
        emu,
        asynchronous=True,
        timeout=CLIENT_TIMEOUT_S,
        max_concurrency=4,
        max_batch_size=VIKING_BATCH,
    )
    assert isinstance(fg, AsyncFGClipClient) and isinstance(vk, AsyncVikingClient)
    async with fg, vk:
        texts, images, boxed, viking = await asyncio.gather(
            fg.embed_texts(work.fg_texts),
            fg.embed_images(work.fg_images),
            fg.embed_images(work.boxed_images, boxes=work.boxes),
            vk.embed(work.viking_texts, model=VIKING_MODEL),
        )
    stats = [fg.transport.stats, vk.transport.stats]
    return Outcome(
        {"fg_texts": texts, "fg_images": images, "fg_boxes": boxed, "viking": viking},
        requests=sum(s.requests for s in stats),
        retries=sum(s.retries for s in stats),
        failures=sum(s.failures for s in stats),
        seconds=time.perf_counter() - started,
    )


def settled_log(emu: Emulator, expected: int) -> list[RequestRecord]:
    """The embedding records once every request the client sent is logged (a request
    the client timed out on is logged when the emulator's stall ends)."""

    def embedding_records() -> list[RequestRecord]:
        return [r for r in emu.log if r.route in ("fgclip", "viking")]

    wait_for(lambda: len(embedding_records()) >= expected, timeout=TIMEOUT_FAULT_S + 10)
    return embedding_records()


def embedded_items(log: list[RequestRecord]) -> Counter[str]:
    return Counter(h for r in log if r.embedded for h in r.item_hashes)


def fault_counts(log: list[RequestRecord]) -> dict[str, int]:
    def name(r: RequestRecord) -> str:
        if r.fault == "429" and r.route == "viking":
            return f"viking {r.code} (HTTP 429)"
        return f"{r.route} {r.fault}"

    return dict(sorted(Counter(name(r) for r in log if r.fault).items()))


def check(
    name: str,
    outcome: Outcome,
    reference: dict[str, EmbeddingResult],
    log: list[RequestRecord],
    reference_log: list[RequestRecord],
    n_inputs: int,
) -> dict[str, Any]:
    for key, want in reference.items():
        same_result(outcome.results[key], want, f"{name} {key}")
    faults = [r for r in log if r.fault]
    served_ms = max(r.duration_ms for r in log if not r.fault)
    # A served request slower than the client's timeout would be retried and billed
    # twice: that is a too-slow machine, not a client bug, and this says so.
    assert served_ms < CLIENT_TIMEOUT_S * 1000, f"a served request took {served_ms} ms"
    # Every injected fault cost exactly one retry; no call gave up.
    assert outcome.failures == 0
    assert outcome.retries == len(faults)
    assert outcome.requests == len(log)
    # Billing: each input embedded exactly once, the same items as the fault-free run.
    billed = embedded_items(log)
    assert billed == embedded_items(reference_log)
    assert set(billed.values()) == {1}
    assert sum(r.items for r in log if r.embedded) == n_inputs
    assert not any(r.embedded for r in faults)
    kinds = {r.fault for r in faults}
    assert kinds == set(FAULTS), f"every fault kind should occur, got {kinds}"
    return {
        "flavour": name,
        "inputs": n_inputs,
        "rows": sum(len(r) for r in outcome.results.values()),
        "requests": len(log),
        "faults": len(faults),
        "retries": outcome.retries,
        "faults_by_kind": fault_counts(log),
        "slowest_served_ms": round(served_ms, 1),
        "wall_s": round(outcome.seconds, 2),
    }


def reference_results(
    clean: Emulator, work: Workload
) -> tuple[dict[str, EmbeddingResult], list[RequestRecord]]:
    clean.clear_log()
    outcome = run_sync(clean, work, small_batches=False)
    assert outcome.retries == 0
    return outcome.results, settled_log(clean, outcome.requests)


def report(entry: dict[str, Any]) -> None:
    print(json.dumps(entry, ensure_ascii=False))
    path = os.environ.get("RELIABILITY_REPORT")
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"test": "fault_soak", **entry}, ensure_ascii=False) + "\n")


def distinct_rows(results: dict[str, EmbeddingResult]) -> None:
    """The order check means something only if no two rows are equal."""
    for key, result in results.items():
        matrix = result.embeddings
        assert len(np.unique(matrix, axis=0)) == len(matrix), f"{key}: duplicate reference rows"


def faulty(seed: int) -> Emulator:
    return Emulator(
        fault_rate=FAULT_RATE,
        faults=FAULTS,
        timeout_fault_s=TIMEOUT_FAULT_S,
        retry_after=0,
        seed=seed,
    )


def test_soak_sync_and_async() -> None:
    halves = [workload(0), workload(1)]
    assert sum(len(w) for w in halves) == 10_000
    with Emulator() as clean:
        references = [reference_results(clean, w) for w in halves]
    for results, _ in references:
        distinct_rows(results)

    with faulty(seed=1) as emu:
        outcome = run_sync(emu, halves[0])
        log = settled_log(emu, outcome.requests)
    report(check("sync", outcome, references[0][0], log, references[0][1], len(halves[0])))

    with faulty(seed=2) as emu:
        outcome = asyncio.run(run_async(emu, halves[1]))
        log = settled_log(emu, outcome.requests)
    report(check("async", outcome, references[1][0], log, references[1][1], len(halves[1])))


# ------------------------------------------------------------------ each kind, each route
# The soak draws faults at random; these cases script one fault of each kind on each
# route (so Viking's 1000029 and a timeout on each route are certain to be exercised).

SCRIPTED_TIMEOUT_S = 0.4


@pytest.fixture(scope="module")
def scripted() -> Iterator[Emulator]:
    with Emulator(timeout_fault_s=SCRIPTED_TIMEOUT_S + 0.3, retry_after=0) as emu:
        yield emu


SCRIPT_TEXTS = [f"scripted text {i} red circle" for i in range(5)]


async def embed_once(emu: Emulator, route: str, asynchronous: bool) -> tuple[EmbeddingResult, int]:
    """Embed ``SCRIPT_TEXTS`` once; returns the result and the client's retry count."""
    options: dict[str, Any] = {"timeout": SCRIPTED_TIMEOUT_S, "max_concurrency": 1}
    make = fg_client if route == "fgclip" else viking_client
    client = make(emu, asynchronous=asynchronous, **options)

    def call() -> Any:
        if route == "fgclip":
            return client.embed_texts(SCRIPT_TEXTS)
        return client.embed(SCRIPT_TEXTS, model=VIKING_MODEL)

    if asynchronous:
        async with client:
            result = await call()
    else:
        with client:
            result = await asyncio.to_thread(call)
    return result, client.transport.stats.retries


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("kind", FAULTS)
@pytest.mark.parametrize("route", ["fgclip", "viking"])
async def test_each_fault_kind_is_survived(
    scripted: Emulator, route: str, kind: str, asynchronous: bool
) -> None:
    want, retries = await embed_once(scripted, route, asynchronous)
    assert retries == 0
    scripted.clear_log()
    scripted.queue_faults(kind)
    got, retries = await embed_once(scripted, route, asynchronous)
    same_result(got, want, f"{route} after {kind}")
    assert retries == 1
    # A timed-out request is logged when the emulator's stall ends, maybe after the retry.
    log = sorted(settled_log(scripted, 2), key=lambda r: r.embedded)
    assert [(r.fault, r.embedded) for r in log] == [(kind, False), (None, True)]
    assert log[0].item_hashes == log[1].item_hashes
    if route == "viking" and kind == "429":
        assert log[0].code == 1000029
