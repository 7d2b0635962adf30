"""Every code block in README.md is executed or checked.

* Python blocks run as they are, each in a fresh namespace, with the provider variables
  pointing at a running emulator, in one working directory shared by every block (as a
  reader following along would: a later block may read a file an earlier one wrote). A block followed by a
  paragraph starting ``Output`` and a ``text`` block must print those lines: each line of
  the text block begins a printed line, in order.
* Shell blocks: the two set-up commands at the top are what CI runs (and ``tests/demo``
  runs the demo itself); every other ``mm-embed`` line runs here (``mm-embed serve`` is
  started, must print its ``listening on`` line, and is stopped); ``pytest`` lines must
  name paths the plain ``pytest`` run already covers.
* ``pip install "mm-embed[...]"`` lines anywhere must name extras that exist.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.S | re.M)
OUTPUT = re.compile(r"\A\s*Output[^\n]*:\s*\n\s*```text\n(.*?)^```", re.S | re.M)
SETUP_MARKERS = ("<!-- demo-command -->", "<!-- test-command -->")
TEXT = README.read_text(encoding="utf-8")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _fences() -> list[tuple[int, str, str, str]]:
    """(line, language, code, expected output) of every fenced block but the set-up ones."""
    found = []
    for match in FENCE.finditer(TEXT):
        if TEXT[: match.start()].rstrip().endswith(SETUP_MARKERS):
            continue  # the set-up commands: CI runs them verbatim
        output = OUTPUT.match(TEXT, match.end())
        found.append(
            (
                TEXT.count("\n", 0, match.start()) + 1,
                match.group(1),
                match.group(2),
                output.group(1) if output else "",
            )
        )
    return found


FENCES = _fences()
PYTHON_BLOCKS = [(n, code, out) for n, lang, code, out in FENCES if lang == "python"]
SHELL_LINES = [
    (n, line.strip())
    for n, lang, code, _ in FENCES
    if lang == "bash"
    for line in code.splitlines()
    if line.strip() and not line.strip().startswith("#")
]
PIP_LINES = [
    (n, line.strip())
    for n, _, code, _ in FENCES
    for line in code.splitlines()
    if line.strip().startswith("pip install")
]


def test_readme_has_the_two_setup_commands_first() -> None:
    first_fences = [m.group(2).strip() for m in FENCE.finditer(TEXT)][:2]
    assert first_fences[0].endswith("mm-embed demo")
    assert first_fences[1].endswith("pytest")
    assert len(PYTHON_BLOCKS) >= 20


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("readme")


def _provider_env(emu: Any) -> dict[str, str]:
    return {
        "FGCLIP_API_KEY": emu.api_key,
        "FGCLIP_BASE_URL": emu.url,
        "VOLC_ACCESSKEY": emu.access_key,
        "VOLC_SECRETKEY": emu.secret_key,
        "VIKING_BASE_URL": emu.url,
    }


@pytest.fixture
def readme_env(
    emulator_session: Any, monkeypatch: pytest.MonkeyPatch, workdir: Path
) -> Iterator[None]:
    for name, value in _provider_env(emulator_session).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("VIKING_TOKEN", raising=False)
    monkeypatch.chdir(workdir)
    yield
    if "llama_index.core" in sys.modules:  # an example sets the global embed model
        from llama_index.core import Settings

        Settings._embed_model = None


@pytest.mark.filterwarnings("ignore:Payload indexes have no effect:UserWarning")
@pytest.mark.parametrize(
    ("line_no", "code", "expected"), PYTHON_BLOCKS, ids=[f"line{n}" for n, _, _ in PYTHON_BLOCKS]
)
def test_python_block_runs(
    line_no: int, code: str, expected: str, readme_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    exec(compile(code, f"README.md:{line_no}", "exec"), {"__name__": "__readme__"})
    printed = capsys.readouterr().out.splitlines()
    assert printed, "every README example prints what it shows"
    position = 0
    for want in (line for line in expected.splitlines() if line.strip()):
        while position < len(printed) and not printed[position].startswith(want):
            position += 1
        assert position < len(printed), f"README.md:{line_no}: {want!r} not printed: {printed}"
        position += 1


def _run_serve(command: list[str], env: dict[str, str]) -> None:
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
def test_shell_line_runs(line_no: int, line: str, workdir: Path, emulator_session: Any) -> None:
    command = shlex.split(line.split(">")[0])
    if command[0] == "pytest":
        # Covered by the plain ``pytest`` run itself: the paths must be in its testpaths.
        paths = [a for a in command[1:] if not a.startswith("-")]
        testpaths = PYPROJECT["tool"]["pytest"]["ini_options"]["testpaths"]
        assert paths and all((ROOT / p).exists() and p.rstrip("/") in testpaths for p in paths)
        return
    assert command[0] == "mm-embed", f"README.md:{line_no}: undocumented kind of command"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FGCLIP_", "VOLC_", "VIKING_"))}
    env.update(_provider_env(emulator_session))
    if command[1] == "serve":
        _run_serve(command, env)
        return
    done = subprocess.run(
        [sys.executable, "-m", "mm_embed", *command[1:]],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    if ">" in line:
        target = workdir / line.split(">")[1].strip()
        target.write_text(done.stdout)
        assert target.stat().st_size > 0


@pytest.mark.parametrize(("line_no", "line"), PIP_LINES, ids=[f"line{n}" for n, _ in PIP_LINES])
def test_pip_line_names_real_extras(line_no: int, line: str) -> None:
    extras = PYPROJECT["project"]["optional-dependencies"]
    named = re.findall(r"mm-embed\[([^\]]+)\]", line) or re.findall(r"\.\[([^\]]+)\]", line)
    assert named, f"README.md:{line_no}: {line}"
    for group in named:
        for extra in group.split(","):
            assert extra.strip() in extras, f"README.md:{line_no}: no extra {extra!r}"
