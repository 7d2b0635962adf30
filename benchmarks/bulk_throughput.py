"""Bulk throughput: does ``mm-embed embed`` use the whole tokens-per-minute budget?

One command: ``python benchmarks/bulk_throughput.py`` (``--smoke`` for a few-second run).

The emulator runs in its own process with ``--tpm 120000 --latency-ms 80``. A generated
corpus worth ``--seconds`` of the budget (emulator tokens) is streamed from a generator
through :func:`mm_embed.bulk.embed_corpus` into Parquet, with a ``VikingClient`` whose
token budget is the same 120,000 per minute (``bge-m3``, dense, the bulk defaults:
100 items per call, ``--max-concurrency`` calls in flight).

Both buckets (the emulator's and the client's budget) start holding a whole minute;
the run measures the pace *after* that burst, so the minute is spent first: one
request of a minute's tokens on the server, and the same charge in the client's
budget. Measured from the emulator's request log, as ``benchmarks/ceiling.py`` does:
the billed emulator tokens of every answered request; the *steady* rate over the
replies sent at least ``--warmup`` seconds after the first one, and the whole-run rate
(from the call to the last reply). Quota refusals (1000029) are counted. The closing
ratio is the steady rate over the budget.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from _harness import EmulatorProcess, machine_line, ratio_line, run_main, text_corpus

from mm_embed import VikingClient
from mm_embed.bulk import embed_corpus
from mm_embed.emulator.state import item_hash
from mm_embed.emulator.tokens import count_tokens

TPM = 120_000
LATENCY_MS = 80
MODEL = "bge-m3"
QUOTA_CODE = 1000029


def corpus(seconds: float) -> list[str]:
    """Distinct texts worth ``seconds`` of the budget in emulator tokens."""
    need = TPM / 60.0 * seconds
    texts = text_corpus(int(need / 10) + 100, seed=3)
    total = 0
    for cut, text in enumerate(texts, 1):
        total += count_tokens(text)
        if total >= need:
            return texts[:cut]
    return texts


def measure(
    records: list[Any], weights: dict[str, int], started: float, warmup: float
) -> dict[str, float]:
    # Only the measured run: the request that spent the first minute is not part of it.
    embeds = sorted(
        (
            r
            for r in records
            if r.route == "viking"
            and r.method == "POST"
            and all(h in weights for h in r.item_hashes)
        ),
        key=lambda r: r.time,
    )
    answered = [r for r in embeds if r.embedded]

    def billed(r: Any) -> int:
        return sum(weights[h] for h in r.item_hashes)

    first, last = answered[0].time, answered[-1].time
    window = [r for r in answered if r.time >= first + warmup]
    steady_seconds = window[-1].time - window[0].time if len(window) >= 2 else 0.0
    steady = sum(billed(r) for r in window[1:]) / steady_seconds if steady_seconds else 0.0
    boundary = window[0].time if window else last
    total = sum(billed(r) for r in answered)
    return {
        "billed": float(total),
        "requests": float(len(embeds)),
        "steady_rate": steady,
        "steady_seconds": steady_seconds,
        "whole_rate": total / max(last - started, 1e-9),
        "quota_warmup": float(sum(1 for r in embeds if r.code == QUOTA_CODE and r.time < boundary)),
        "quota_after": float(sum(1 for r in embeds if r.code == QUOTA_CODE and r.time >= boundary)),
    }


def spend_the_first_minute(client: VikingClient, emu: EmulatorProcess) -> None:
    """Empty both buckets, so what follows runs at the steady rate from its start."""
    with emu.viking_client(tokens_per_minute=None) as spender:
        spender.embed([" ".join(f"w{i}" for i in range(TPM))], model=MODEL)
    quota = client.tokens_quota(MODEL)
    assert quota is not None
    client.budget.adjust(client.account, quota, quota.capacity)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, a few seconds")
    parser.add_argument("--seconds", type=float, default=40.0, help="budget seconds of input")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds left out at the start")
    parser.add_argument("--max-concurrency", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=100, help="items per call")
    args = parser.parse_args(argv)
    seconds, warmup = (3.0, 0.5) if args.smoke else (args.seconds, args.warmup)
    batch_size = 10 if args.smoke else args.batch_size
    texts = corpus(seconds)
    weights = {
        item_hash(
            orjson.dumps({"data_type": "text", "text": t}, option=orjson.OPT_SORT_KEYS)
        ): count_tokens(t)
        for t in texts
    }
    print(machine_line())
    print(
        f"emulator (own process): tpm={TPM} latency={LATENCY_MS} ms; bulk: {len(texts)} texts "
        f"({sum(weights.values())} emulator tokens = {seconds:g} s of budget) from a generator, "
        f"{MODEL}, VikingClient(tokens_per_minute={TPM}), batches of {batch_size}, "
        f"max_concurrency={args.max_concurrency}; "
        f"warm-up {warmup:g} s"
    )

    def items() -> Iterator[dict[str, str]]:
        for i, text in enumerate(texts):
            yield {"id": f"doc-{i}", "text": text}

    with (
        EmulatorProcess(latency_ms=LATENCY_MS, tpm=TPM) as emu,
        tempfile.TemporaryDirectory() as tmp,
    ):
        client = emu.viking_client(tokens_per_minute=TPM, max_concurrency=1)
        with client:
            spend_the_first_minute(client, emu)
            started = time.time()
            summary = embed_corpus(
                items(),
                Path(tmp) / "out.parquet",
                client=client,
                model=MODEL,
                max_concurrency=args.max_concurrency,
                batch_size=batch_size,
            )
        result = measure(emu.log(), weights, started, warmup)
    ceiling = TPM / 60.0
    print(
        f"bulk: {summary.status}, {summary.rows} rows, {summary.calls} calls, {summary.retries} "
        f"retries, {summary.rejected} rejected, wall {summary.wall_time:.1f} s; tokens billed "
        f"(client usage) {summary.tokens}, (emulator log) {result['billed']:.0f}"
    )
    print(
        f"steady {result['steady_rate'] * 60:.0f} tokens/min over {result['steady_seconds']:.1f} s "
        f"= {result['steady_rate'] / ceiling:.3f} x budget; whole run "
        f"{result['whole_rate'] * 60:.0f} tokens/min = {result['whole_rate'] / ceiling:.3f} x; "
        f"1000029: {result['quota_warmup']:.0f} in warm-up, {result['quota_after']:.0f} after"
    )
    ok = summary.status == "complete" and summary.rejected == 0 and result["quota_after"] == 0
    value = result["steady_rate"] / ceiling if ok else 0.0
    if not ok:
        print(
            "ratio reported as 0: the run did not complete cleanly or hit the quota after warm-up"
        )
    print(ratio_line("bulk_tpm_utilisation", value, ">=", 0.95))
    return 0


if __name__ == "__main__":
    run_main(main)
