"""A resume checks the input it reads again against content fingerprints of what the
earlier run finished: any difference inside the written windows refuses the resume
(exit 2, naming the first differing row) and sends, writes and changes nothing; rows
appended after the written part are embedded; a changed record whose batch was
finished but not yet written is embedded again."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from mm_embed.bulk.checkpoint import Checkpoint
from mm_embed.bulk.cli import embed_main
from mm_embed.emulator import Emulator

ITEMS = 100  # batches of 10, windows of 3 batches: 30 items a window


def rows(n: int) -> list[bytes]:
    return [orjson.dumps({"id": f"d{i}", "text": f"document {i} on rivers"}) for i in range(n)]


def write(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def command(src: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--provider", "viking", "--model", "doubao-embedding", "--dimension", "512",
        "--batch-size", "10", "--window-batches", "3", "--max-concurrency", "2",
        "--input", str(src), "--output", str(out), "--no-progress", *extra,
    ]  # fmt: skip


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


@dataclass
class Stopped:
    """A run of ``ITEMS`` records stopped as Ctrl-C does when window 2 was about to be
    committed: windows 0 and 1 (items 0-59) are written, window 2's batches finished."""

    src: Path
    out: Path
    parts: Path
    emulator: Emulator
    capsys: pytest.CaptureFixture[str]

    def resume(self, expected: int) -> str:
        self.capsys.readouterr()
        assert embed_main(command(self.src, self.out, "--resume")) == expected
        return self.capsys.readouterr().err

    def refused(self) -> str:
        """Resume, expect a refusal that sent, wrote and changed nothing; its stderr."""
        before, requests = snapshot(self.parts), len(self.emulator.log)
        err = self.resume(2)
        assert "--overwrite" in err and "Traceback" not in err
        assert not self.out.exists() and snapshot(self.parts) == before
        assert len(self.emulator.log) == requests
        return err

    def matches_a_clean_run(self) -> bool:
        clean = self.out.with_name("clean.parquet")
        assert embed_main(command(self.src, clean)) == 0
        return self.out.read_bytes() == clean.read_bytes()


@pytest.fixture
def stopped(
    emulator_env: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Stopped:
    src = write(tmp_path / "c.jsonl", rows(ITEMS))
    out = tmp_path / "o.parquet"
    commit = Checkpoint.commit_window

    def stop_at_window_2(self: Checkpoint, n: int, *args: object) -> None:
        if n == 2:
            raise KeyboardInterrupt
        commit(self, n, *args)  # type: ignore[arg-type]

    with monkeypatch.context() as patch:
        patch.setattr(Checkpoint, "commit_window", stop_at_window_2)
        assert embed_main(command(src, out)) == 130
    parts = out.with_name(out.name + ".parts")
    assert sorted(p.name for p in parts.glob("window-*")) == [
        "window-00000000.arrow",
        "window-00000001.arrow",
    ]
    return Stopped(src, out, parts, emulator_env, capsys)


def test_a_same_size_edit_with_the_mtime_put_back_is_refused(stopped: Stopped) -> None:
    src = stopped.src
    stat = src.stat()
    edited = rows(ITEMS)
    edited[17] = edited[17].replace(b"rivers", b"deltas")
    write(src, edited)
    os.utime(src, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert (src.stat().st_size, src.stat().st_mtime_ns) == (stat.st_size, stat.st_mtime_ns)
    err = stopped.refused()
    assert f"{src}:18" in err and "'d17'" in err and "item 17" in err


def test_a_reordered_input_is_refused(stopped: Stopped) -> None:
    swapped = rows(ITEMS)
    swapped[5], swapped[40] = swapped[40], swapped[5]
    write(stopped.src, swapped)
    err = stopped.refused()
    assert f"{stopped.src}:6" in err and "'d40'" in err


def test_swapped_window_files_are_refused(stopped: Stopped) -> None:
    parts = stopped.parts
    first, second = parts / "window-00000000.arrow", parts / "window-00000001.arrow"
    first.rename(parts / "swap")
    second.rename(first)
    (parts / "swap").rename(second)
    err = stopped.refused()
    assert f"{stopped.src}:1" in err and "'d0'" in err and "window-00000000.arrow" in err


def test_a_shortened_input_is_refused(stopped: Stopped) -> None:
    write(stopped.src, rows(45))
    err = stopped.refused()
    assert "after 45 items" in err and "finished 60" in err


def test_rows_appended_after_the_written_part_are_embedded(stopped: Stopped) -> None:
    write(stopped.src, rows(ITEMS + 25))
    err = stopped.resume(0)
    assert "125 read" in err and "warning" not in err
    assert stopped.matches_a_clean_run()


def test_an_edit_in_a_finished_unwritten_batch_is_embedded_again(stopped: Stopped) -> None:
    finished = {p.name for p in stopped.parts.glob("batch-*")}
    assert "batch-000000000070.arrow" in finished
    edited = rows(ITEMS)
    edited[75] = orjson.dumps({"id": "d75", "text": "an entirely new text"})
    write(stopped.src, edited)
    stopped.resume(0)
    assert stopped.matches_a_clean_run()
