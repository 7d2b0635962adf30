"""The benchmark scripts stand on their own: nothing under ``benchmarks/`` imports from
``tests/`` or puts it on ``sys.path`` (the tests may import the benchmarks' helpers, never
the other way round)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.unit._helpers import REPO

BENCHMARKS = REPO / "benchmarks"


#: Module names only the tests provide: the tests' package, its two trees, their
#: helpers and conftests, and any test module.
TEST_ONLY = ("tests", "unit", "integration", "_helpers", "conftest")


def only_in_tests(module: str) -> bool:
    root = module.split(".")[0]
    return root in TEST_ONLY or root.startswith("test_")


def problems(source: str) -> list[str]:
    """What in ``source`` imports a test module or names the tests' folder (the way in
    for a ``sys.path`` entry that would let it import one under another name)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
        else:
            modules = []
        if isinstance(node, ast.Import | ast.ImportFrom):
            found += [(node.lineno, f"imports {m}") for m in modules if only_in_tests(m)]
        if isinstance(node, ast.Constant) and "tests" in Path(str(node.value)).parts:
            found.append((node.lineno, f"names the tests' folder ({node.value!r})"))
    return [f"line {line}: {what}" for line, what in sorted(found)]


def test_the_checker_sees_both_ways_in() -> None:
    source = (
        "import sys\nfrom pathlib import Path\n"
        "sys.path.insert(0, str(Path(__file__).parent.parent / 'tests'))\n"
        "from bulk.harness import kill_and_resume\nimport tests.integration._helpers\n"
        "from _harness import ratio_line\n"
    )
    assert problems(source) == [
        "line 3: names the tests' folder ('tests')",
        "line 5: imports tests.integration._helpers",
    ]
    assert problems("import conftest\nfrom integration import x\nimport ray, numpy\n") == [
        "line 1: imports conftest",
        "line 2: imports integration",
    ]


@pytest.mark.parametrize("script", sorted(p.name for p in BENCHMARKS.glob("*.py")))
def test_no_benchmark_imports_the_tests(script: str) -> None:
    assert problems((BENCHMARKS / script).read_text(encoding="utf-8")) == []
