"""``mm-embed demo``: the main job end to end, and its error paths."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from mm_embed.demo import demo_main
from mm_embed.demo.pictures import PICTURES
from tests.integration._helpers import offline_env


def test_demo_json_report_has_three_result_blocks_and_a_plot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plot = tmp_path / "out" / "plot.png"
    assert demo_main(["--json", "--plot", str(plot), "--store", str(tmp_path / "store")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["providers"]["fgclip"].startswith("emulator at http://127.0.0.1:")
    assert set(report["rankings"]) == {"dense", "sparse", "hybrid"}
    assert report["rankings"]["hybrid"][0]["id"].startswith("k8s-")
    assert report["image_hits"][0]["image"] == "red-circle"
    best_box = report["box_hits"][0]
    picture = next(p for p in PICTURES if p.id == best_box["image"])
    assert picture.box_labels[best_box["box_index"]] == "green square"
    scores = report["ndcg_at_10"]
    assert scores["hybrid"] > max(scores["dense"], scores["sparse"])
    summary = report["summary"]
    assert summary["texts"] == 52 and summary["images"] == len(PICTURES) == 12
    assert summary["viking_tokens"] > 0 and summary["retries"] == 0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert report["plot"] == str(plot.resolve())
    assert (tmp_path / "store").is_dir()  # --store keeps the Qdrant files


def test_console_script_prints_the_result_blocks_and_plot_path(tmp_path: Path) -> None:
    env = offline_env()
    done = subprocess.run(
        [sys.executable, "-m", "mm_embed", "demo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    for heading in (
        "== Hybrid text query",
        "== Text -> image query",
        "== Text -> box (region) query",
    ):
        assert heading in out
    assert f"plot written to {tmp_path / 'mm-embed-demo.png'}" in out
    assert (tmp_path / "mm-embed-demo.png").stat().st_size > 10_000


def test_store_path_that_is_a_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "not-a-dir"
    target.write_text("x")
    assert demo_main(["--store", str(target), "--no-plot"]) == 2
    assert "is a file" in capsys.readouterr().err


def test_busy_port_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert demo_main(["--port", str(port), "--no-plot"]) == 2
    assert f"127.0.0.1:{port}" in capsys.readouterr().err


def test_bad_credentials_exit_non_zero_without_leaking_them(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from mm_embed.emulator import Emulator

    with Emulator() as emu:
        monkeypatch.setenv("FGCLIP_API_KEY", "wrong-fgclip-key-123")
        monkeypatch.setenv("FGCLIP_BASE_URL", emu.url)
        monkeypatch.setenv("VOLC_ACCESSKEY", emu.access_key)
        monkeypatch.setenv("VOLC_SECRETKEY", "wrong-secret-456")
        monkeypatch.setenv("VIKING_BASE_URL", emu.url)
        assert demo_main(["--no-plot"]) == 2
    captured = capsys.readouterr()
    assert "authentication failed" in captured.err
    assert "wrong-fgclip-key-123" not in captured.err + captured.out
    assert "wrong-secret-456" not in captured.err + captured.out


def test_store_and_server_together_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert demo_main(["--store", "x", "--qdrant-url", "http://localhost:6333"]) == 2
    assert "not both" in capsys.readouterr().err
