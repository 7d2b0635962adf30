"""Fixtures of the demo tests: no provider credentials (the emulator answers) and a
fresh working directory (headless Chromium for the HTML report: ``browser`` and
``page`` in ``tests/integration/conftest.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _no_credentials(
    no_provider_credentials: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
