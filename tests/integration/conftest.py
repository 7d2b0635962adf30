"""Fixtures of the integration tree: a real redis-server, a headless browser, a Viking
client on the module's emulator, and clean or emulator-pointed provider environments.
The emulator fixtures are in ``tests/conftest.py``; helpers in ``_helpers.py``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from mm_embed import VikingClient
from mm_embed.config import EnvVar
from mm_embed.explore.browser import chromium, new_page
from tests.integration._helpers import (
    PROVIDER_VARIABLES,
    RedisServer,
    emulator_settings,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

    from mm_embed.emulator import Emulator


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    """``redis://127.0.0.1:<port>/0`` of a real redis-server started for this session
    (missing ``redis-server`` fails the tests that need it: CI installs it). The one
    the benchmarks start, from ``benchmarks/_harness.py``."""
    with RedisServer() as url:
        yield url


@pytest.fixture
def redis_url(redis_server: str) -> str:
    """The session's server, emptied for this test."""
    import redis

    client = redis.Redis.from_url(redis_server)
    try:
        client.flushdb()
    finally:
        client.close()
    return redis_server


@pytest.fixture(scope="module")
def viking(emu: Emulator) -> Iterator[VikingClient]:
    """A blocking ``VikingClient`` (AK/SK) on the module's emulator, for the module.
    (The LangChain tests' conftest has its own ``viking``: an embeddings adapter.)"""
    with VikingClient(
        access_key=emu.access_key, secret_key=emu.secret_key, base_url=emu.url
    ) as client:
        yield client


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium, one per test module."""
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page of the module's browser, closed after the test."""
    with new_page(browser) as opened:
        yield opened


@pytest.fixture
def no_provider_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """None of mm-embed's variables from the developer's shell: each test sets its own."""
    for variable in EnvVar:
        monkeypatch.delenv(variable, raising=False)


@pytest.fixture
def no_provider_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """No provider credentials or endpoints, so the emulator answers."""
    for name in PROVIDER_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def emulator_env(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    """The test's emulator, with both providers' variables pointing at it (for runs of
    a command in this process)."""
    for name, value in emulator_settings(emulator).items():
        monkeypatch.setenv(name, value)
    for variable in (EnvVar.VIKING_TOKEN, EnvVar.MM_EMBED_BUDGET):
        monkeypatch.delenv(variable, raising=False)
    return emulator
