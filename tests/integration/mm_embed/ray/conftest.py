"""Fixtures of the Ray tests: one local Ray instance for the session (2 CPUs, no
dashboard, a namespace of its own), shut down at the end, so no Ray process outlives
the tests.

Once it runs, ``ray.init`` elsewhere in this process fails: the docs' Ray examples
(``tests/integration/docs``) start their own instance, so they must run before any test
here (pytest runs the directories in name order: ``docs`` before ``mm_embed``)."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.integration._helpers import RayCluster

if TYPE_CHECKING:
    from mm_embed.emulator import Emulator


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[RayCluster]:
    """One local Ray instance for the session (2 CPUs, no dashboard, a namespace of its
    own), shut down at the end, so no Ray process outlives the tests."""
    import ray
    import ray.data

    namespace = f"mm-embed-tests-{uuid.uuid4().hex[:8]}"
    # tests/conftest.py sets RAY_AUTH_TOKEN for the whole session (Ray caches the first
    # token it sees); it reaches the drivers the tests start as subprocesses too.
    assert os.environ.get("RAY_AUTH_TOKEN"), "tests/conftest.py sets RAY_AUTH_TOKEN"
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
def emulator_env(ray_cluster: RayCluster, emulator_env: Emulator) -> Emulator:
    """The test's emulator, its credentials in this (the driver's) environment only,
    set once Ray runs: they reach the Ray workers through runtime_env, never through
    the environment the workers were started with."""
    return emulator_env
