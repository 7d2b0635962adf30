"""Importing a package prints nothing and warns about nothing: users run with
``-W error`` in their own test suites."""

from __future__ import annotations

import subprocess
import sys

import pytest

PACKAGES = [
    "mm_embed",
    "mm_embed.hybrid",
    "mm_embed.bulk",
    "mm_embed.budgets",
    "langchain_mm_embed",
    "llamaindex_mm_embed",
]


@pytest.mark.parametrize("package", PACKAGES)
def test_import_emits_no_warning(package: str) -> None:
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", f"import {package}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
