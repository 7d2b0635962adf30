"""Bulk memory: does peak RSS stay flat while a generator of 200,000 texts is embedded?

One command: ``python benchmarks/bulk_memory.py`` (``--smoke`` for a few-second run).

The emulator runs in its own process (no latency, no quota) so the RSS measured is the
client's alone. ``--items`` generated texts are streamed from a Python generator through
:func:`mm_embed.bulk.embed_corpus` into Parquet (``doubao-embedding`` at 512 dimensions,
durable checkpoints, duplicate-id check on). A thread samples this process's RSS every
50 ms. Printed: RSS at each tenth of the run, the peak, the growth of the peak over the
RSS once warm-up is done (the first tenth of the items or the first 5,000, whichever is
more: the worker threads' allocator arenas, Arrow's pool and the first windows settle
within a few thousand items), and how much of that growth the duplicate-id table (which
grows by design, 12 bytes per slot) accounts for. The closing ratio is the peak over the
warm-up RSS.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
from _harness import (
    BULK_WORDS,
    BackgroundSampler,
    EmulatorProcess,
    machine_line,
    ratio_line,
    run_main,
)

from mm_embed.bulk import embed_corpus

MB = 1024 * 1024


class Sampler(BackgroundSampler):
    """RSS every ``period`` seconds, on a thread."""

    def __init__(self, period: float = 0.05) -> None:
        super().__init__(period)
        self.process = psutil.Process()
        self.samples: list[tuple[float, int]] = []

    def sample(self) -> None:
        self.samples.append((time.monotonic(), self.process.memory_info().rss))


class Marks:
    """Progress hook: the time each item count was reached."""

    def __init__(self) -> None:
        self.done = 0
        self.times: list[tuple[int, float]] = []

    def start(self, total: int | None, initial: int) -> None:
        self.done = initial

    def update(
        self, done: int, *, tokens: int, retries: int, rejected: int, elapsed: float
    ) -> None:
        self.done += done
        self.times.append((self.done, time.monotonic()))

    def close(self) -> None:
        pass

    def time_at(self, items: int) -> float:
        for count, at in self.times:
            if count >= items:
                return at
        return self.times[-1][1]


def texts(n: int) -> Iterator[dict[str, str]]:
    # The first eleven only, so the texts (and the results) stay comparable with past runs.
    words = BULK_WORDS[:11]
    for i in range(n):
        chosen = " ".join(words[(i * 7 + k * 3) % len(words)] for k in range(8 + i % 17))
        yield {"id": f"doc-{i:07d}", "text": f"{i} {chosen}"}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, a few seconds")
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--max-concurrency", type=int, default=4)
    parser.add_argument("--no-duplicate-check", action="store_true", help="leave the id table out")
    args = parser.parse_args(argv)
    n = 10_000 if args.smoke else args.items
    warmup_items = min(n, max(n // 10, 5_000))
    print(machine_line())
    print(
        f"emulator (own process, no latency, no quota); {n:,} texts from a generator -> Parquet, "
        f"doubao-embedding 512-d, batches of 100, windows of 1,000, max_concurrency="
        f"{args.max_concurrency}, duplicate check {'off' if args.no_duplicate_check else 'on'}"
    )
    marks = Marks()
    with EmulatorProcess() as emu, tempfile.TemporaryDirectory() as tmp:
        client = emu.viking_client(tokens_per_minute=None, max_concurrency=1)
        with client, Sampler() as sampler:
            summary = embed_corpus(
                texts(n),
                Path(tmp) / "out.parquet",
                client=client,
                model="doubao-embedding",
                dimension=512,
                max_concurrency=args.max_concurrency,
                check_duplicates=not args.no_duplicate_check,
                progress=marks,
            )
        size = (Path(tmp) / "out.parquet").stat().st_size
    samples = sampler.samples

    def rss_at(moment: float) -> int:
        return max((rss for at, rss in samples if at <= moment), default=samples[0][1])

    print(
        f"run: {summary.status}, {summary.rows:,} rows, {summary.rejected} rejected, "
        f"{summary.wall_time:.1f} s ({summary.rows / summary.wall_time:,.0f} items/s), "
        f"output {size / MB:,.0f} MB"
    )
    curve = []
    for tenth in range(1, 11):
        count = n * tenth // 10
        curve.append(f"{count:,}: {rss_at(marks.time_at(count)) / MB:.0f}")
    print("peak RSS (MB) by items done: " + ", ".join(curve))
    warm = rss_at(marks.time_at(warmup_items))
    peak = max(rss for _, rss in samples)
    slots = 0 if args.no_duplicate_check else 1 << max(4, (int(n / 0.7)).bit_length())
    print(
        f"RSS after warm-up ({warmup_items:,} items): {warm / MB:.1f} MB; peak: {peak / MB:.1f} MB; "
        f"growth after warm-up: {(peak - warm) / MB:.1f} MB, of which the duplicate-id table "
        f"(~{slots * 12 / MB:.1f} MB for {n:,} ids) is by design"
    )
    ok = summary.status == "complete" and summary.rows == n
    print(ratio_line("bulk_peak_rss_over_warmup", peak / warm if ok else 99.0, "<=", 1.1))
    return 0


if __name__ == "__main__":
    run_main(main)
