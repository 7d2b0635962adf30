"""Every Python block of docs/langchain.md runs against the emulator, as it is, in a
fresh namespace and a temporary directory, and prints what it shows."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from mm_embed.emulator import Emulator

DOC = Path(__file__).resolve().parents[2] / "docs" / "langchain.md"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def _python_blocks() -> list[tuple[int, str]]:
    text = DOC.read_text(encoding="utf-8")
    return [
        (text.count("\n", 0, m.start()) + 1, m.group(2))
        for m in FENCE.finditer(text)
        if m.group(1) == "python"
    ]


BLOCKS = _python_blocks()

# What each example prints first, on the emulator's deterministic vectors.
EXPECTED_FIRST_LINES = [
    "a red circle",
    "green.png",
    "right",
    None,  # async: counts and a vector prefix
    "bananas are rich in potassium",
    "2 2 1 2048",
    "hybrid retrieval fuses lexical and semantic rankings",
]


def test_every_class_has_an_example() -> None:
    assert len(BLOCKS) == len(EXPECTED_FIRST_LINES)
    code = "\n".join(block for _, block in BLOCKS)
    for name in ("FGClipEmbeddings", "VikingEmbeddings", "VikingSparseEmbeddings"):
        assert f"from langchain_mm_embed import {name}" in code or f", {name}" in code


@pytest.mark.parametrize(
    ("line_no", "code", "expected"),
    [(n, c, e) for (n, c), e in zip(BLOCKS, EXPECTED_FIRST_LINES, strict=True)],
    ids=[f"line{n}" for n, _ in BLOCKS],
)
def test_python_block_runs(
    line_no: int,
    code: str,
    expected: str | None,
    emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("FGCLIP_API_KEY", emulator.api_key)
    monkeypatch.setenv("FGCLIP_BASE_URL", emulator.url)
    monkeypatch.setenv("VOLC_ACCESSKEY", emulator.access_key)
    monkeypatch.setenv("VOLC_SECRETKEY", emulator.secret_key)
    monkeypatch.setenv("VIKING_BASE_URL", emulator.url)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, f"docs/langchain.md:{line_no}", "exec"), {"__name__": "__docs__"})
    out = capsys.readouterr().out.strip()
    assert out, "every example prints what it shows"
    if expected is not None:
        assert out.splitlines()[0] == expected
