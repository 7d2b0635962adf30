"""Shared fixtures: a running local emulator (imported lazily so tests that do not use
it need no server extras)."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
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


#: How long redis-server may take to answer its first PING.
REDIS_START_TIMEOUT_S = 15.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _answers_ping(url: str) -> bool:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    """``redis://127.0.0.1:<port>/0`` of a real redis-server started for this session
    (missing ``redis-server`` fails the tests that need it: CI installs it)."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("redis-server is not installed (Debian: apt-get install -y redis-server)")
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + REDIS_START_TIMEOUT_S
        while not _answers_ping(url):
            if proc.poll() is not None:
                pytest.fail(f"redis-server exited with {proc.returncode} on port {port}")
            if time.monotonic() > deadline:
                pytest.fail(f"redis-server did not answer PING within {REDIS_START_TIMEOUT_S} s")
            time.sleep(0.05)
        yield url
    finally:
        proc.kill()  # it keeps nothing on disk: nothing to shut down cleanly
        proc.wait(10)
