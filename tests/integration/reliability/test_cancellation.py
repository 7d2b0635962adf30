"""Cancelling an async embed mid-flight leaves nothing behind: no task but the test's own,
no request in flight in the client's connection pool, no request sent after the
cancellation, and once the client is closed no connection open on the server. The
client stays usable after a cancellation.

A cancellation landing while a reply body is read used to strand the connection in
httpcore's pool ("active" forever, its slot and socket held until the client closed):
``test_cancel_while_a_reply_is_read_frees_the_connection`` pins that moment exactly.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest

from mm_embed import EmbeddingResult, RetryPolicy
from mm_embed.emulator import Emulator
from tests.integration._helpers import fg_client, noisy_png, viking_client

LATENCY_MS = 150
TEXTS = [f"cancellable text {i}: yellow triangle" for i in range(80)]
IMAGES = [noisy_png(32, 24, i) for i in range(40)]
SETTLE_S = 5.0


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(latency_ms=LATENCY_MS) as running:
        yield running


def pool_of(client: Any) -> Any:
    """httpcore's connection pool behind the client's ``httpx.AsyncClient``."""
    http = client.transport.client
    assert isinstance(http, httpx.AsyncClient)
    return http._transport._pool  # type: ignore[attr-defined]


def in_flight(pool: Any) -> int:
    """Requests queued or running in the pool."""
    return len(pool._requests) + sum(
        1 for c in pool.connections if not (c.is_idle() or c.is_closed())
    )


def server_connections(emu: Emulator) -> int:
    assert emu._server is not None
    return len(emu._server.server_state.connections)


def server_tasks(emu: Emulator) -> int:
    assert emu._server is not None
    return len(emu._server.server_state.tasks)


async def eventually(condition: Callable[[], bool], within: float = SETTLE_S) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.02)
    return condition()


def others() -> set[asyncio.Task[Any]]:
    return asyncio.all_tasks() - {asyncio.current_task()}


def server_requests(emu: Emulator) -> int:
    """Requests the emulator's server has received (counted when their head is parsed)."""
    assert emu._server is not None
    return int(emu._server.server_state.total_requests)


Maker = Callable[[Emulator, httpx.AsyncClient], tuple[Any, Callable[[Any], Awaitable[Any]]]]
CALLS: dict[str, Maker] = {
    "viking-texts": lambda emu, http: (
        viking_client(
            emu, asynchronous=True, max_concurrency=4, max_batch_size=5, http_client=http
        ),
        lambda c: c.embed(TEXTS, model="bge-m3"),
    ),
    "fgclip-texts": lambda emu, http: (
        fg_client(emu, asynchronous=True, max_concurrency=4, max_batch_size=4, http_client=http),
        lambda c: c.embed_texts(TEXTS),
    ),
    "fgclip-boxes": lambda emu, http: (
        fg_client(emu, asynchronous=True, max_concurrency=3, max_batch_size=2, http_client=http),
        lambda c: c.embed_images(IMAGES, boxes=[[[0, 0, 8, 8]]] * len(IMAGES)),
    ),
}


@pytest.mark.parametrize("how", ["cancel", "wait_for"])
@pytest.mark.parametrize("name", sorted(CALLS))
async def test_cancel_mid_flight_leaves_nothing_behind(emu: Emulator, name: str, how: str) -> None:
    emu.clear_log()
    assert not others()
    http = httpx.AsyncClient()
    client, run = CALLS[name](emu, http)
    pool = pool_of(client)
    task = asyncio.ensure_future(run(client))
    # Let the first replies land, with more requests still in flight.
    assert await eventually(lambda: len(emu.log) >= 2 and in_flight(pool) > 0)
    assert not task.done()
    if how == "cancel":
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    else:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(task, timeout=0)  # cancels at once
    # Cancellation returns only once every call in flight is cancelled and awaited.
    assert not others(), others()
    assert in_flight(pool) == 0
    await asyncio.sleep(0.05)  # bytes already on the loopback wire arrive
    received = server_requests(emu)
    await asyncio.sleep(3 * LATENCY_MS / 1000)
    assert server_requests(emu) == received, "a request was sent after the cancel"
    cancelled_requests = len(emu.log)

    # Still usable after the cancellation; a whole call takes more requests than the
    # cancelled one had made.
    again = await run(client)
    assert len(again) in (len(TEXTS), len(IMAGES))
    assert cancelled_requests < len(emu.log) - cancelled_requests
    await http.aclose()
    assert await eventually(lambda: server_connections(emu) == 0 and server_tasks(emu) == 0)
    assert not others()


@pytest.mark.parametrize("route", ["viking", "fgclip"])
async def test_cancel_while_a_reply_is_read_frees_the_connection(emu: Emulator, route: str) -> None:
    """The cancel lands right after the reply headers of a small reply (its body already
    buffered), so it hits httpcore while it closes the response: the connection must go
    back to the pool (or be closed), not stay "active" with its slot."""
    victims: list[asyncio.Future[Any]] = []

    async def cancel_on_headers(response: httpx.Response) -> None:
        if victims:
            victims.pop().cancel()

    http = httpx.AsyncClient(event_hooks={"response": [cancel_on_headers]})
    if route == "viking":
        client = viking_client(emu, asynchronous=True, max_concurrency=1, http_client=http)
    else:
        client = fg_client(emu, asynchronous=True, max_concurrency=1, http_client=http)

    def run() -> Awaitable[EmbeddingResult]:
        if route == "viking":
            return client.embed(TEXTS[:1], model="bge-m3")  # type: ignore[no-any-return]
        return client.embed_texts(TEXTS[:1])  # type: ignore[no-any-return]

    pool = pool_of(client)
    for _ in range(10):  # before the fix, about 6 in 10 of these stranded a connection
        task = asyncio.ensure_future(run())
        victims.append(task)
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not victims, "the hook did not fire"
        assert in_flight(pool) == 0, pool
        assert not others()
    assert len(await run()) == 1  # the pool still serves
    await http.aclose()
    assert await eventually(lambda: server_connections(emu) == 0)


async def test_cancel_during_retry_backoff_is_prompt(emu: Emulator) -> None:
    """A call sleeping before its next retry stops at once when cancelled."""
    client = viking_client(emu, asynchronous=True, max_concurrency=2, max_batch_size=50)
    client.transport.retry = RetryPolicy(
        max_retries=5, initial_delay=30.0, max_delay=30.0, jitter=0
    )
    emu.queue_faults("503", "503")
    task = asyncio.ensure_future(client.embed(TEXTS[:100], model="bge-m3"))
    assert await eventually(lambda: client.transport.stats.retries == 2)
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 1.0
    assert not others() and in_flight(pool_of(client)) == 0
    await client.aclose()
    assert await eventually(lambda: server_connections(emu) == 0)
