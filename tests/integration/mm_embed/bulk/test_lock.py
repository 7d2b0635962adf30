"""One writer per output: a second ``mm-embed embed`` on the same output, while the first
runs, is refused (exit 2, naming the holder's pid) and the first run's output is intact;
the lock dies with its holder."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from mm_embed.emulator import Emulator
from tests.integration._helpers import (
    cli_env,
    durable_batches,
    embed_command,
    run_cli,
    write_corpus,
)

OPTIONS = (
    "--batch-size", "20", "--window-batches", "3", "--max-concurrency", "1",
    "--tokens-per-minute", "0",
)  # fmt: skip


@dataclass
class FirstRun:
    proc: subprocess.Popen[str]
    corpus: Path
    out: Path
    env: dict[str, str]

    def again(self, *extra: str) -> subprocess.CompletedProcess[str]:
        """The same command, with ``extra``, run to the end by another process."""
        return run_cli(embed_command(self.corpus, self.out, *OPTIONS, *extra), self.env, 120)


@contextmanager
def first_run(tmp_path: Path, *, items: int, latency_ms: int, batches: int) -> Iterator[FirstRun]:
    """A run against a slow emulator, handed over once ``batches`` of it are on disk."""
    corpus, out = tmp_path / "c.jsonl", tmp_path / "o.parquet"
    write_corpus(corpus, items)
    with Emulator(latency_ms=latency_ms) as emu:
        env = cli_env(emu)
        proc = subprocess.Popen(
            embed_command(corpus, out, *OPTIONS), env=env, stderr=subprocess.PIPE, text=True
        )
        try:
            deadline = time.monotonic() + 60
            while len(durable_batches(tmp_path / "o.parquet.parts", 60, 20)) < batches:
                assert proc.poll() is None, proc.communicate()[1]
                assert time.monotonic() < deadline, "the first run made no progress"
                time.sleep(0.01)
            yield FirstRun(proc, corpus, out, env)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.communicate(timeout=30)


@pytest.mark.timeout(180)
def test_a_second_writer_is_refused_and_the_first_output_is_intact(tmp_path: Path) -> None:
    with first_run(tmp_path, items=1500, latency_ms=80, batches=2) as first:
        for extra in (("--resume",), ("--overwrite",), ()):
            second = first.again(*extra)
            assert second.returncode == 2, (extra, second.stderr)
            assert f"pid {first.proc.pid}" in second.stderr, second.stderr
            assert "Traceback" not in second.stderr
        assert first.proc.poll() is None, "the first run ended before the refusals were checked"
        _, stderr = first.proc.communicate(timeout=120)
    assert first.proc.returncode == 0 and "complete" in stderr, stderr
    table = pq.read_table(first.out)
    assert table.column("id").to_pylist() == [f"doc-{i:06d}" for i in range(1500)]
    assert not (tmp_path / "o.parquet.parts").exists()
    assert not (tmp_path / "o.parquet.lock").exists()


@pytest.mark.timeout(180)
def test_the_lock_of_a_killed_run_is_released_by_the_system(tmp_path: Path) -> None:
    with first_run(tmp_path, items=600, latency_ms=40, batches=3) as first:
        first.proc.kill()
        first.proc.communicate(timeout=30)
        assert (tmp_path / "o.parquet.lock").exists()  # left behind, but no longer held
        resumed = first.again("--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "finished by an earlier run" in resumed.stderr
    assert pq.read_table(first.out).num_rows == 600


def test_two_writers_of_one_checkpoint_file_never_share_a_temporary_name(tmp_path: Path) -> None:
    # The lock keeps a second process out; below it, every file still goes through a
    # temporary name of its own, so even two writers of one file cannot collide.
    import threading

    import pyarrow as pa

    from mm_embed.bulk.checkpoint import Checkpoint, Part

    out = tmp_path / "o.parquet"
    writers = [Checkpoint(out, durable=False), Checkpoint(out, durable=False)]
    writers[0].create({"x": 1})
    part = Part(pa.table({"id": ["a"], "index": [0]}), [], {"start": 0, "size": 1})
    errors: list[BaseException] = []

    def write_many(checkpoint: Checkpoint) -> None:
        try:
            for _ in range(300):
                checkpoint.write_batch(0, part)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=write_many, args=(w,)) for w in writers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert writers[1].read_batch(0).table.column("id").to_pylist() == ["a"]
    assert not list(writers[0].dir.glob("*.tmp"))
