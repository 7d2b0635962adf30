"""Fixtures of the explorer tests: a demo store and a running ``mm-embed explore``
process over it (headless Chromium: ``browser`` and ``page`` in
``tests/integration/conftest.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mm_embed.demo import DemoReport, run_demo
from tests.integration._helpers import PROVIDER_VARIABLES, explorer_process


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DemoReport]:
    """A store written by the demo (emulator vectors) and the demo's report."""
    store = tmp_path_factory.mktemp("explore") / "store"
    with pytest.MonkeyPatch.context() as patch:
        for name in PROVIDER_VARIABLES:
            patch.delenv(name, raising=False)
        report = run_demo(store=str(store), plot=None, html=None, progress=False)
    return store, report


@pytest.fixture(scope="module")
def demo_explorer(demo_store: tuple[Path, DemoReport]) -> Iterator[tuple[str, list[str]]]:
    """A running explorer over the demo's store: its URL and start lines."""
    with explorer_process(demo_store[0]) as running:
        yield running
