"""Fixtures of the unit tree: clients of both flavours behind fake providers, a clean
provider environment, and the guard that keeps the tree free of sockets and processes.

Nothing under ``tests/unit`` may open a network socket (so no emulator, server, redis,
Ray or browser) or start a process: tests that need one belong in ``tests/integration``.
Each unit test runs with pytest-socket's ``disable_socket`` (Unix-domain sockets stay
allowed: an asyncio event loop wakes itself through a socketpair) and with process
creation refused; ``tests/unit/test_unit_tree_has_no_sockets.py`` proves the guard.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pytest_socket import disable_socket, enable_socket

from mm_embed.config import EnvVar
from tests.unit._helpers import FakeFGClip, FakeViking, Twin, build_fgclip, build_viking


class ProcessBlockedError(RuntimeError):
    """A unit test tried to start a process."""


def _no_process(*args: Any, **kwargs: Any) -> None:
    raise ProcessBlockedError(
        "a unit test tried to start a process: move the test to tests/integration"
    )


@pytest.fixture(autouse=True)
def _no_sockets_no_processes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No network socket and no child process for the duration of each unit test."""
    # Every way the standard library starts a program ends in Popen._execute_child
    # (subprocess.run, asyncio's subprocesses, os.popen); multiprocessing's fork is
    # not a program and, in these tests, never used.
    monkeypatch.setattr(subprocess.Popen, "_execute_child", _no_process)
    disable_socket(allow_unix_socket=True)
    try:
        yield
    finally:
        enable_socket()


@pytest.fixture(autouse=True)
def _no_credentials_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests set the variables they need; the developer's shell must not leak in."""
    for variable in EnvVar:
        monkeypatch.delenv(variable, raising=False)


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def fgclip(kind: str) -> Callable[..., Twin]:
    """``fgclip(provider=None, **client_kwargs)`` -> a :class:`Twin` (sync and async runs)."""

    def make(provider: FakeFGClip | None = None, **kwargs: Any) -> Twin:
        return build_fgclip(kind, provider, **kwargs)

    return make


@pytest.fixture
def viking(kind: str) -> Callable[..., Twin]:
    """``viking(provider=None, **client_kwargs)`` -> a :class:`Twin` (sync and async runs)."""

    def make(provider: FakeViking | None = None, **kwargs: Any) -> Twin:
        return build_viking(kind, provider, **kwargs)

    return make
