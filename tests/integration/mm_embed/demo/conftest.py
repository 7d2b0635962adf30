"""Fixtures of the demo tests: no provider credentials (the emulator answers), a fresh
working directory, and headless Debian Chromium for the HTML report."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from mm_embed.config import EnvVar
from mm_embed.explore.browser import chromium

#: Provider credentials and endpoints: unset, so the demo starts the emulator.
CREDENTIAL_VARIABLES = tuple(f"{v}" for v in EnvVar if v is not EnvVar.MM_EMBED_BUDGET)


@pytest.fixture(autouse=True)
def _no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium, one per test module."""
    with chromium() as launched:
        yield launched
