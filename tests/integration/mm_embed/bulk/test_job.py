"""File runs (embed_corpus) against the emulator: outputs, rejects, checkpoints, resume."""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from mm_embed import VikingClient
from mm_embed.bulk import CheckpointError, TqdmProgress, embed_corpus
from mm_embed.bulk.checkpoint import Checkpoint
from mm_embed.emulator import Emulator
from mm_embed.emulator.state import item_hash

MODEL = "doubao-embedding"


def viking(emu: Emulator, **options: object) -> VikingClient:
    return VikingClient(emu.access_key, emu.secret_key, base_url=emu.url, **options)  # type: ignore[arg-type]


def corpus(path: Path, n: int, *, bad: dict[int, bytes] | None = None) -> Path:
    lines = [orjson.dumps({"id": f"d{i}", "text": f"document {i} on rivers"}) for i in range(n)]
    for i, line in (bad or {}).items():
        lines[i] = line
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def run(emu: Emulator, src: object, out: Path, **options: object):  # type: ignore[no-untyped-def]
    settings: dict[str, object] = {
        "model": MODEL,
        "dimension": 512,
        "batch_size": 10,
        "window_batches": 3,
        "max_concurrency": 3,
    }
    settings.update(options)
    with viking(emu) as client:
        return embed_corpus(src, out, client=client, **settings)  # type: ignore[arg-type]


def viking_hash(text: str) -> str:
    return item_hash(orjson.dumps({"data_type": "text", "text": text}, option=orjson.OPT_SORT_KEYS))


def test_parquet_output_rows_row_groups_and_rejects(emulator: Emulator, tmp_path: Path) -> None:
    src = corpus(
        tmp_path / "c.jsonl",
        75,
        bad={4: b'{"id": "d4"', 9: b'{"id": "d1", "text": "dup"}', 60: b'{"text": "no id"}'},
    )
    out = tmp_path / "out.parquet"
    summary = run(emulator, src, out)
    assert summary.status == "complete" and summary.exit_code == 1
    assert (summary.items, summary.embedded, summary.rejected, summary.rows) == (75, 72, 3, 72)
    assert summary.calls == 8 and summary.tokens == summary.total_tokens > 0
    table = pq.read_table(out)
    assert table.schema.names == ["id", "dense", "tokens"]
    assert table.schema.field("dense").type == pa.list_(pa.float32(), 512)
    expected = [f"d{i}" for i in range(75) if i not in (4, 9, 60)]
    assert table.column("id").to_pylist() == expected
    assert sum(table.column("tokens").to_pylist()) == summary.tokens
    # One row group per window of 30 input items.
    meta = pq.ParquetFile(out).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [28, 30, 14]
    rejects = [
        orjson.loads(line)
        for line in (tmp_path / "out.parquet.rejects.jsonl").read_bytes().splitlines()
    ]
    assert [(r["index"], r["location"], r["code"], r["field"]) for r in rejects] == [
        (4, f"{src}:5", "bad_record", None),
        (9, f"{src}:10", "duplicate_id", "id"),
        (60, f"{src}:61", "bad_record", "id"),
    ]
    assert "first seen at" in rejects[1]["message"] and f"{src}:2" in rejects[1]["message"]
    assert not (tmp_path / "out.parquet.parts").exists()


def test_jsonl_output_matches_parquet(emulator: Emulator, tmp_path: Path) -> None:
    src = corpus(tmp_path / "c.jsonl", 25)
    run(emulator, src, tmp_path / "o.parquet")
    summary = run(emulator, src, tmp_path / "o.jsonl")
    assert summary.exit_code == 0 and not (tmp_path / "o.jsonl.rejects.jsonl").exists()
    rows = [orjson.loads(line) for line in (tmp_path / "o.jsonl").read_bytes().splitlines()]
    table = pq.read_table(tmp_path / "o.parquet").to_pylist()
    assert [r["id"] for r in rows] == [r["id"] for r in table]
    assert [r["tokens"] for r in rows] == [r["tokens"] for r in table]
    for mine, theirs in zip(rows, table, strict=True):
        # float32 printed shortest: parses back to the very same float32 values.
        assert pa.array(mine["dense"], pa.float32()).to_pylist() == theirs["dense"]


def test_existing_output_and_checkpoint_need_a_decision(emulator: Emulator, tmp_path: Path) -> None:
    src = corpus(tmp_path / "c.jsonl", 5)
    out = tmp_path / "o.parquet"
    run(emulator, src, out)
    with pytest.raises(CheckpointError, match="--overwrite"):
        run(emulator, src, out)
    again = run(emulator, src, out, resume=True)
    assert again.extra.get("already_complete") and "nothing to resume" in again.message
    assert run(emulator, src, out, overwrite=True).status == "complete"
    Checkpoint(out).create({"x": 1})
    with pytest.raises(CheckpointError, match="--resume"):
        run(emulator, src, out)


def test_resume_refuses_other_settings(emulator: Emulator, tmp_path: Path) -> None:
    src = corpus(tmp_path / "c.jsonl", 5)
    out = tmp_path / "o.parquet"
    Checkpoint(out).create({"provider": "viking", "model": "bge-m3"})
    with pytest.raises(CheckpointError, match="model: checkpoint 'bge-m3', now 'doubao-embedding'"):
        run(emulator, src, out, resume=True)


def test_interrupted_run_resumes_to_the_same_bytes_without_re_sending(
    emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Item 120 repeats the id of item 5: still a duplicate after a resume at item 60.
    src = corpus(
        tmp_path / "c.jsonl", 140, bad={33: b"{oops", 120: b'{"id": "d5", "text": "again"}'}
    )
    clean = tmp_path / "clean.parquet"
    run(emulator, src, clean)
    emulator.clear_log()

    commit = Checkpoint.commit_window

    def crash_on_window_2(self: Checkpoint, n: int, *args: object) -> None:
        if n == 2:
            raise KeyboardInterrupt
        commit(self, n, *args)  # type: ignore[arg-type]

    out = tmp_path / "o.parquet"
    monkeypatch.setattr(Checkpoint, "commit_window", crash_on_window_2)
    first = run(emulator, src, out)
    assert first.status == "interrupted" and first.exit_code == 130
    parts = tmp_path / "o.parquet.parts"
    assert sorted(p.name for p in parts.glob("window-*")) == [
        "window-00000000.arrow",
        "window-00000001.arrow",
    ]
    assert len(list(parts.glob("batch-*"))) >= 3  # window 2's batches are kept
    assert not out.exists()
    monkeypatch.setattr(Checkpoint, "commit_window", commit)
    second = run(emulator, src, out, resume=True)
    assert second.status == "complete" and second.exit_code == 1
    assert second.resumed >= 90 and second.items == 140 and second.rejected == 2
    assert out.read_bytes() == clean.read_bytes()
    assert (tmp_path / "o.parquet.rejects.jsonl").read_bytes() == (
        tmp_path / "clean.parquet.rejects.jsonl"
    ).read_bytes()
    # Across both runs every item was embedded exactly once.
    counts = Counter(h for r in emulator.log if r.embedded for h in r.item_hashes)
    texts = [f"document {i} on rivers" for i in range(140) if i not in (33, 120)]
    assert sorted(counts.values()) == [1] * 138
    assert set(counts) == {viking_hash(t) for t in texts}


def test_outage_aborts_then_resumes(make_emulator: Callable[..., Emulator], tmp_path: Path) -> None:
    src = corpus(tmp_path / "c.jsonl", 40)
    healthy = make_emulator()
    clean = tmp_path / "clean.parquet"
    run(healthy, src, clean)
    down = make_emulator(fault_rate=1.0, faults=("503",))
    out = tmp_path / "o.parquet"
    with viking(down, max_retries=0) as client:
        summary = embed_corpus(
            src, out, client=client, model=MODEL, dimension=512, batch_size=10,
            window_batches=3, max_rounds=1, round_delay=0.01,
        )  # fmt: skip
    assert summary.status == "aborted" and summary.exit_code == 3
    assert "kept failing" in summary.message and "resume" in summary.message
    resumed = run(healthy, src, out, resume=True)
    assert resumed.status == "complete" and out.read_bytes() == clean.read_bytes()


def test_generator_input_and_progress(emulator: Emulator, tmp_path: Path) -> None:
    stream = io.StringIO()
    progress = TqdmProgress(120_000, file=stream)
    items = ({"id": f"g{i}", "text": f"generated {i}"} for i in range(50))
    summary = run(emulator, items, tmp_path / "g.parquet", progress=progress)
    assert summary.input == "<generator>" and summary.rows == 50
    shown = stream.getvalue()
    assert "50/" in shown or "50it" in shown or "50 " in shown
    assert "item/s" in shown


def test_empty_input_gives_an_empty_file_with_the_schema(
    emulator: Emulator, tmp_path: Path
) -> None:
    src = tmp_path / "empty.jsonl"
    src.write_bytes(b"")
    summary = run(emulator, src, tmp_path / "e.parquet")
    table = pq.read_table(tmp_path / "e.parquet")
    assert summary.exit_code == 0 and table.num_rows == 0
    assert table.schema.field("dense").type == pa.list_(pa.float32(), 512)


def test_image_directory_with_fgclip(emulator: Emulator, tmp_path: Path) -> None:
    from mm_embed import FGClipClient

    images = tmp_path / "images"
    images.mkdir()
    for i, color in enumerate(["red", "green", "blue"]):
        Image.new("RGB", (24, 24), color).save(images / f"{i}.png")
    (images / "3.png").write_bytes(b"not a png")
    with FGClipClient(emulator.api_key, base_url=emulator.url) as client:
        summary = embed_corpus(images, tmp_path / "i.parquet", client=client)
    assert summary.exit_code == 1 and summary.rejected == 1
    table = pq.read_table(tmp_path / "i.parquet")
    assert table.schema.names == ["id", "box", "dense", "tokens"]
    assert table.column("id").to_pylist() == ["0.png", "1.png", "2.png"]
    assert table.column("box").to_pylist() == [-1, -1, -1]
    reject = orjson.loads((tmp_path / "i.parquet.rejects.jsonl").read_bytes())
    assert reject["id"] == "3.png" and reject["field"] == "image"
