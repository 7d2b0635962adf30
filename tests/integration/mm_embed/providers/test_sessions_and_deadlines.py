"""Temporary credentials end to end, and ``timeout`` bounding a whole request against a
server that drips its reply (both flavours, real loopback sockets)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from mm_embed import APITimeoutError, AuthenticationError
from mm_embed.emulator import Emulator
from tests.integration._helpers import Clients

SESSION = "sts-session-token-9f8e7d"


async def test_session_token_is_signed_into_the_request(
    clients: Clients, make_emulator: Callable[..., Emulator]
) -> None:
    emu = make_emulator(session_token=SESSION)
    result = await clients.viking(emu, session_token=SESSION).embed(["x"], model="bge-m3")
    assert len(result) == 1
    with pytest.raises(AuthenticationError):
        await clients.viking(emu, session_token="sts-wrong", max_retries=0).embed(
            ["x"], model="bge-m3"
        )
    with pytest.raises(AuthenticationError):
        await clients.viking(emu, max_retries=0).embed(["x"], model="bge-m3")


async def test_session_token_comes_from_the_environment(
    clients: Clients, make_emulator: Callable[..., Emulator], monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = make_emulator(session_token=SESSION)
    monkeypatch.setenv("VOLC_SESSIONTOKEN", SESSION)
    assert len(await clients.viking(emu).embed(["x"], model="bge-m3")) == 1
    assert SESSION not in repr(clients.viking(emu).client)


@pytest.fixture
def dripping_server() -> Iterator[str]:
    """A loopback HTTP server that sends its headers at once, then one body byte every
    0.2 s for 30 s: each read is quick, the whole reply takes forever."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    stop = threading.Event()

    def drip(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                conn.recv(65536)
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 150\r\n\r\n"
                )
                for _ in range(150):
                    if stop.wait(0.2):
                        return
                    conn.sendall(b" ")
            except OSError:
                return

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=drip, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join(5)
    listener.close()


async def test_timeout_bounds_the_whole_request(
    clients: Clients, emulator_session: Emulator, dripping_server: str
) -> None:
    vk = clients.viking(emulator_session, base_url=dripping_server, timeout=1.0, max_retries=0)
    started = time.monotonic()
    with pytest.raises(APITimeoutError):
        await vk.embed(["x"], model="bge-m3")
    # The drip would take 30 s; the bound is the timeout plus scheduling slack.
    assert time.monotonic() - started < 5.0


async def test_timeout_bounds_each_attempt_with_retries(
    clients: Clients, emulator_session: Emulator, dripping_server: str
) -> None:
    fg = clients.fgclip(emulator_session, base_url=dripping_server, timeout=0.5, max_retries=2)
    fg.transport.retry = type(fg.transport.retry)(max_retries=2, initial_delay=0.01, max_delay=0.02)
    started = time.monotonic()
    with pytest.raises(APITimeoutError):
        await fg.embed_texts(["x"])
    assert fg.transport.stats.retries == 2
    # Three attempts of at most 0.5 s each, and two short backoffs.
    assert time.monotonic() - started < 6.0


def test_an_injected_sync_client_is_bounded_between_chunks(dripping_server: str) -> None:
    import httpx

    from mm_embed import VikingClient
    from mm_embed.budgets import LocalBudget

    client = VikingClient(
        "AK",
        "SK",
        base_url=dripping_server,
        timeout=1.0,
        max_retries=0,
        budget=LocalBudget(),
        http_client=httpx.Client(timeout=5.0),
    )
    started = time.monotonic()
    with pytest.raises(APITimeoutError):
        client.embed(["x"], model="bge-m3")
    assert time.monotonic() - started < 5.0
    asyncio.run(asyncio.sleep(0))  # no loop left behind
