"""One account, many processes: a shared budget keeps them at the quota's ceiling with
no refusals; without one they collide.

One command: ``python benchmarks/shared_budget.py`` (all three scenarios, about 7
minutes); ``--scenario file|redis|none`` runs one; ``--quick`` (or ``--smoke``) runs
all three at a small quota in well under a minute (its numbers mean little).

Each scenario gets a fresh emulator (its own process) with ``tpm`` (default 120,000
tokens per minute, the emulator's bucket holds the whole minute) and 80 ms latency, and
worker processes that each embed their own English-like texts with ``bge-m3`` (dense),
in ``embed`` calls of ``--chunk`` texts, until ``--seconds`` have passed. Every worker
builds its client with no ``budget=``: the credentials, the endpoint and
``MM_EMBED_BUDGET`` come from the environment, and ``tokens_per_minute`` is the
emulator's ``tpm``.

* ``file``: four processes with ``VikingClient`` share a ``FileBudget``
  (``MM_EMBED_BUDGET=file:///...``), ``max_retries=0`` so a refusal would surface;
* ``redis``: four such processes plus a fifth with ``AsyncVikingClient`` share a
  ``RedisBudget`` (``MM_EMBED_BUDGET=redis://...``, a redis-server started here),
  ``max_retries=0``;
* ``none``: the same four processes without a shared budget (each its own process
  budget, which believes it owns the quota), ``max_retries=3`` (the default).

Measured from the emulator's log (its clock, its tokenizer), over the *window*: from
the first request's arrival (both buckets stay full, refilling nothing, until then) to
the moment the workers stop starting calls. ``billed tok``: tokens of the requests
answered in the window; ``above burst``: (those - the bucket's first minute) over the
quota's rate times the window's length, i.e. the share of the ceiling used once the
first minute's burst is spent; ``tail``: how long the calls under way took to finish
after the window (left out); 1000029 refusals over the whole run. From the workers:
client retries, errors surfaced, texts lost, and vectors that differ from the
emulator's deterministic encoder (every row is checked). The closing ratio is the
smallest ``above burst`` of the shared scenarios that ran, or 0 if any of them saw a
refusal, an error or a wrong vector.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from _harness import (
    EmulatorProcess,
    RedisServer,
    machine_line,
    ratio_line,
    run_main,
    text_corpus,
    text_token_weights,
)

from mm_embed import AsyncVikingClient, VikingClient
from mm_embed.config import EnvVar
from mm_embed.errors import MMEmbedError
from mm_embed.results import EmbeddingResult

MODEL = "bge-m3"
LATENCY_MS = 80
QUOTA_CODE = 1000029
START_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Settings:
    tpm: int
    seconds: float
    chunk: int
    batch: int | None

    @property
    def rate(self) -> float:
        return self.tpm / 60.0


FULL = Settings(tpm=120_000, seconds=120.0, chunk=200, batch=None)
QUICK = Settings(tpm=12_000, seconds=6.0, chunk=10, batch=10)


@dataclass(frozen=True)
class Scenario:
    name: str
    budget: str  # "file", "redis" or "none"
    sync_workers: int
    async_workers: int
    max_retries: int

    @property
    def shared(self) -> bool:
        return self.budget != "none"


SCENARIOS = {
    "file": Scenario("file", "file", 4, 0, 0),
    "redis": Scenario("redis", "redis", 4, 1, 0),
    "none": Scenario("none", "none", 4, 0, 3),
}


# --------------------------------------------------------------------------- worker side


@dataclass
class Tally:
    """What one worker saw."""

    texts: int = 0
    failed: int = 0
    wrong: int = 0
    errors: Counter[str] = field(default_factory=Counter)

    def record(self, chunk: Sequence[str], result: EmbeddingResult) -> None:
        from mm_embed.emulator import encoders

        expected = encoders.project(
            np.stack([encoders.text_features(t) for t in chunk]), MODEL, result.embeddings.shape[1]
        )
        ok = np.isclose(result.embeddings, expected, atol=1e-5).all(axis=1)
        self.texts += len(chunk)
        self.wrong += int((~ok).sum()) + abs(len(chunk) - len(result))

    def fail(self, chunk: Sequence[str], error: MMEmbedError) -> None:
        self.failed += len(chunk)
        self.errors[type(error).__name__] += 1


def _chunks(texts: list[str], size: int) -> list[list[str]]:
    return [texts[k : k + size] for k in range(0, len(texts), size)]


def _client_options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "max_retries": args.retries,
        "tokens_per_minute": args.tpm,
        "max_batch_size": args.batch,
    }


def _wait_for_go() -> float:
    print("ready", flush=True)
    return float(sys.stdin.readline())  # the shared deadline (time.time())


def run_sync_worker(args: argparse.Namespace, texts: list[str]) -> tuple[Tally, int]:
    tally = Tally()
    with VikingClient(**_client_options(args)) as client:
        deadline = _wait_for_go()
        for chunk in _chunks(texts, args.chunk):
            if time.time() >= deadline:
                break
            try:
                tally.record(chunk, client.embed(chunk, model=MODEL, return_sparse=False))
            except MMEmbedError as error:
                tally.fail(chunk, error)
        return tally, client.transport.stats.retries


async def run_async_worker(args: argparse.Namespace, texts: list[str]) -> tuple[Tally, int]:
    tally = Tally()
    async with AsyncVikingClient(**_client_options(args)) as client:
        deadline = await asyncio.to_thread(_wait_for_go)
        for chunk in _chunks(texts, args.chunk):
            if time.time() >= deadline:
                break
            try:
                result = await client.embed(chunk, model=MODEL, return_sparse=False)
                tally.record(chunk, result)
            except MMEmbedError as error:
                tally.fail(chunk, error)
        return tally, client.transport.stats.retries


def worker(args: argparse.Namespace) -> int:
    texts = json.loads(Path(args.texts).read_text())
    if args.use_async:
        tally, retries = asyncio.run(run_async_worker(args, texts))
    else:
        tally, retries = run_sync_worker(args, texts)
    report = {
        "texts": tally.texts,
        "failed": tally.failed,
        "wrong": tally.wrong,
        "errors": dict(tally.errors),
        "retries": retries,
        "ran_out": tally.texts + tally.failed == len(texts),
    }
    print(json.dumps(report), flush=True)
    return 0


# --------------------------------------------------------------------------- parent side


@dataclass
class Outcome:
    scenario: Scenario
    processes: int
    billed: float
    billed_in_window: float
    capacity: float
    seconds: float
    tail: float
    rate: float
    refusals: int
    retries: int
    errors: Counter[str]
    failed: int
    wrong: int
    texts: int
    ran_out: bool
    wall: float

    @property
    def above_burst(self) -> float:
        return (self.billed_in_window - self.capacity) / (self.rate * self.seconds)

    @property
    def clean(self) -> bool:
        return self.refusals == 0 and not self.errors and self.wrong == 0 and not self.ran_out


def _texts_for(settings: Settings, workers: int, index: int) -> list[str]:
    """More texts than one worker can send in the run (about 29 emulator tokens each)."""
    share = (settings.tpm + settings.rate * settings.seconds) / workers
    count = int(share / 29 * 2) + 4 * settings.chunk
    return [f"w{index} {t}" for t in text_corpus(count, seed=1000 + index)]


def _start_workers(
    scenario: Scenario, settings: Settings, env: dict[str, str], folder: Path
) -> tuple[list[subprocess.Popen[str]], dict[str, int]]:
    procs, weights = [], {}
    total = scenario.sync_workers + scenario.async_workers
    for index in range(total):
        texts = _texts_for(settings, total, index)
        weights.update(text_token_weights(texts))
        path = folder / f"texts-{index}.json"
        path.write_text(json.dumps(texts))
        command = [
            sys.executable,
            __file__,
            "worker",
            "--texts",
            str(path),
            "--tpm",
            str(settings.tpm),
            "--chunk",
            str(settings.chunk),
            "--retries",
            str(scenario.max_retries),
        ]
        if settings.batch is not None:
            command += ["--batch", str(settings.batch)]
        if index >= scenario.sync_workers:
            command.append("--async")
        procs.append(
            subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
            )
        )
    return procs, weights


def _release(procs: list[subprocess.Popen[str]], seconds: float) -> float:
    for proc in procs:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError(f"a worker did not start (said {line!r})")
    started = time.time()
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write(f"{started + seconds}\n")
        proc.stdin.flush()
    return started


def run_scenario(scenario: Scenario, settings: Settings, redis_url: str | None) -> Outcome:
    wall_start = time.monotonic()
    with (
        EmulatorProcess(latency_ms=LATENCY_MS, tpm=settings.tpm) as emu,
        tempfile.TemporaryDirectory() as tmp,
    ):
        folder = Path(tmp)
        env = {
            **os.environ,
            "OPENBLAS_NUM_THREADS": "1",
            f"{EnvVar.VOLC_ACCESSKEY}": emu.access_key,
            f"{EnvVar.VOLC_SECRETKEY}": emu.secret_key,
            f"{EnvVar.VIKING_BASE_URL}": emu.url,
        }
        env.pop(f"{EnvVar.MM_EMBED_BUDGET}", None)
        if scenario.budget == "file":
            env[f"{EnvVar.MM_EMBED_BUDGET}"] = f"file://{folder}/budget.db"
        elif scenario.budget == "redis":
            assert redis_url is not None
            env[f"{EnvVar.MM_EMBED_BUDGET}"] = redis_url
        procs, weights = _start_workers(scenario, settings, env, folder)
        try:
            started = _release(procs, settings.seconds)
            reports = []
            for proc in procs:
                out, _ = proc.communicate(timeout=settings.seconds * 4 + START_TIMEOUT_S)
                if proc.returncode != 0:
                    raise RuntimeError(f"a worker failed with exit code {proc.returncode}")
                reports.append(json.loads(out.strip().splitlines()[-1]))
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(5)
        log = emu.log()
    answered = [r for r in log if r.route == "viking" and r.method == "POST" and r.embedded]
    deadline = started + settings.seconds
    last = max((r.time for r in answered), default=deadline)
    # The buckets (the emulator's and the clients') stay full, refilling nothing, until
    # the first request arrives: the window starts there, not at the workers' start-up.
    first = min((r.time - r.duration_ms / 1000 for r in answered), default=started)
    errors: Counter[str] = Counter()
    for report in reports:
        errors.update(report["errors"])
    return Outcome(
        scenario=scenario,
        processes=len(procs),
        billed=float(sum(weights[h] for r in answered for h in r.item_hashes)),
        billed_in_window=float(
            sum(weights[h] for r in answered if r.time <= deadline for h in r.item_hashes)
        ),
        capacity=float(settings.tpm),
        seconds=deadline - first,
        tail=max(0.0, last - deadline),
        rate=settings.rate,
        refusals=sum(1 for r in log if r.code == QUOTA_CODE),
        retries=sum(r["retries"] for r in reports),
        errors=errors,
        failed=sum(r["failed"] for r in reports),
        wrong=sum(r["wrong"] for r in reports),
        texts=sum(r["texts"] for r in reports),
        ran_out=any(r["ran_out"] for r in reports),
        wall=time.monotonic() - wall_start,
    )


def describe(outcome: Outcome) -> str:
    s = outcome.scenario
    budget = {"file": "FileBudget", "redis": "RedisBudget", "none": "none (own)"}[s.budget]
    who = f"{s.sync_workers} sync" + (f" + {s.async_workers} async" if s.async_workers else "")
    errors = sum(outcome.errors.values())
    return (
        f"{s.name:<6} {who:<16} {budget:<12} {s.max_retries:>7} {outcome.seconds:>8.1f} "
        f"{outcome.tail:>6.1f} {outcome.billed_in_window:>10,.0f} {outcome.above_burst:>11.3f} {outcome.refusals:>8} "
        f"{outcome.retries:>8} {errors:>7} {outcome.failed:>7} {outcome.wrong:>6} "
        f"{outcome.texts:>7} {outcome.wall:>7.0f}"
    )


HEADER = (
    f"{'budget':<6} {'processes':<16} {'shared':<12} {'retries':>7} {'window s':>8} {'tail s':>6} "
    f"{'billed tok':>10} {'above burst':>11} {'1000029':>8} {'retried':>8} {'errors':>7} "
    f"{'lost':>7} {'wrong':>6} {'texts':>7} {'wall s':>7}"
)


def main(argv: list[str]) -> int:
    if argv[:1] == ["worker"]:
        return worker(_worker_parser().parse_args(argv[1:]))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", "--smoke", dest="quick", action="store_true", help="small quota, seconds"
    )
    parser.add_argument("--scenario", choices=[*SCENARIOS, "all"], default="all")
    parser.add_argument("--seconds", type=float, help="how long the workers send")
    parser.add_argument("--tpm", type=int, help="the emulator's (and the budget's) quota")
    args = parser.parse_args(argv)
    base = QUICK if args.quick else FULL
    settings = Settings(
        tpm=args.tpm or base.tpm,
        seconds=args.seconds or base.seconds,
        chunk=base.chunk,
        batch=base.batch,
    )
    chosen = list(SCENARIOS.values()) if args.scenario == "all" else [SCENARIOS[args.scenario]]
    print(machine_line())
    print(
        f"emulator (own process per scenario): tpm={settings.tpm:,} (bucket = one minute), "
        f"latency={LATENCY_MS} ms; {MODEL} dense; each worker sends for {settings.seconds:g} s "
        f"in embed calls of {settings.chunk} texts"
    )
    print(HEADER)
    outcomes = []
    with RedisServer() as redis_url:
        for scenario in chosen:
            outcome = run_scenario(scenario, settings, redis_url)
            print(describe(outcome), flush=True)
            outcomes.append(outcome)
    for outcome in outcomes:
        if outcome.errors:
            print(f"{outcome.scenario.name}: errors surfaced: {dict(outcome.errors)}")
        if outcome.ran_out:
            print(f"{outcome.scenario.name}: a worker ran out of texts (raise the corpus size)")
    shared = [o for o in outcomes if o.scenario.shared]
    if not shared:
        print(ratio_line("shared_budget_above_burst_min", 0.0, ">=", 0.95))
        return 0
    worst = min(o.above_burst for o in shared)
    clean = all(o.clean for o in shared)
    if not clean:
        print("ratio reported as 0: a shared scenario saw refusals, errors or wrong vectors")
    print(ratio_line("shared_budget_above_burst_min", worst if clean else 0.0, ">=", 0.95))
    return 0


def _worker_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    parser.add_argument("--texts", required=True)
    parser.add_argument("--tpm", type=int, required=True)
    parser.add_argument("--chunk", type=int, required=True)
    parser.add_argument("--retries", type=int, required=True)
    parser.add_argument("--batch", type=int)
    parser.add_argument("--async", dest="use_async", action="store_true")
    return parser


if __name__ == "__main__":
    run_main(main)
