"""Every Python block of docs/llamaindex.md runs against the emulator and prints what it
shows (the same rules as tests/test_readme.py, which runs them once merged into README)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mm_embed.emulator import Emulator

DOC = Path(__file__).resolve().parents[2] / "docs" / "llamaindex.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def python_blocks() -> list[tuple[int, str]]:
    text = DOC.read_text(encoding="utf-8")
    return [
        (text.count("\n", 0, m.start()) + 1, m.group(2))
        for m in FENCE.finditer(text)
        if m.group(1) == "python"
    ]


BLOCKS = python_blocks()

#: What each example must print (in order of the blocks).
EXPECTED = [
    "Bananas are long yellow fruit",
    "tile2.png",
    "best box: 1",
    "2048 2048 2048",
    "red circles {",
    "Penguins are flightless seabirds",
    "Chess is a strategy board game",
]


def test_every_class_has_an_example() -> None:
    code = "\n".join(block for _, block in BLOCKS)
    for name in (
        "FGClipEmbedding",
        "VikingEmbedding",
        "VikingSparseEmbedding",
        "viking_hybrid_fns",
        "qdrant_sparse_fns",
    ):
        assert name + "(" in code, name
    assert len(BLOCKS) == len(EXPECTED)


@pytest.mark.filterwarnings("ignore:Payload indexes have no effect:UserWarning")
@pytest.mark.parametrize(
    ("line_no", "code", "expected"),
    [(n, code, want) for (n, code), want in zip(BLOCKS, EXPECTED, strict=False)],
    ids=[f"line{n}" for n, _ in BLOCKS],
)
def test_python_block_runs(
    line_no: int,
    code: str,
    expected: str,
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
    exec(compile(code, f"docs/llamaindex.md:{line_no}", "exec"), {"__name__": "__doc__"})
    out = capsys.readouterr().out
    assert expected in out, out
