"""Ray engine vs local engine: the same quota filled by both, Ray's start-up overhead,
and the memory of each embedding actor.

One command: ``python benchmarks/ray_throughput.py`` (``--smoke`` for a short run;
``--ray-address ADDRESS`` joins a running cluster instead of starting a local one).

The same JSONL corpus (``bulk_throughput.py``'s texts, worth ``--seconds`` of a 120,000
tokens-per-minute budget in emulator tokens) is embedded twice with ``mm-embed embed``
(``bge-m3``, dense, batches of 100), each run against a fresh emulator in its own
process (``--tpm 120000 --latency-ms 80``): once with the local engine
(``--max-concurrency 8``, the process's budget), once with ``--engine ray`` (4 actors
of a quarter CPU, the cluster's ``RayBudget``) on a local Ray started here with 2 CPUs.

As in ``bulk_throughput.py`` the first minute is spent before each run (one request of
a minute's tokens to the emulator, the same charge in the budget) so the runs are paced
from their start; for Ray the budget is also held empty until its first ticket, so the
seconds Ray spends starting actors pile up no burst. Measured from each emulator's
request log: the steady rate (replies from ``--warmup`` seconds after the first one)
over the ceiling, and quota refusals. Start-up: ``ray.init``; from the command's start
to the first reply at the emulator (local vs Ray); the whole runs' wall times. Memory:
RSS and USS (pages no other process shares) of every embedding actor, sampled every
0.5 s, the peak of each. The closing ratio is the lower of the two utilisations.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import psutil
import ray
import ray.data
from _harness import BackgroundSampler, EmulatorProcess, machine_line, ratio_line, run_main
from bulk_throughput import LATENCY_MS, MODEL, TPM, corpus, measure

from mm_embed.budgets import Budget, default_budget
from mm_embed.bulk.cli import embed_main
from mm_embed.config import EnvVar
from mm_embed.emulator.state import item_hash
from mm_embed.emulator.tokens import count_tokens
from mm_embed.ray import RayBudget

MB = 1024 * 1024
ACTORS = 4


def spend_the_first_minute(emu: EmulatorProcess, budget: Budget) -> tuple[str, Any]:
    """Empty the emulator's bucket and the budget's; returns (account, quota)."""
    with emu.viking_client(tokens_per_minute=TPM) as client:
        account, quota = client.account, client.tokens_quota(MODEL)
    with emu.viking_client(tokens_per_minute=None) as spender:
        spender.embed([" ".join(f"w{i}" for i in range(TPM))], model=MODEL)
    budget.adjust(account, quota, quota.capacity)
    return account, quota


def hold_empty(budget: Budget, account: str, quota: Any, stop: threading.Event) -> None:
    """Keep ``budget`` empty until its first ticket is taken (Ray's start-up)."""
    while not stop.wait(0.05):
        state = budget.state(account, quota)
        if state.reserved > 0:
            return
        if state.balance > 0:
            budget.adjust(account, quota, state.balance)


class ActorMemory(BackgroundSampler):
    """Peak RSS and USS of each live embedding actor, sampled on a thread."""

    def __init__(self) -> None:
        # No sample at exit: it comes after the run, when the actors are idle or gone.
        super().__init__(0.5, sample_at_exit=False)
        self.peaks: dict[int, tuple[int, int]] = {}

    def sample(self) -> None:
        # The state API needs the dashboard; the GCS table does not.
        for actor in ray._private.state.actors().values():
            if "EmbedBatches" not in actor["ActorClassName"] or actor["State"] != "ALIVE":
                continue
            try:
                info = psutil.Process(int(actor["Pid"])).memory_full_info()
            except (psutil.Error, ValueError):
                continue
            rss, uss = self.peaks.get(int(actor["Pid"]), (0, 0))
            self.peaks[int(actor["Pid"])] = (max(rss, info.rss), max(uss, info.uss))


def run_engine(
    engine: str,
    texts: list[str],
    work: Path,
    prepare: Callable[[EmulatorProcess], Callable[[], None]],
    extra: list[str],
) -> dict[str, Any]:
    """One ``mm-embed embed`` run against a fresh emulator; the emulator's view of it."""
    corpus_path = work / "corpus.jsonl"
    with EmulatorProcess(latency_ms=LATENCY_MS, tpm=TPM) as emu:
        env = {
            f"{EnvVar.VIKING_BASE_URL}": emu.url,
            f"{EnvVar.VOLC_ACCESSKEY}": emu.access_key,
            f"{EnvVar.VOLC_SECRETKEY}": emu.secret_key,
        }
        os.environ.update(env)
        finish = prepare(emu)
        summary_path = work / f"{engine}.summary.json"
        started = time.time()
        code = embed_main(
            [
                "--provider", "viking", "--model", MODEL,
                "--input", str(corpus_path),
                "--output", str(work / f"{engine}.out"),
                "--tokens-per-minute", str(TPM),
                "--batch-size", "100",
                "--no-progress",
                "--summary-json", str(summary_path),
                *extra,
            ]
        )  # fmt: skip
        finish()
        log = emu.log()
    summary = orjson.loads(summary_path.read_bytes())
    weights = {
        item_hash(orjson.dumps({"data_type": "text", "text": t}, option=orjson.OPT_SORT_KEYS)): (
            count_tokens(t)
        )
        for t in texts
    }
    replies = sorted(r.time for r in log if r.embedded and all(h in weights for h in r.item_hashes))
    return {
        "code": code,
        "summary": summary,
        "log": log,
        "weights": weights,
        "started": started,
        "first_reply": replies[0] - started if replies else float("nan"),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes")
    parser.add_argument("--seconds", type=float, default=40.0, help="budget seconds of input")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds left out at the start")
    parser.add_argument("--ray-address", help="join this cluster (default: start a local one)")
    args = parser.parse_args(argv)
    seconds, warmup = (4.0, 0.5) if args.smoke else (args.seconds, args.warmup)
    texts = corpus(seconds)
    print(machine_line())
    print(
        f"emulator (own process, fresh per run): tpm={TPM} latency={LATENCY_MS} ms; corpus: "
        f"{len(texts)} texts ({sum(count_tokens(t) for t in texts)} emulator tokens = "
        f"{seconds:g} s of budget), {MODEL}, batches of 100; local: --max-concurrency 8; "
        f"ray: {ACTORS} actors x 0.25 CPU; warm-up {warmup:g} s"
    )
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "corpus.jsonl").write_bytes(
            b"".join(
                orjson.dumps({"id": f"doc-{i}", "text": t}) + b"\n" for i, t in enumerate(texts)
            )
        )

        def local_prepare(emu: EmulatorProcess) -> Callable[[], None]:
            spend_the_first_minute(emu, default_budget())
            return lambda: None

        local = run_engine(
            "local", texts, work, local_prepare, ["--max-concurrency", "8", "--budget", "memory://"]
        )

        began = time.monotonic()
        ray.init(
            address=args.ray_address,
            logging_level=logging.WARNING,
            **({} if args.ray_address else {"num_cpus": 2, "include_dashboard": False}),
        )
        init_s = time.monotonic() - began
        ray.data.DataContext.get_current().enable_progress_bars = False
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        # The command's budget when none is named: the cluster's default RayBudget.
        budget = RayBudget()
        memory = ActorMemory()

        def ray_prepare(emu: EmulatorProcess) -> Callable[[], None]:
            account, quota = spend_the_first_minute(emu, budget)
            stop = threading.Event()
            holder = threading.Thread(target=hold_empty, args=(budget, account, quota, stop))
            holder.start()
            memory.__enter__()

            def finish() -> None:
                stop.set()
                holder.join(5)
                memory.__exit__()

            return finish

        os.environ.pop(f"{EnvVar.MM_EMBED_BUDGET}", None)
        try:
            remote = run_engine(
                "ray",
                texts,
                work,
                ray_prepare,
                ["--engine", "ray", "--max-concurrency", str(ACTORS)],
            )
        finally:
            budget.destroy()
            ray.shutdown()
    return report(local, remote, init_s, memory, warmup)


def report(
    local: dict[str, Any], remote: dict[str, Any], init_s: float, memory: ActorMemory, warmup: float
) -> int:
    ceiling = TPM / 60.0
    ratios = {}
    for name, run in (("local", local), ("ray", remote)):
        m = measure(run["log"], run["weights"], run["started"], warmup)
        s = run["summary"]
        ratios[name] = m["steady_rate"] / ceiling if s["status"] == "complete" else 0.0
        print(
            f"{name:5s}: exit {run['code']}, {s['rows']} rows, {s['calls']} calls, wall "
            f"{s['wall_time']:.1f} s, first reply {run['first_reply']:.1f} s after the start; "
            f"steady {m['steady_rate'] * 60:.0f} tokens/min over {m['steady_seconds']:.1f} s = "
            f"{ratios[name]:.3f} x ceiling; whole run {m['whole_rate'] / ceiling:.3f} x; "
            f"1000029: {m['quota_warmup']:.0f} in warm-up, {m['quota_after']:.0f} after"
        )
        if m["quota_after"]:
            ratios[name] = 0.0
    print(
        f"ray start-up: ray.init {init_s:.1f} s; first reply {remote['first_reply']:.1f} s vs "
        f"{local['first_reply']:.1f} s locally (+{remote['first_reply'] - local['first_reply']:.1f}"
        f" s); wall {remote['summary']['wall_time']:.1f} s vs "
        f"{local['summary']['wall_time']:.1f} s locally"
    )
    peaks = sorted(memory.peaks.values())
    if peaks:
        rss = ", ".join(f"{r / MB:.0f}" for r, _ in peaks)
        uss = ", ".join(f"{u / MB:.0f}" for _, u in peaks)
        print(f"memory per actor ({len(peaks)} actors seen): peak RSS {rss} MB; peak USS {uss} MB")
    print(ratio_line("ray_and_local_tpm_utilisation_min", min(ratios.values()), ">=", 0.95))
    return 0


if __name__ == "__main__":
    run_main(main)
