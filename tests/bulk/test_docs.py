"""Every code block of docs/bulk.md runs against the emulator, in order, in one
directory (the shell example reads the corpus the Python example before it wrote); a
Python block followed by a ``text`` block must print exactly that."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from mm_embed.emulator import Emulator

DOC = Path(__file__).resolve().parents[2] / "docs" / "bulk.md"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def blocks() -> list[tuple[str, int, str]]:
    text = DOC.read_text(encoding="utf-8")
    return [
        (m.group(1), text.count("\n", 0, m.start()) + 1, m.group(2)) for m in FENCE.finditer(text)
    ]


def test_every_block_runs(
    emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = {
        "FGCLIP_API_KEY": emulator.api_key,
        "FGCLIP_BASE_URL": emulator.url,
        "VOLC_ACCESSKEY": emulator.access_key,
        "VOLC_SECRETKEY": emulator.secret_key,
        "VIKING_BASE_URL": emulator.url,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("VIKING_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)
    found = blocks()
    ran = {"python": 0, "bash": 0}
    for k, (language, line_no, code) in enumerate(found):
        if language == "python":
            exec(compile(code, f"docs/bulk.md:{line_no}", "exec"), {"__name__": "__docs__"})
            printed = capsys.readouterr().out
            assert printed.strip(), f"docs/bulk.md:{line_no} prints nothing"
            after = found[k + 1] if k + 1 < len(found) else None
            if after is not None and after[0] == "text":
                assert printed == after[2], f"docs/bulk.md:{line_no}"
            ran["python"] += 1
        elif language == "bash":
            for command in code.splitlines():
                args = shlex.split(command)
                assert args[:2] == ["mm-embed", "embed"], command
                done = subprocess.run(
                    [sys.executable, "-m", "mm_embed", *args[1:], "--no-progress"],
                    capture_output=True,
                    text=True,
                    timeout=120,
                    check=False,
                )
                assert done.returncode == 0, f"docs/bulk.md:{line_no}: {done.stderr[-2000:]}"
                ran["bash"] += 1
    assert ran == {"python": 2, "bash": 2}
    assert len((tmp_path / "vectors.jsonl").read_text().splitlines()) == 1200
    assert not (tmp_path / "vectors.jsonl.parts").exists()
