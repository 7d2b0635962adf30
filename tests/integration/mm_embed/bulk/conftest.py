"""Fixtures of the bulk tests."""

from __future__ import annotations

import pytest

from mm_embed.config import EnvVar
from mm_embed.emulator import Emulator

from .harness import emulator_settings


@pytest.fixture
def emulator_env(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    """The test's emulator, with both providers' variables pointing at it (for runs of
    the command in this process)."""
    for name, value in emulator_settings(emulator).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv(EnvVar.VIKING_TOKEN.value, raising=False)
    return emulator
