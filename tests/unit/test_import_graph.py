"""No import cycles in the three packages (``mm_embed``, ``langchain_mm_embed``,
``llamaindex_mm_embed``).

The graph is read from the source with :mod:`ast`, not by importing: an edge is an
import that runs when the module is imported (module level, also inside ``try`` / ``if``
/ class bodies, relative or absolute), towards the most specific module it names
(``from pkg import sub`` goes to ``pkg.sub`` when ``sub`` is a module, else to ``pkg``).
Imports under ``if TYPE_CHECKING:`` and inside functions do not run at import time and
are left out. A package importing itself (``from . import x`` inside ``pkg/__init__``)
is not a cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit._helpers import REPO as ROOT

PACKAGES = {
    "mm_embed": ROOT / "shared" / "mm_embed",
    "langchain_mm_embed": ROOT / "langchain_mm_embed",
    "llamaindex_mm_embed": ROOT / "llamaindex_mm_embed",
}


def module_files() -> dict[str, Path]:
    """Every module of the three packages by dotted name (packages by their name)."""
    found: dict[str, Path] = {}
    for package, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            parts = [package, *path.relative_to(folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def runtime_imports(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    """Import statements that run when the module is imported."""
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        elif isinstance(node, ast.If):
            pending.extend(node.orelse)
            if not _is_type_checking(node.test):
                pending.extend(node.body)
        elif isinstance(node, ast.ClassDef):
            pending.extend(node.body)
        elif isinstance(node, ast.Try):
            pending.extend([*node.body, *node.orelse, *node.finalbody])
            for handler in node.handlers:
                pending.extend(handler.body)
        elif isinstance(node, (ast.With, ast.For, ast.While)):
            pending.extend([*node.body, *getattr(node, "orelse", [])])


def _base(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    parts = module.split(".")
    if not is_package:
        parts.pop()
    parts = parts[: len(parts) - (node.level - 1)]
    return ".".join([*parts, *([node.module] if node.module else [])])


def import_graph() -> dict[str, set[str]]:
    """``{module: modules of the three packages it imports at import time}``."""
    files = module_files()
    graph: dict[str, set[str]] = {name: set() for name in files}
    for module, path in files.items():
        is_package = path.name == "__init__.py"
        for node in runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = _base(module, is_package, node)
                targets = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in files else base
                    for alias in node.names
                ]
            for target in targets:
                # ``import a.b.c`` names a.b.c; the closest module we know of is the edge.
                while target and target not in files:
                    target = target.rpartition(".")[0]
                if target and target != module:
                    graph[module].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph.get(node, ())):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_the_packages_and_their_imports() -> None:
    graph = import_graph()
    assert {"mm_embed", "langchain_mm_embed", "llamaindex_mm_embed"} <= set(graph)
    assert "mm_embed.config" in graph["mm_embed.adapter_support"]
    assert "mm_embed.providers.viking.protocol" in graph["mm_embed.providers.viking.client"]
    assert any(target.startswith("mm_embed") for target in graph["langchain_mm_embed.viking"])


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    tree = ast.parse(
        "import os\nfrom typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    import hidden\n"
        "def f():\n    import lazy\n"
        "try:\n    import tried\nexcept ImportError:\n    import fallback\n"
    )
    names = sorted(alias.name for node in runtime_imports(tree) for alias in node.names)
    assert names == ["TYPE_CHECKING", "fallback", "os", "tried"]


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_no_import_cycles(package: str) -> None:
    graph = import_graph()
    found = [c for c in cycles(graph) if any(m.split(".")[0] == package for m in c)]
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(c) for c in found)
