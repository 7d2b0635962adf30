"""Markers of the hybrid tests."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "ranx: compares with the ranx library (one module; its JIT costs ~20 s once)"
    )
