"""``mm-embed embed`` / ``python -m mm_embed.bulk``: arguments, messages, exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest

from mm_embed.bulk.cli import embed_main
from mm_embed.cli import main as mm_embed_main
from mm_embed.config import EnvVar
from mm_embed.emulator import Emulator


@pytest.fixture
def env(emulator_env: Emulator) -> Emulator:
    return emulator_env


def write(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def args(src: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--provider", "viking", "--model", "bge-m3", "--sparse",
        "--input", str(src), "--output", str(out), "--no-progress", *extra,
    ]  # fmt: skip


def test_success_prints_the_summary(
    env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write(
        tmp_path / "c.jsonl", [orjson.dumps({"id": i, "text": f"t {i}"}) for i in range(30)]
    )
    out = tmp_path / "o.parquet"
    summary_json = tmp_path / "s.json"
    assert embed_main(args(src, out, "--summary-json", str(summary_json))) == 0
    err = capsys.readouterr().err
    for word in (
        "complete",
        "30 read",
        "client calls",
        "retries",
        "tokens",
        "/min",
        "budget 120,000",
    ):
        assert word in err, word
    table = pq.read_table(out)
    assert table.schema.names == ["id", "dense", "sparse_indices", "sparse_values", "tokens"]
    assert table.num_rows == 30
    summary = orjson.loads(summary_json.read_bytes())
    assert summary["items"] == 30 and summary["status"] == "complete" and summary["wall_time"] > 0


def test_rejects_exit_1_and_strict_exits_3_naming_the_line(
    env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write(
        tmp_path / "c.jsonl",
        [b'{"id": "a", "text": "fine"}', b'{"id": "b", "text": 5}', b'{"id": "c", "text": "ok"}'],
    )
    assert embed_main(args(src, tmp_path / "o.parquet")) == 1
    err = capsys.readouterr().err
    assert "1 rejected" in err and "o.parquet.rejects.jsonl" in err
    reject = orjson.loads((tmp_path / "o.parquet.rejects.jsonl").read_bytes())
    assert reject["location"] == f"{src}:2" and reject["field"] == "text"
    assert embed_main(args(src, tmp_path / "s.parquet", "--strict")) == 3
    err = capsys.readouterr().err
    assert f"{src}:2: 'text' must be a string" in err and "resume" in err


def test_file_level_errors_exit_2(
    env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write(tmp_path / "c.jsonl", [b'{"key": "a", "body": "x"}'])
    assert embed_main(args(src, tmp_path / "o.parquet")) == 2
    assert f"{src}:1: no 'id'" in capsys.readouterr().err
    assert embed_main(args(tmp_path / "missing.jsonl", tmp_path / "o.parquet")) == 2
    assert "does not exist" in capsys.readouterr().err
    assert embed_main(["--provider", "viking", "--input", str(src), "--output", "x.parquet"]) == 2
    assert "--model is required" in capsys.readouterr().err
    bad_model = args(src, tmp_path / "o.parquet")
    bad_model[3] = "no-such-model"
    assert embed_main(bad_model) == 2
    assert "unknown model" in capsys.readouterr().err


def test_missing_credentials_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in (
        EnvVar.FGCLIP_API_KEY,
        EnvVar.VOLC_ACCESSKEY,
        EnvVar.VOLC_SECRETKEY,
        EnvVar.VIKING_TOKEN,
    ):
        monkeypatch.delenv(name.value, raising=False)
    src = write(tmp_path / "c.jsonl", [b'{"id": "a", "text": "x"}'])
    code = embed_main(
        ["--provider", "fgclip", "--input", str(src), "--output", str(tmp_path / "o.jsonl")]
    )
    assert code == 2 and EnvVar.FGCLIP_API_KEY.value in capsys.readouterr().err


def test_dispatcher_and_module_entry_points(env: Emulator, tmp_path: Path) -> None:
    src = write(tmp_path / "c.jsonl", [b'{"id": "a", "text": "x"}'])
    out = tmp_path / "o.jsonl"
    assert mm_embed_main(["embed", *args(src, out)]) == 0
    assert orjson.loads(out.read_bytes())["id"] == "a"
    shown = subprocess.run(
        [sys.executable, "-m", "mm_embed.bulk", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "--resume" in shown and "--tokens-per-minute" in shown and "exit status" in shown
