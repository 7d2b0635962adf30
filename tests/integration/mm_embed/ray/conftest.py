"""Fixtures of the Ray tests (the session's Ray instance, ``ray_cluster``, is in
``tests/integration/conftest.py``: the Ray benchmark's smoke test uses it too)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from mm_embed.emulator import Emulator
    from tests.integration._helpers import RayCluster


@pytest.fixture
def emulator_env(ray_cluster: RayCluster, emulator_env: Emulator) -> Emulator:
    """The test's emulator, its credentials in this (the driver's) environment only,
    set once Ray runs: they reach the Ray workers through runtime_env, never through
    the environment the workers were started with."""
    return emulator_env
