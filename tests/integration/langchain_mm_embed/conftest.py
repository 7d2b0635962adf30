"""Fixtures for the LangChain adapter tests: a clean provider environment and adapters
pointed at the per-test emulator."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from langchain_mm_embed import FGClipEmbeddings, VikingEmbeddings

if TYPE_CHECKING:
    from mm_embed.emulator import Emulator


@pytest.fixture(autouse=True)
def _clean_provider_env(no_provider_env: None) -> None:
    """Credentials in the developer's shell must not change what these tests see."""


@pytest.fixture
def fgclip(emulator: Emulator) -> FGClipEmbeddings:
    return FGClipEmbeddings(api_key=emulator.api_key, base_url=emulator.url, max_retries=0)


@pytest.fixture
def viking_settings(emulator: Emulator) -> dict[str, Any]:
    """Constructor arguments reaching the emulator with AK/SK signatures."""
    return {
        "access_key": emulator.access_key,
        "secret_key": emulator.secret_key,
        "base_url": emulator.url,
        "max_retries": 0,
    }


@pytest.fixture
def viking(viking_settings: dict[str, Any]) -> VikingEmbeddings:
    return VikingEmbeddings(model="doubao-embedding", dimension=1024, **viking_settings)


@pytest.fixture
def requests_on(emulator: Emulator) -> Callable[[str], int]:
    """``requests_on(route)``: embedding requests the emulator answered on ``route``
    (``"fgclip"`` or ``"viking"``) since the test began."""

    def count(route: str) -> int:
        return sum(1 for r in emulator.log if r.route == route and r.embedded)

    return count
