"""Client surface beyond the wire: batch size, ping, lifecycle, cancellation, usage meter."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import httpx
import pytest

from mm_embed import (
    AsyncFGClipClient,
    AsyncVikingClient,
    BadRequestError,
    ConfigurationError,
    FGClipClient,
    VikingClient,
)
from tests.unit._helpers import FakeViking, build_fgclip, build_viking, json_response, viking_tokens


@pytest.mark.parametrize(("size", "per_call"), [(1, 1), (10, 10), (32, 32), (500, 32)])
async def test_fgclip_max_batch_size(fgclip: Any, size: int, per_call: int) -> None:
    twin = fgclip(max_batch_size=size)
    await twin.embed_texts([f"t{i}" for i in range(70)])
    assert max(len(b["texts"]) for b in twin.provider.bodies) == per_call
    assert twin.provider.count == math.ceil(70 / per_call)


@pytest.mark.parametrize(("size", "per_call"), [(7, 7), (100, 100), (1000, 100)])
async def test_viking_max_batch_size(viking: Any, size: int, per_call: int) -> None:
    twin = viking(max_batch_size=size)
    await twin.embed([f"t{i}" for i in range(210)], model="bge-m3")
    assert max(len(b["data"]) for b in twin.provider.bodies) == per_call


@pytest.mark.parametrize("size", [0, -3, True])
def test_bad_batch_size(size: Any) -> None:
    with pytest.raises(ConfigurationError, match="max_batch_size"):
        FGClipClient(api_key="k", max_batch_size=size)
    with pytest.raises(ConfigurationError, match="max_batch_size"):
        VikingClient(token="t", max_batch_size=size)


async def test_ping(viking: Any) -> None:
    twin = viking()
    assert await twin.call("ping") is True
    request = twin.provider.seen[0].request
    assert request.method == "GET" and request.url.path == "/api/viking_db/data/ping"
    assert request.headers["Authorization"].startswith("HMAC-SHA256 ")

    down = viking(FakeViking(fault=lambda n, b, r: json_response(401, {"code": 1000001})))
    assert await down.call("ping") is False

    def reset(n: int, body: Any, request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    assert await viking(FakeViking(fault=reset)).call("ping") is False


def test_sync_lifecycle() -> None:
    injected = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    with FGClipClient(api_key="k", http_client=injected) as client:
        assert client.transport.client is injected  # type: ignore[attr-defined]
    assert not injected.is_closed  # the caller's client is the caller's to close
    with VikingClient(token="t") as owned:
        inner = owned.transport.client  # type: ignore[attr-defined]
    assert inner.is_closed


async def test_async_lifecycle() -> None:
    injected = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    async with AsyncVikingClient(token="t", http_client=injected):
        pass
    assert not injected.is_closed
    async with AsyncFGClipClient(api_key="k") as owned:
        inner = owned.transport.client  # type: ignore[attr-defined]
    assert inner.is_closed
    await injected.aclose()


async def test_cancelling_an_async_call_leaves_nothing_running() -> None:
    provider = FakeViking(delay=lambda n, body: 5.0)
    twin = build_viking("async", provider, max_concurrency=4)
    before = len(asyncio.all_tasks())
    task = asyncio.ensure_future(twin.embed([f"t{i}" for i in range(1000)], model="bge-m3"))
    for _ in range(200):
        if provider.in_flight == 4:
            break
        await asyncio.sleep(0.01)
    assert provider.in_flight == 4
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 2)
    assert provider.in_flight == 0
    assert len(asyncio.all_tasks()) == before
    assert provider.count == 4  # nothing new started after the cancel


async def test_show_progress_does_not_change_results(
    kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    twin = build_fgclip(kind, show_progress=True, max_concurrency=2)
    result = await twin.embed_texts([f"t{i}" for i in range(40)])
    assert len(result) == 40


async def test_client_usage_meter(kind: str) -> None:
    def fault(n: int, body: dict[str, Any], request: httpx.Request) -> httpx.Response | None:
        if body["data"][0]["text"] == "bad 100":
            return json_response(400, {"code": 1000003, "message": "no"})
        return None

    twin = build_viking(kind, FakeViking(fault=fault), max_concurrency=1)
    first = await twin.embed(["a b c d e f g h", "short"], model="bge-m3", return_token_usage=True)
    assert twin.client.usage.total_tokens == first.usage.total_tokens > 0
    inputs = [f"bad {i}" for i in range(150)]
    with pytest.raises(BadRequestError) as info:
        await twin.embed(inputs, model="bge-m3", return_token_usage=True)
    partial = info.value.partial_result
    assert partial is not None and partial.usage.total_tokens == sum(
        viking_tokens({"text": t}) for t in inputs[:100]
    )
    # The meter counts what was billed, including the calls of a call that failed later.
    assert twin.client.usage.total_tokens == first.usage.total_tokens + partial.usage.total_tokens
