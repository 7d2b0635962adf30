"""Hardening that needs a real server: one async client serves several event loops in
turn (the rest of the hardening tests need none: ``tests/unit/mm_embed/test_hardening.py``)."""

from __future__ import annotations

import asyncio

from mm_embed import AsyncVikingClient
from mm_embed.budgets import LocalBudget
from mm_embed.emulator import Emulator


def test_one_async_client_serves_several_event_loops() -> None:
    with Emulator() as emu:
        client = AsyncVikingClient(
            emu.access_key, emu.secret_key, base_url=emu.url, budget=LocalBudget()
        )
        for text in ("first loop", "second loop", "third loop"):
            result = asyncio.run(client.embed([text], model="bge-m3"))
            assert result.embeddings.shape == (1, 1024)
