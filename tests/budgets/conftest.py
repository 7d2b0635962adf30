"""Budget fixtures: a real ``redis-server`` on a free loopback port (started and stopped
here; missing ``redis-server`` fails the tests), a fake clock, and one budget of each
backend driven by it."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mm_embed.budgets import Budget, FileBudget, LocalBudget, RedisBudget

#: How long redis-server may take to answer its first PING.
REDIS_START_TIMEOUT_S = 15.0
BACKENDS = ("local", "file", "redis")


class FakeClock:
    """Seconds that move only when told (wall-clock sized, like ``time.time``)."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


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
    """``redis://127.0.0.1:<port>/0`` of a redis-server started for this session."""
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


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


BudgetFactory = Callable[[str, FakeClock], Budget]


@pytest.fixture
def make_budget(tmp_path: Path, redis_url: str) -> Iterator[BudgetFactory]:
    """``make_budget(kind, clock)``: a fresh ``local``, ``file`` or ``redis`` budget on
    ``clock``, closed after the test."""
    opened: list[Budget] = []

    def make(kind: str, clock: FakeClock) -> Budget:
        budget: Budget
        if kind == "local":
            budget = LocalBudget(clock)
        elif kind == "file":
            budget = FileBudget(tmp_path / f"budget-{len(opened)}.db", clock=clock)
        else:
            budget = RedisBudget(redis_url, clock=clock, prefix=f"test{len(opened)}:")
        opened.append(budget)
        return budget

    yield make
    for budget in opened:
        budget.close()


@pytest.fixture(params=BACKENDS)
def budget(request: pytest.FixtureRequest, make_budget: BudgetFactory, clock: FakeClock) -> Budget:
    """One budget of each backend on the test's fake clock."""
    kind: str = request.param
    return make_budget(kind, clock)
