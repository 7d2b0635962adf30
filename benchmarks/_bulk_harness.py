"""Kill-and-resume harness of ``bulk_resume.py``, and the pieces of it the bulk tests
use too (they import it from here: benchmarks never import the tests).

The emulator runs in this process (so its request log can be read); ``mm-embed embed``
runs as a child process (``python -m mm_embed.bulk``) that is killed with SIGKILL once
its checkpoint holds a chosen number of finished batches, then resumed.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from _harness import BULK_WORDS

from mm_embed.config import EnvVar
from mm_embed.emulator import Emulator
from mm_embed.emulator.state import item_hash


def write_corpus(path: Path, n: int, *, seed: int = 0) -> list[str]:
    """``n`` JSONL records with unique texts; returns the texts."""
    rng = random.Random(seed)
    texts = []
    with path.open("wb") as handle:
        for i in range(n):
            text = f"{i} " + " ".join(rng.choice(BULK_WORDS) for _ in range(rng.randint(4, 14)))
            texts.append(text)
            handle.write(orjson.dumps({"id": f"doc-{i:06d}", "text": text}) + b"\n")
    return texts


def viking_text_hash(text: str) -> str:
    """The emulator's hash of one Viking text item (canonical JSON of the wire item)."""
    return item_hash(orjson.dumps({"data_type": "text", "text": text}, option=orjson.OPT_SORT_KEYS))


def emulator_settings(emu: Emulator) -> dict[str, str]:
    """The environment that points both providers at ``emu``."""
    return {
        EnvVar.VIKING_BASE_URL.value: emu.url,
        EnvVar.VOLC_ACCESSKEY.value: emu.access_key,
        EnvVar.VOLC_SECRETKEY.value: emu.secret_key,
        EnvVar.FGCLIP_BASE_URL.value: emu.url,
        EnvVar.FGCLIP_API_KEY.value: emu.api_key,
    }


def cli_env(emu: Emulator) -> dict[str, str]:
    env = dict(os.environ)
    env.update(emulator_settings(emu))
    env.pop(EnvVar.VIKING_TOKEN.value, None)
    return env


def run_cli(
    command: list[str], env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` to the end; its output is captured as text."""
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)


def embed_command(corpus: Path, output: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "mm_embed.bulk",
        "--provider",
        "viking",
        "--model",
        "doubao-embedding",
        "--dimension",
        "512",
        "--input",
        str(corpus),
        "--output",
        str(output),
        "--no-progress",
        "--timeout",
        "5",
        *extra,
    ]


def durable_batches(parts: Path, window_items: int, batch_size: int) -> set[int]:
    """Start positions of every batch whose result is on disk in ``parts``."""
    starts: set[int] = set()
    if not parts.is_dir():
        return starts
    for path in parts.iterdir():
        if path.suffix != ".arrow":
            continue
        kind, number = path.stem.split("-")
        if kind == "batch":
            starts.add(int(number))
        elif kind == "window":
            first = int(number) * window_items
            starts.update(range(first, first + window_items, batch_size))
    return starts


@dataclass
class Kill:
    at: float
    durable: set[int]
    #: When the next run (the resume) was started.
    resumed_at: float = 0.0


@dataclass
class ResumeReport:
    items: int
    kills: list[Kill] = field(default_factory=list)
    runs: int = 0
    exit_codes: list[int] = field(default_factory=list)
    identical_bytes: bool = False
    equal_tables: bool = False
    embedded_once: int = 0
    embedded_twice_in_flight: int = 0
    unexplained_repeats: int = 0
    resent_after_durable: int = 0
    never_embedded: int = 0
    wall_time: float = 0.0
    requests: int = 0
    faults: int = 0

    def lines(self) -> list[str]:
        return [
            f"items: {self.items}; kills (SIGKILL): {len(self.kills)} at batches "
            + ", ".join(str(len(k.durable)) for k in self.kills),
            f"runs: {self.runs}, exit codes {self.exit_codes}; wall time {self.wall_time:.1f}s",
            f"emulator: {self.requests} requests, {self.faults} injected faults",
            f"final file vs clean run: Table.equals={self.equal_tables}, "
            f"byte-identical={self.identical_bytes}",
            f"items embedded exactly once: {self.embedded_once}; again by a resume because "
            f"their call was in flight when the process was killed (answered, reply lost "
            f"with the process, so the call is retried): {self.embedded_twice_in_flight}; "
            f"re-sent although already on disk: {self.resent_after_durable}; repeated "
            f"otherwise: {self.unexplained_repeats}; never embedded: {self.never_embedded}",
        ]


def _run_until(
    command: list[str],
    env: dict[str, str],
    parts: Path,
    *,
    kill_at_batches: int | None,
    window_items: int,
    batch_size: int,
    timeout: float,
) -> tuple[int, Kill | None]:
    """Run ``command``; SIGKILL it once ``kill_at_batches`` batches are durable."""
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None:
            if time.monotonic() > deadline:
                proc.kill()
                raise TimeoutError(f"run did not finish in {timeout}s")
            if kill_at_batches is not None:
                durable = durable_batches(parts, window_items, batch_size)
                if len(durable) >= kill_at_batches:
                    proc.send_signal(signal.SIGKILL)
                    at = time.time()
                    proc.wait(10)
                    return proc.returncode, Kill(
                        at, durable_batches(parts, window_items, batch_size)
                    )
            time.sleep(0.01)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode not in (0,):
        raise RuntimeError(f"run failed with {proc.returncode}:\n{stderr}")
    return proc.returncode, None


def kill_and_resume(
    workdir: Path,
    *,
    items: int,
    kills: int = 2,
    fault_rate: float = 0.1,
    seed: int = 0,
    batch_size: int = 100,
    window_batches: int = 10,
    max_concurrency: int = 4,
    timeout: float = 600.0,
    extra: tuple[str, ...] = (),
) -> ResumeReport:
    """Clean run, then a run killed ``kills`` times at random points and resumed; compare."""
    import pyarrow.parquet as pq

    rng = random.Random(seed)
    corpus = workdir / "corpus.jsonl"
    texts = write_corpus(corpus, items, seed=seed)
    window_items = batch_size * window_batches
    total_batches = -(-items // batch_size)
    options = (
        "--batch-size",
        str(batch_size),
        "--window-batches",
        str(window_batches),
        "--max-concurrency",
        str(max_concurrency),
        "--tokens-per-minute",
        "0",
        *extra,
    )
    report = ResumeReport(items=items)
    started = time.monotonic()
    with Emulator(fault_rate=fault_rate, seed=seed, timeout_fault_s=1.0) as emu:
        env = cli_env(emu)
        clean = workdir / "clean.parquet"
        code, _ = _run_until(
            embed_command(corpus, clean, *options),
            env,
            workdir / "clean.parquet.parts",
            kill_at_batches=None,
            window_items=window_items,
            batch_size=batch_size,
            timeout=timeout,
        )
        emu.clear_log()
        killed = workdir / "killed.parquet"
        parts = workdir / "killed.parquet.parts"
        # Kill points spread over the run, strictly increasing.
        points = sorted(rng.sample(range(max(2, total_batches // 10), total_batches - 1), kills))
        for i in range(kills + 1):
            point = points[i] if i < kills else None
            command = embed_command(corpus, killed, *options, *(("--resume",) if i else ()))
            if i:
                report.kills[-1].resumed_at = time.time()
            code, kill = _run_until(
                command,
                env,
                parts,
                kill_at_batches=point,
                window_items=window_items,
                batch_size=batch_size,
                timeout=timeout,
            )
            report.runs += 1
            report.exit_codes.append(code)
            if kill is not None:
                report.kills.append(kill)
        log = emu.log
        report.requests = len(log)
        report.faults = sum(1 for r in log if r.fault)
    report.wall_time = time.monotonic() - started
    report.identical_bytes = clean.read_bytes() == killed.read_bytes()
    report.equal_tables = pq.read_table(clean).equals(pq.read_table(killed))

    index_of = {viking_text_hash(t): i for i, t in enumerate(texts)}
    # When each embedding reached the emulator. Requests of a killed run may still be
    # handled (and logged) a little after the kill, so a time alone cannot say which run
    # sent them; what is sound: a batch on disk at a kill had its reply before the kill,
    # so any embedding of it that reached the emulator after the resume started is a
    # re-send of stored work.
    epochs: dict[int, list[float]] = {}
    for record in log:
        if record.embedded:
            arrived = record.time - record.duration_ms / 1000
            for h in record.item_hashes:
                epochs.setdefault(index_of[h], []).append(arrived)
    for i, arrivals in epochs.items():
        batch = i - i % batch_size
        if any(
            batch in k.durable and any(a > k.resumed_at for a in arrivals) for k in report.kills
        ):
            report.resent_after_durable += 1
        elif len(arrivals) == 1:
            report.embedded_once += 1
        elif any(batch not in k.durable for k in report.kills):
            report.embedded_twice_in_flight += 1
        else:
            report.unexplained_repeats += 1
    report.never_embedded = items - len(epochs)
    return report
