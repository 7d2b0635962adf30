"""Every code block in README.md runs.

Python blocks are executed as they are, each in a fresh namespace and a temporary
directory, with the provider variables pointing at a running emulator. Shell blocks:
the two set-up commands at the top are what CI runs (and ``tests/demo`` runs the demo
command itself); every other ``mm-embed`` line is run here (``mm-embed serve`` is
started, must print its ``listening on`` line, and is stopped).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)
SETUP_MARKERS = ("<!-- demo-command -->", "<!-- test-command -->")


def _blocks(language: str) -> list[tuple[int, str]]:
    text = README.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        if match.group(1) != language:
            continue
        before = text[: match.start()].rstrip()
        if before.endswith(SETUP_MARKERS):
            continue  # the set-up commands: CI runs them verbatim
        found.append((text.count("\n", 0, match.start()) + 1, match.group(2)))
    return found


PYTHON_BLOCKS = _blocks("python")
SHELL_LINES = [
    (line_no, line.strip())
    for line_no, block in _blocks("bash")
    for line in block.splitlines()
    if line.strip() and not line.strip().startswith("#")
]


def test_readme_has_the_two_setup_commands_first() -> None:
    text = README.read_text(encoding="utf-8")
    first_fences = [m.group(2).strip() for m in FENCE.finditer(text)][:2]
    assert first_fences[0].endswith("mm-embed demo")
    assert first_fences[1].endswith("pytest")
    assert len(PYTHON_BLOCKS) >= 5


@pytest.fixture
def readme_env(emulator_session: object, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    emu = emulator_session
    monkeypatch.setenv("FGCLIP_API_KEY", emu.api_key)  # type: ignore[attr-defined]
    monkeypatch.setenv("FGCLIP_BASE_URL", emu.url)  # type: ignore[attr-defined]
    monkeypatch.setenv("VOLC_ACCESSKEY", emu.access_key)  # type: ignore[attr-defined]
    monkeypatch.setenv("VOLC_SECRETKEY", emu.secret_key)  # type: ignore[attr-defined]
    monkeypatch.setenv("VIKING_BASE_URL", emu.url)  # type: ignore[attr-defined]
    monkeypatch.delenv("VIKING_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)
    yield


@pytest.mark.parametrize(("line_no", "code"), PYTHON_BLOCKS, ids=[f"line{n}" for n, _ in PYTHON_BLOCKS])
def test_python_block_runs(
    line_no: int, code: str, readme_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    exec(compile(code, f"README.md:{line_no}", "exec"), {"__name__": "__readme__"})
    assert capsys.readouterr().out.strip(), "every README example prints what it shows"


def _run_serve(command: list[str], env: dict[str, str]) -> None:
    command = [a for a in command]
    if "--port" in command:
        command[command.index("--port") + 1] = "0"  # the documented port may be taken here
    process = subprocess.Popen(
        [sys.executable, "-m", "mm_embed", *command[1:]],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 30
        line = ""
        while time.monotonic() < deadline and not line:
            line = process.stdout.readline()
        assert line.startswith("listening on http://127.0.0.1:"), line
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.parametrize(("line_no", "line"), SHELL_LINES, ids=[f"line{n}" for n, _ in SHELL_LINES])
def test_shell_line_runs(line_no: int, line: str, tmp_path: Path) -> None:
    command = shlex.split(line.split(">")[0])
    assert command[0] == "mm-embed", f"README.md:{line_no}: only mm-embed commands are documented"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FGCLIP_", "VOLC_", "VIKING_"))}
    if command[1] == "serve":
        _run_serve(command, env)
        return
    done = subprocess.run(
        [sys.executable, "-m", "mm_embed", *command[1:]],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    if ">" in line:
        target = tmp_path / line.split(">")[1].strip()
        target.write_text(done.stdout)
        assert target.stat().st_size > 0
