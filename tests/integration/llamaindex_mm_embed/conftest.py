"""Fixtures for the LlamaIndex adapter tests: sample image files, and a clean
environment and ``Settings`` per test (the helpers: ``tests/integration/_helpers.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.integration._helpers import COLOURS, TILE, solid_png

if TYPE_CHECKING:
    pass


@pytest.fixture(autouse=True)
def clean_env(no_provider_env: None) -> None:
    """No provider variable leaks in from the machine: each test sets what it needs."""


@pytest.fixture(autouse=True)
def clean_settings() -> Iterator[None]:
    """Restore LlamaIndex's global ``Settings`` after each test."""
    from llama_index.core import Settings

    embed, llm = Settings._embed_model, Settings._llm
    yield
    Settings._embed_model, Settings._llm = embed, llm


@pytest.fixture
def images(tmp_path: Path) -> dict[str, Path]:
    """One solid-colour PNG file per colour in :data:`COLOURS`, in ``tmp_path / "tiles"``.

    File names do not name the colour, so no metadata can help a retrieval test."""
    folder = tmp_path / "tiles"
    folder.mkdir()
    paths = {}
    for i, colour in enumerate(COLOURS):
        path = folder / f"tile{i}.png"
        path.write_bytes(solid_png(colour, TILE))
        paths[colour] = path
    return paths
