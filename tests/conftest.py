"""Session-wide settings of both trees, and the emulator fixtures (imported lazily so
tests that do not use it need no server extras; ``tests/unit`` refuses sockets, so only
``tests/integration`` can use them). Each tree's own fixtures are in its conftest, its
helpers in its ``_helpers.py``."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from mm_embed.emulator import Emulator

# Before numpy loads: a multi-threaded OpenBLAS makes the emulator's small projection
# matmuls ~100x slower on a 2-core machine (measured 42 ms vs 0.3 ms per 32-text request,
# the threads mostly waiting), which made emulator-backed tests 5-7x slower end to end.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# Ray 2.60 authenticates its clients with a token, and caches the first it sees in the
# process: every test (the docs' Ray examples, tests/ray, the drivers they start) must
# use one, set here before any of them, and none is written to ~/.ray.
os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(32))


def _running_emulator() -> Iterator[Emulator]:
    """An emulator of the default config on a free loopback port, stopped after."""
    from mm_embed.emulator import Emulator

    with Emulator() as emu:
        yield emu


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """A fresh emulator per test."""
    yield from _running_emulator()


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    """One emulator per test module: its tests may clear its log, not change its config.
    A module that needs another config (faults, keys, latency) defines its own ``emu``."""
    yield from _running_emulator()


@pytest.fixture(scope="session")
def emulator_session() -> Iterator[Emulator]:
    """One emulator for the whole session; do not change its state (faults, log)."""
    yield from _running_emulator()


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
