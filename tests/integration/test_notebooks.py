"""The notebooks are run by nbmake as part of the plain ``pytest`` run (see pyproject).

These checks keep them fit for that: committed without outputs, on the ``python3``
kernel (the one of the running interpreter), starting and stopping the emulator, and
asserting their results so that a broken notebook fails instead of printing nonsense.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import nbformat
import pytest

from tests.integration._helpers import REPO as ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_at_least_three_notebooks() -> None:
    assert len(NOTEBOOKS) >= 3, [p.name for p in NOTEBOOKS]


def test_pytest_runs_the_notebooks() -> None:
    options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert "notebooks" in options["testpaths"]
    assert "--nbmake" in options["addopts"].split()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_clean_and_self_checking(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    assert notebook.metadata["kernelspec"]["name"] == "python3"

    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    for cell in code:
        assert cell.outputs == [], f"{path.name}: commit notebooks without outputs"
        assert cell.execution_count is None, f"{path.name}: commit notebooks unexecuted"
    assert notebook.cells[0].cell_type == "markdown", "each notebook opens with an introduction"
    assert "emulator" in notebook.cells[0].source.lower()

    sources = [cell.source for cell in code]
    assert any("Emulator().start()" in s for s in sources), "starts the emulator"
    assert "emu.stop()" in sources[-1], "the last cell stops the emulator"
    assert sum(s.count("assert ") for s in sources) >= 3, "checks its results"
    # Results stay in memory: no files written next to the notebook.
    assert not any("savefig" in s or re.search(r"(?<![.\w])open\(", s) for s in sources)
