"""Contract suite: our own clients, both flavours, against the emulator on loopback.

Every test takes the ``clients`` fixture, parametrized over ``sync`` and ``async``; a
:class:`Twin` wraps a client of either flavour so each test body is written once and
awaits every call (a blocking client's call simply runs to completion first).
"""

from __future__ import annotations

import base64
import inspect
import io
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest
from PIL import Image

from mm_embed import AsyncFGClipClient, AsyncVikingClient, FGClipClient, VikingClient
from mm_embed.budgets import LocalBudget
from mm_embed.emulator import Emulator, RequestRecord, sample_png


class Twin:
    """A client of either flavour whose methods are all awaited."""

    def __init__(self, client: Any) -> None:
        self.client = client

    @property
    def transport(self) -> Any:
        return self.client.transport

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)
        if not callable(method):
            return method

        async def call(*args: Any, **kwargs: Any) -> Any:
            out = method(*args, **kwargs)
            return await out if inspect.isawaitable(out) else out

        return call

    async def shut(self) -> None:
        closing = getattr(self.client, "aclose", None) or self.client.close
        out = closing()
        if inspect.isawaitable(out):
            await out


class Clients:
    """Builds clients of one flavour pointed at an emulator; closes them after the test."""

    def __init__(self, flavour: str) -> None:
        self.flavour = flavour
        self.made: list[Twin] = []

    @property
    def is_async(self) -> bool:
        return self.flavour == "async"

    def fgclip(self, emu: Emulator, **options: Any) -> Twin:
        options.setdefault("api_key", emu.api_key)
        cls = AsyncFGClipClient if self.is_async else FGClipClient
        options.setdefault("base_url", emu.url)
        return self._keep(cls(**options))

    def viking(self, emu: Emulator, *, mode: str = "hmac", **options: Any) -> Twin:
        cls = AsyncVikingClient if self.is_async else VikingClient
        if mode == "token":
            options.setdefault("token", emu.token)
        else:
            options.setdefault("access_key", emu.access_key)
            options.setdefault("secret_key", emu.secret_key)
        options.setdefault("base_url", emu.url)
        # One budget per client: tests share the emulator's account, not its quota.
        options.setdefault("budget", LocalBudget())
        return self._keep(cls(region=emu.region, **options))

    def _keep(self, client: Any) -> Twin:
        twin = Twin(client)
        self.made.append(twin)
        return twin

    async def close(self) -> None:
        for twin in self.made:
            await twin.shut()


@pytest.fixture(params=["sync", "async"])
async def clients(request: pytest.FixtureRequest) -> AsyncIterator[Clients]:
    made = Clients(request.param)
    yield made
    await made.close()


def records(emu: Emulator, route: str, since: int = 0) -> list[RequestRecord]:
    """The emulator's log entries of ``route`` (``fgclip``/``viking``) after ``since``."""
    return [r for r in emu.log[since:] if r.route == route]


def data_uri(name: str) -> str:
    return "data:image/png;base64," + base64.b64encode(sample_png(name)).decode()


def noisy_png(width: int, height: int, seed: int) -> bytes:
    """A PNG that does not compress (random pixels): big bodies from few images."""
    rng = random.Random(seed)
    image = Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
