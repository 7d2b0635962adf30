"""Memory: 100,000 texts streamed from a generator into a Qdrant local collection, and
how much of the peak RSS growth is ours.

One command: ``python benchmarks/memory.py`` (``--smoke`` for a few-second run).

The emulator runs in its own process (no latency, no quota: a 120k TPM budget would
make 100,000 texts a 20-minute run and change nothing about memory). Each phase runs
in a fresh Python process of its own, so one phase's heap cannot hide another's; each
samples its RSS every 50 ms on a thread and reports the curve (RSS at every tenth of
the items) and the peak. *Growth* is the peak minus the RSS just before the first item
is read (after imports, client, emulator connection and the empty collection: what a
long run adds, from its first item on, nothing excluded).

* ``stream``: ``--items`` texts from a generator through the streaming API
  (:meth:`mm_embed.bulk.BulkEmbedder.iter_batches`: batches of 100 texts, in order,
  ``max_pending`` batches held at most) with a default ``VikingClient``
  (``bge-m3`` dense, 1024-d); each batch's vectors are checked and dropped.
* ``qdrant``: the same number of random 1024-d vectors, made 100 at a time, upserted
  into ``QdrantClient(":memory:")`` (local mode). Local mode keeps every vector in RAM
  (a float32 matrix, 4 KB a point, grown by reallocation): its growth is Qdrant's,
  whoever embeds. (``QdrantClient(path=...)`` keeps the same matrix in RAM and also
  commits a pickle of every point to SQLite one by one: ~20 ms a point on this disk,
  half an hour for 100,000 points, so the benchmark uses ``":memory:"``.)
* ``pipeline``: the real thing, ``stream`` feeding each batch to the same upsert.

Ours = ``pipeline`` growth minus ``qdrant`` growth (and, measured alone, ``stream``
growth). The closing ratio is the larger of the two estimates of our growth over the
200 MB budget (target <= 1); the raw pipeline growth is printed above it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import psutil
from _harness import BackgroundSampler, EmulatorProcess, machine_line, ratio_line, run_main

MB = 1024 * 1024
DIM = 1024
MODEL = "bge-m3"
COLLECTION = "bench"
BUDGET_MB = 200.0


class Sampler(BackgroundSampler):
    """This process's RSS every ``period`` seconds, on a thread."""

    def __init__(self, period: float = 0.05) -> None:
        super().__init__(period)
        self.process = psutil.Process()
        self.peak = 0

    def rss(self) -> int:
        value = int(self.process.memory_info().rss)
        self.peak = max(self.peak, value)
        return value

    def sample(self) -> None:
        self.rss()


def texts(n: int) -> Iterator[str]:
    """``n`` distinct texts, made one at a time (never a list)."""
    words = ["river", "stone", "light", "paper", "window", "garden", "music", "engine"]
    for i in range(n):
        body = " ".join(words[(i * 7 + k * 3) % len(words)] for k in range(8 + i % 17))
        yield f"item {i}: {body}."


def _qdrant() -> Any:
    from qdrant_client import QdrantClient, models

    client = QdrantClient(":memory:")
    client.create_collection(
        COLLECTION, vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE)
    )
    return client


def _upsert(qdrant: Any, start: int, vectors: Any) -> None:
    from qdrant_client import models

    ids: list[int | str | Any] = list(range(start, start + len(vectors)))
    qdrant.upsert(COLLECTION, points=models.Batch(ids=ids, vectors=vectors.tolist()), wait=True)


def run_phase(phase: str, n: int, url: str, ak: str, sk: str) -> dict[str, Any]:
    """One phase in this process; returns its curve and peak (bytes)."""
    import numpy as np

    from mm_embed import VikingClient
    from mm_embed.bulk import BulkEmbedder

    qdrant = _qdrant() if phase in ("qdrant", "pipeline") else None
    client = VikingClient(ak, sk, base_url=url, tokens_per_minute=None)
    if phase != "qdrant":
        client.embed(["warm-up"], model=MODEL, return_sparse=False)
    marks = {round(n * k / 10) for k in range(1, 11)}
    curve: list[tuple[int, int]] = []
    done = 0
    started = time.perf_counter()
    with Sampler() as sampler:
        start_rss = sampler.rss()
        curve.append((0, start_rss))
        if phase == "qdrant":
            rng = np.random.default_rng(0)
            for k in range(0, n, 100):
                block = rng.standard_normal((min(100, n - k), DIM), dtype=np.float32)
                _upsert(qdrant, k, block)
                done = k + len(block)
                if any(k < m <= done for m in marks):
                    curve.append((done, sampler.rss()))
        else:
            engine = BulkEmbedder(client, model=MODEL)
            for batch in engine.iter_batches(texts(n)):
                dense = batch.dense
                assert dense is not None and dense.shape == (batch.size, DIM)
                assert batch.index[0] == done  # in input order
                if qdrant is not None:
                    _upsert(qdrant, batch.start, dense)
                before, done = done, done + batch.size
                if any(before < m <= done for m in marks):
                    curve.append((done, sampler.rss()))
    wall = time.perf_counter() - started
    client.close()
    if qdrant is not None:
        count = qdrant.count(COLLECTION).count
        assert count == n, f"the collection holds {count} points, expected {n}"
        qdrant.close()
    return {"phase": phase, "start": start_rss, "peak": sampler.peak, "curve": curve, "wall": wall}


def _child(phase: str, n: int, emu: EmulatorProcess) -> dict[str, Any]:
    done = subprocess.run(
        [
            sys.executable,
            __file__,
            "--phase",
            phase,
            "--items",
            str(n),
            "--url",
            emu.url,
            "--ak",
            emu.access_key,
            "--sk",
            emu.secret_key,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"phase {phase} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _describe(result: dict[str, Any]) -> str:
    start = result["start"]
    points = "  ".join(f"{k:>6}:{(rss - start) / MB:+6.0f}" for k, rss in result["curve"])
    return (
        f"{result['phase']:<8} start {start / MB:5.0f} MB  peak growth "
        f"{(result['peak'] - start) / MB:6.1f} MB  ({result['wall']:.1f} s)\n"
        f"         growth (MB) after N items: {points}"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, a few seconds")
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--phase", choices=("stream", "qdrant", "pipeline"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--ak", help=argparse.SUPPRESS)
    parser.add_argument("--sk", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    n = 500 if args.smoke else args.items
    if args.phase:
        print(json.dumps(run_phase(args.phase, n, args.url, args.ak, args.sk)))
        return 0
    print(machine_line())
    print(
        f"{n:,} texts, {MODEL} {DIM}-d, emulator in its own process (no latency, no quota), "
        "each phase in a fresh process, RSS sampled every 50 ms"
    )
    results: dict[str, dict[str, Any]] = {}
    with EmulatorProcess() as emu:
        for phase in ("stream", "qdrant", "pipeline"):
            results[phase] = _child(phase, n, emu)
            print(_describe(results[phase]), flush=True)

    def growth(phase: str) -> float:
        return float(results[phase]["peak"] - results[phase]["start"]) / MB

    stream, qdrant, pipeline = growth("stream"), growth("qdrant"), growth("pipeline")
    ours_in_pipeline = pipeline - qdrant
    print(
        f"peak growth: pipeline {pipeline:.1f} MB (budget {BUDGET_MB:.0f} MB: "
        f"{'within' if pipeline <= BUDGET_MB else 'over'}), of which Qdrant local mode "
        f"alone {qdrant:.1f} MB; ours: {ours_in_pipeline:.1f} MB in the pipeline, "
        f"{stream:.1f} MB streaming alone"
    )
    ours = max(stream, ours_in_pipeline)
    print(ratio_line("memory_growth_ours_over_200mb", ours / BUDGET_MB, "<=", 1.0))
    return 0


if __name__ == "__main__":
    run_main(main)
