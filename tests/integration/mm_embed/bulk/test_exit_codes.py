"""``mm-embed embed`` exit codes, each from a real run: 0 complete, 1 complete with
rejects, 2 refused before starting, 3 aborted (resumable), 70 internal error (never 1),
130 interrupted (``test_resume_kill.py``)."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import pytest

from mm_embed.bulk import ExitCode
from mm_embed.bulk.cli import embed_main
from mm_embed.bulk.writers import OutputWriter
from mm_embed.config import EnvVar
from mm_embed.emulator import Emulator
from tests.integration._helpers import cli_env, embed_command


def test_the_table() -> None:
    assert {code.name: int(code) for code in ExitCode} == {
        "COMPLETE": 0,
        "REJECTS": 1,
        "REFUSED": 2,
        "ABORTED": 3,
        "CRASHED": 70,
        "INTERRUPTED": 130,
    }


@pytest.mark.timeout(120)
def test_exit_codes_of_real_runs(tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    good.write_bytes(b'{"id": "a", "text": "fine"}\n{"id": "b", "text": "also fine"}\n')
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"id": "a", "text": "fine"}\n{"id": "b", "text": 5}\n')

    def run(
        src: Path, out: str, *extra: str, env: dict[str, str]
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            embed_command(src, tmp_path / out, *extra),
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    with Emulator() as emu:
        env = cli_env(emu)
        wrong_key = env | {EnvVar.VOLC_SECRETKEY.value: "not-the-secret"}
        cases = [
            (run(good, "0.parquet", env=env), 0, "complete"),
            (run(bad, "1.parquet", env=env), 1, "1 rejected"),
            (run(good, "0.parquet", env=env), 2, "--overwrite"),  # the output exists
            (run(good, "x.parquet", "--batch-size", "0", env=env), 2, "must be >= 1"),
            (run(bad, "3s.parquet", "--strict", env=env), 3, "resume"),
            (run(good, "3a.parquet", env=wrong_key), 3, "refused the run"),
        ]
    for done, code, said in cases:
        assert done.returncode == code, (code, done.args, done.stderr)
        assert said in done.stderr, (said, done.stderr)
        assert "Traceback" not in done.stderr


def test_an_internal_error_exits_70_with_the_traceback_in_a_file(
    emulator_env: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    def broken_write(self: OutputWriter, table: object) -> None:
        raise RuntimeError("a bug in the writer")

    monkeypatch.setattr(OutputWriter, "write", broken_write)
    src = tmp_path / "c.jsonl"
    src.write_bytes(b'{"id": "a", "text": "fine"}\n')
    code = embed_main(
        ["--provider", "viking", "--model", "doubao-embedding", "--input", str(src),
         "--output", str(tmp_path / "o.parquet"), "--no-progress"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 70, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "RuntimeError: a bug in the writer" in lines[0]
    reports = list(tmp_path.glob("mm-embed-crash-*.txt"))
    assert len(reports) == 1 and str(reports[0]) in lines[0]
    report = reports[0].read_text()
    assert "Traceback" in report and "broken_write" in report
