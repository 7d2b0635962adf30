"""Fixtures for the LlamaIndex adapter tests: credentials for the emulator, sample images,
the emulator's request log, and a clean environment and ``Settings`` per test."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from PIL import Image

from mm_embed.config import EnvVar

if TYPE_CHECKING:
    from mm_embed.emulator import Emulator

COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 160, 50),
    "blue": (30, 60, 220),
    "yellow": (240, 220, 30),
    "purple": (130, 40, 170),
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No provider variable leaks in from the machine: each test sets what it needs."""
    for variable in EnvVar:
        monkeypatch.delenv(variable, raising=False)


@pytest.fixture(autouse=True)
def clean_settings() -> Iterator[None]:
    """Restore LlamaIndex's global ``Settings`` after each test."""
    from llama_index.core import Settings

    embed, llm = Settings._embed_model, Settings._llm
    yield
    Settings._embed_model, Settings._llm = embed, llm


def fg_kwargs(emu: Emulator) -> dict[str, Any]:
    return {"api_key": emu.api_key, "base_url": emu.url}


def viking_kwargs(emu: Emulator) -> dict[str, Any]:
    return {"access_key": emu.access_key, "secret_key": emu.secret_key, "base_url": emu.url}


def embed_requests(emu: Emulator, route: str) -> list[Any]:
    """Embedding requests that returned vectors, oldest first."""
    return [r for r in emu.log if r.route == route and r.embedded]


def solid_png(colour: str, size: tuple[int, int] = (64, 64)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, COLOURS[colour]).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def images(tmp_path: Path) -> dict[str, Path]:
    """One solid-colour PNG file per colour in :data:`COLOURS`, in ``tmp_path / "tiles"``.

    File names do not name the colour, so no metadata can help a retrieval test."""
    folder = tmp_path / "tiles"
    folder.mkdir()
    paths = {}
    for i, colour in enumerate(COLOURS):
        path = folder / f"tile{i}.png"
        path.write_bytes(solid_png(colour))
        paths[colour] = path
    return paths
