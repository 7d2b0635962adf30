"""Our own clients, both flavours, against the emulator on loopback.

Every test takes the ``clients`` fixture, parametrized over ``sync`` and ``async``; a
:class:`~tests.integration._helpers.Twin` wraps a client of either flavour so each test
body is written once and awaits every call (a blocking client's call simply runs to
completion first).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.integration._helpers import Clients


@pytest.fixture(params=["sync", "async"])
async def clients(request: pytest.FixtureRequest) -> AsyncIterator[Clients]:
    made = Clients(request.param)
    yield made
    await made.close()
