"""The unit tree's guard (``tests/unit/conftest.py``) holds: a unit test cannot open a
network socket, resolve a name or start a process, while an asyncio event loop (whose
self-pipe is a Unix socketpair) still runs."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys

import httpx
import pytest
from pytest_socket import SocketBlockedError

from tests.unit.conftest import ProcessBlockedError


@pytest.mark.filterwarnings("ignore:A test tried to use socket:UserWarning")
@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_INET6], ids=["ipv4", "ipv6"])
def test_no_network_socket_can_be_made(family: socket.AddressFamily) -> None:
    with pytest.raises(SocketBlockedError):
        socket.socket(family, socket.SOCK_STREAM)


@pytest.mark.filterwarnings("ignore:A test tried to use socket:UserWarning")
def test_no_name_is_resolved() -> None:
    with pytest.raises(SocketBlockedError):
        socket.getaddrinfo("localhost", 80)


@pytest.mark.filterwarnings("ignore:A test tried to use socket:UserWarning")
def test_an_http_client_cannot_reach_even_loopback() -> None:
    with httpx.Client() as client, pytest.raises(SocketBlockedError):
        client.get("http://127.0.0.1:9/")


@pytest.mark.filterwarnings("ignore:A test tried to use socket:UserWarning")
def test_the_emulator_cannot_start() -> None:
    from mm_embed.emulator import Emulator

    emulator = Emulator()
    with pytest.raises(SocketBlockedError):
        emulator.start()


def test_no_process_can_be_started() -> None:
    with pytest.raises(ProcessBlockedError, match="tests/integration"):
        subprocess.run([sys.executable, "-c", "pass"], check=False)


async def test_no_process_from_an_event_loop() -> None:
    with pytest.raises(ProcessBlockedError):
        await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")


async def test_an_event_loop_still_runs() -> None:
    # Its self-pipe is a Unix socketpair: allowed, as are Unix sockets in general.
    assert await asyncio.sleep(0, result=42) == 42
    left, right = socket.socketpair()
    with left, right:
        left.sendall(b"ok")
        assert right.recv(2) == b"ok"
