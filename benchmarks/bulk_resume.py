"""Bulk resume: a run killed with SIGKILL twice, under faults, ends identical to a clean one.

One command: ``python benchmarks/bulk_resume.py`` (``--smoke`` for a few-second run).

The emulator runs in this process with ``--fault-rate 0.1`` (every fault kind: 429,
500, 503, dropped connections, malformed bodies, 1-second stalls) so its request log can
be read. ``mm-embed embed`` (``python -m mm_embed.bulk``) runs as a child process:

1. a clean run embeds ``--items`` texts (JSONL) into Parquet;
2. a second run on the same input is killed with SIGKILL when its checkpoint holds a
   random number of finished batches, resumed with ``--resume``, killed again at a later
   random point, and resumed to the end.

Then the two Parquet files are compared (``pyarrow.Table.equals`` and byte for byte),
and the emulator's log of the second run is checked item by item (each item's hash): an
item embedded in a run after a kill although its batch was already on disk at that kill
would be a re-send of stored work. Items whose call was in flight when the process died
(the emulator answered, the reply was lost with the process) are sent again by the
resume, as a retry of that call. The closing ratio is 1 when the files are identical and
nothing stored was re-sent, else 0.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _bulk_harness import kill_and_resume
from _harness import machine_line, ratio_line, run_main


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, a few seconds")
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--kills", type=int, default=2)
    parser.add_argument("--fault-rate", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args(argv)
    items, batch_size, window_batches = (600, 20, 3) if args.smoke else (args.items, 100, 10)
    print(machine_line())
    print(
        f"emulator (this process): fault rate {args.fault_rate} (all kinds, 1 s stalls); "
        f"mm-embed embed as a child process: {items:,} texts, doubao-embedding 512-d, batches of "
        f"{batch_size}, windows of {batch_size * window_batches}, 4 calls in flight; "
        f"{args.kills} SIGKILLs at random points (seed {args.seed})"
    )
    with tempfile.TemporaryDirectory() as tmp:
        report = kill_and_resume(
            Path(tmp),
            items=items,
            kills=args.kills,
            fault_rate=args.fault_rate,
            seed=args.seed,
            batch_size=batch_size,
            window_batches=window_batches,
            timeout=3600.0,
        )
    for line in report.lines():
        print(line)
    ok = (
        report.identical_bytes
        and report.equal_tables
        and report.resent_after_durable == 0
        and report.unexplained_repeats == 0
        and report.never_embedded == 0
        and len(report.kills) == args.kills
    )
    print(ratio_line("bulk_resume_identical", 1.0 if ok else 0.0, ">=", 1.0))
    return 0


if __name__ == "__main__":
    run_main(main)
