"""Fixtures of the Ray tests: one local Ray instance for the session (2 CPUs, no
dashboard, a namespace of its own), shut down at the end, so no Ray process outlives
the tests."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator

import pytest
import ray
import ray.data
from rayhelp import RayCluster, emulator_settings

from mm_embed.config import EnvVar
from mm_embed.emulator import Emulator

_TOKEN = "RAY_AUTH_TOKEN"


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[RayCluster]:
    namespace = f"mm-embed-tests-{uuid.uuid4().hex[:8]}"
    # tests/conftest.py sets RAY_AUTH_TOKEN for the whole session (Ray caches the first
    # token it sees); it reaches the drivers the tests start as subprocesses too.
    assert os.environ.get(_TOKEN), "tests/conftest.py sets RAY_AUTH_TOKEN"
    context = ray.init(
        num_cpus=2,
        include_dashboard=False,
        namespace=namespace,
        ignore_reinit_error=True,
        logging_level=logging.WARNING,
    )
    ray.data.DataContext.get_current().enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    try:
        yield RayCluster(address=context.address_info["gcs_address"], namespace=namespace)
    finally:
        ray.shutdown()


@pytest.fixture
def emulator_env(
    ray_cluster: RayCluster, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> Emulator:
    """The test's emulator, its credentials in this (the driver's) environment only:
    they reach the Ray workers through runtime_env."""
    for name, value in emulator_settings(emulator).items():
        monkeypatch.setenv(name, value)
    for name in (EnvVar.VIKING_TOKEN, EnvVar.MM_EMBED_BUDGET):
        monkeypatch.delenv(f"{name}", raising=False)
    return emulator
