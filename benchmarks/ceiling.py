"""Ceiling utilisation: does the Viking client reach the provider's rate limit without waste?

One command: ``python benchmarks/ceiling.py`` (``--smoke`` for a few-second run).

Against the emulator (its own process) with ``--tpm 120000 --latency-ms 80
--images-per-second 15``, four runs, each on a fresh emulator (full quota buckets, as a
new account would have):

* ``VikingClient`` and ``AsyncVikingClient`` embed texts (``bge-m3``, dense) worth at
  least ``--seconds`` of the token budget, in one ``embed`` call, default settings;
* the same two embed images (``bge-visualized-m3``, 256x256 PNGs, 100 emulator tokens
  each, so the images-per-second budget binds, not the token budget).

Measured from the emulator's request log (its clock, the time each reply was sent):

* ``billed``: emulator tokens (its own tokenizer) or images of every answered request;
* ``steady rate``: the steady-state window starts at the first reply sent at least
  ``--warmup`` seconds after the first reply, and ends at the last reply; the rate is
  the billed units of the replies *after* the window's first one, over the window's
  length (so the client's initial burst is excluded and nothing else is);
* ``whole-run rate``: all billed units over the time from the ``embed`` call to the
  last reply (includes start-up and the initial burst);
* ``1000029``: quota refusals, counted in the warm-up and after it;
* ``errors``: exceptions surfaced to the caller, and rows missing from the result.

The closing ratio is the smallest steady rate over its ceiling among the four runs.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass
from typing import Any

from _harness import (
    EmulatorProcess,
    machine_line,
    ratio_line,
    run_main,
    text_corpus,
    text_token_weights,
)

from mm_embed import AsyncVikingClient, ImageItem, VikingClient
from mm_embed.emulator import SAMPLES, sample_png
from mm_embed.emulator.tokens import count_tokens

TPM = 120_000
IMAGES_PER_SECOND = 15
LATENCY_MS = 80
TEXT_MODEL = "bge-m3"
IMAGE_MODEL = "bge-visualized-m3"
QUOTA_CODE = 1000029


@dataclass
class Run:
    name: str
    unit: str
    ceiling: float  # units per second
    inputs: int
    billed: float
    steady_rate: float
    steady_seconds: float
    whole_rate: float
    quota_warmup: int
    quota_after: int
    errors: int
    requests: int
    client_retries: int
    wall: float

    @property
    def ratio(self) -> float:
        return self.steady_rate / self.ceiling

    def describe(self) -> str:
        scale = 60.0 if self.unit == "tokens" else 1.0
        per = "min" if self.unit == "tokens" else "s"
        return (
            f"{self.name:<24} {self.inputs:>6} inputs  {self.requests:>4} requests  "
            f"steady {self.steady_rate * scale:>9.0f} {self.unit}/{per} over {self.steady_seconds:5.1f} s "
            f"= {self.ratio:.3f} x ceiling  (whole run {self.whole_rate / self.ceiling:.3f} x)  "
            f"1000029: {self.quota_warmup} in warm-up, {self.quota_after} after  "
            f"errors: {self.errors}  client retries: {self.client_retries}  wall {self.wall:.1f} s"
        )


def _texts_for(seconds: float) -> list[str]:
    """Enough distinct texts for ``seconds`` of the token budget."""
    need = TPM / 60.0 * seconds
    texts = text_corpus(int(need / 10) + 100, seed=1)
    total, cut = 0, 0
    for cut, t in enumerate(texts, 1):  # noqa: B007
        total += count_tokens(t)
        if total >= need:
            break
    return texts[:cut]


def _images_for(seconds: float) -> list[ImageItem]:
    pngs = [sample_png(name) for name in SAMPLES]
    n = int(IMAGES_PER_SECOND * seconds)
    return [ImageItem(pngs[i % len(pngs)]) for i in range(n)]


def _workload(kind: str, seconds: float) -> tuple[list[Any], dict[str, int] | None, str]:
    """What a ``kind`` run (``tokens`` or ``images``) embeds: the items worth ``seconds`` of
    its budget, their billed weights by item hash (``None`` for images: one unit each),
    and the model."""
    if kind == "tokens":
        texts = _texts_for(seconds)
        return list(texts), text_token_weights(texts), TEXT_MODEL
    return _images_for(seconds), None, IMAGE_MODEL


def _measure(
    name: str,
    unit: str,
    inputs: int,
    records: list[Any],
    started: float,
    wall: float,
    errors: int,
    retries: int,
    warmup: float,
    weights: dict[str, int] | None,
) -> Run:
    embeds = sorted(
        (r for r in records if r.route == "viking" and r.method == "POST"), key=lambda r: r.time
    )
    ceiling = TPM / 60.0 if unit == "tokens" else float(IMAGES_PER_SECOND)

    def billed(r: Any) -> float:
        if not r.embedded:
            return 0.0
        if weights is None:
            return float(r.items)
        return float(sum(weights[h] for h in r.item_hashes))

    answered = [r for r in embeds if r.embedded]
    first = answered[0].time if answered else started
    last = answered[-1].time if answered else started
    window = [r for r in answered if r.time >= first + warmup]
    if len(window) >= 2:
        steady_seconds = window[-1].time - window[0].time
        steady = sum(billed(r) for r in window[1:]) / steady_seconds
    else:
        steady_seconds, steady = 0.0, 0.0
    quota = [r for r in embeds if r.code == QUOTA_CODE]
    boundary = window[0].time if window else last
    total = sum(billed(r) for r in answered)
    return Run(
        name=name,
        unit=unit,
        ceiling=ceiling,
        inputs=inputs,
        billed=total,
        steady_rate=steady,
        steady_seconds=steady_seconds,
        whole_rate=total / max(last - started, 1e-9),
        quota_warmup=sum(1 for r in quota if r.time < boundary),
        quota_after=sum(1 for r in quota if r.time >= boundary),
        errors=errors,
        requests=len(embeds),
        client_retries=retries,
        wall=wall,
    )


def run_sync(kind: str, seconds: float, warmup: float) -> Run:
    with EmulatorProcess(
        latency_ms=LATENCY_MS, tpm=TPM, images_per_second=IMAGES_PER_SECOND
    ) as emu:
        items, weights, model = _workload(kind, seconds)
        errors = 0
        with VikingClient(emu.access_key, emu.secret_key, base_url=emu.url) as client:
            started = time.time()
            try:
                result = client.embed(items, model=model, return_sparse=False)
                errors += len(items) - len(result)
            except Exception as exc:  # the point is to count what reaches the caller
                print(f"  error surfaced: {type(exc).__name__}: {exc}")
                errors += 1
            wall = time.time() - started
            retries = client.transport.stats.retries
        name = f"VikingClient {kind}"
        return _measure(
            name, kind, len(items), emu.log(), started, wall, errors, retries, warmup, weights
        )


def run_async(kind: str, seconds: float, warmup: float) -> Run:
    with EmulatorProcess(
        latency_ms=LATENCY_MS, tpm=TPM, images_per_second=IMAGES_PER_SECOND
    ) as emu:
        items, weights, model = _workload(kind, seconds)

        async def go() -> tuple[int, float, float, int]:
            errors = 0
            async with AsyncVikingClient(
                emu.access_key, emu.secret_key, base_url=emu.url
            ) as client:
                started = time.time()
                try:
                    result = await client.embed(items, model=model, return_sparse=False)
                    errors += len(items) - len(result)
                except Exception as exc:
                    print(f"  error surfaced: {type(exc).__name__}: {exc}")
                    errors += 1
                return errors, started, time.time() - started, client.transport.stats.retries

        errors, started, wall, retries = asyncio.run(go())
        name = f"AsyncVikingClient {kind}"
        return _measure(
            name, kind, len(items), emu.log(), started, wall, errors, retries, warmup, weights
        )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, a few seconds")
    parser.add_argument(
        "--seconds", type=float, default=36.0, help="budget seconds of input per run"
    )
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds left out at the start")
    args = parser.parse_args(argv)
    seconds, warmup = (1.0, 0.2) if args.smoke else (args.seconds, args.warmup)
    print(machine_line())
    print(
        f"emulator (own process): tpm={TPM} images/s={IMAGES_PER_SECOND} latency={LATENCY_MS} ms; "
        f"client defaults (max_concurrency=32, tokens_per_minute={TPM}, images_per_second="
        f"{IMAGES_PER_SECOND}); {seconds:g} s of budget per run, warm-up {warmup:g} s"
    )
    runs = []
    for kind in ("tokens", "images"):
        for runner in (run_sync, run_async):
            run = runner(kind, seconds, warmup)
            print(run.describe(), flush=True)
            runs.append(run)
    wasted = sum(r.quota_after for r in runs)
    errors = sum(r.errors for r in runs)
    print(f"1000029 after warm-up (all runs): {wasted}   errors surfaced (all runs): {errors}")
    worst = min(runs, key=lambda r: r.ratio)
    value = worst.ratio if wasted == 0 and errors == 0 else 0.0
    if value != worst.ratio:
        print("ratio reported as 0: quota refusals after warm-up or errors reached the caller")
    print(ratio_line("ceiling_utilisation_min", value, ">=", 0.95))
    return 0


if __name__ == "__main__":
    run_main(main)
