"""Shared fixtures: a running local emulator (imported lazily so tests that do not use
it need no server extras)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from mm_embed.emulator import Emulator

# Before numpy loads: a multi-threaded OpenBLAS makes the emulator's small projection
# matmuls ~100x slower on a 2-core machine (measured 42 ms vs 0.3 ms per 32-text request,
# the threads mostly waiting), which made emulator-backed tests 5-7x slower end to end.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """A fresh emulator per test (default config, free loopback port)."""
    from mm_embed.emulator import Emulator

    with Emulator() as emu:
        yield emu


@pytest.fixture(scope="session")
def emulator_session() -> Iterator[Emulator]:
    """One emulator for the whole session; do not change its state (faults, log)."""
    from mm_embed.emulator import Emulator

    with Emulator() as emu:
        yield emu


@pytest.fixture
def make_emulator() -> Iterator[Callable[..., Emulator]]:
    """``make_emulator(**config)`` starts an emulator that is stopped after the test."""
    from mm_embed.emulator import Emulator

    started: list[Emulator] = []

    def make(**config: Any) -> Emulator:
        emu = Emulator(**config).start()
        started.append(emu)
        return emu

    yield make
    for emu in started:
        emu.stop()
