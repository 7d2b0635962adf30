"""Helpers shared by the reliability tests: clients wired to an emulator with fast
retries, distinct deterministic inputs, and exact comparisons of results."""

from __future__ import annotations

import asyncio
import datetime
import io
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import numpy as np
from PIL import Image

from mm_embed import (
    AsyncFGClipClient,
    AsyncVikingClient,
    EmbeddingResult,
    FGClipClient,
    VikingClient,
)
from mm_embed.emulator import Emulator
from mm_embed.retry import RetryPolicy
from mm_embed.signing import format_x_date, sign
from mm_embed.transport import TransportStats

#: Retries fast enough for thousands of faults in CI, but still exponential with jitter.
FAST_RETRY = RetryPolicy(max_retries=8, initial_delay=0.01, max_delay=0.05)


def fast(client: Any, policy: RetryPolicy = FAST_RETRY) -> Any:
    """Give ``client`` a fast retry schedule (the public ``transport.retry`` slot)."""
    client.transport.retry = policy
    return client


def fg_client(
    emu: Emulator, *, asynchronous: bool = False, api_key: str | None = None, **options: Any
) -> Any:
    """An FG-CLIP client (sync or async) for ``emu`` with fast retries."""
    cls = AsyncFGClipClient if asynchronous else FGClipClient
    return fast(cls(api_key or emu.api_key, base_url=options.pop("base_url", emu.url), **options))


def viking_client(
    emu: Emulator,
    *,
    asynchronous: bool = False,
    access_key: str | None = None,
    secret_key: str | None = None,
    **options: Any,
) -> Any:
    """A Viking client (sync or async, AK/SK signing) for ``emu`` with fast retries."""
    cls = AsyncVikingClient if asynchronous else VikingClient
    # The emulator enforces no budget by default; client-side pacing would only slow us.
    options.setdefault("tokens_per_minute", None)
    options.setdefault("images_per_second", None)
    options.setdefault("base_url", emu.url)
    return fast(cls(access_key or emu.access_key, secret_key or emu.secret_key, **options))


class Caller:
    """One client behind an awaitable ``embed(texts)``, whatever its flavour: the
    blocking client runs on a worker thread so the test's event loop stays free."""

    def __init__(self, emu: Emulator, route: str, asynchronous: bool, **options: Any) -> None:
        self.route, self.asynchronous = route, asynchronous
        if route == "fgclip":
            self.client = fg_client(emu, asynchronous=asynchronous, **options)
        else:
            self.client = viking_client(emu, asynchronous=asynchronous, **options)

    async def embed(self, texts: Sequence[str]) -> EmbeddingResult:
        if self.route == "fgclip":
            method, kwargs = self.client.embed_texts, {}
        else:
            method, kwargs = self.client.embed, {"model": "bge-m3"}
        if self.asynchronous:
            return await method(texts, **kwargs)  # type: ignore[no-any-return]
        return await asyncio.to_thread(method, texts, **kwargs)

    @property
    def stats(self) -> TransportStats:
        return self.client.transport.stats  # type: ignore[no-any-return]

    async def close(self) -> None:
        if self.asynchronous:
            await self.client.aclose()
        else:
            self.client.close()


def png(index: int, size: tuple[int, int] = (32, 24)) -> bytes:
    """A small noisy PNG unique to ``index``: every crop of it differs from other images'."""
    rng = random.Random(index)
    image = Image.frombytes("RGB", size, rng.randbytes(size[0] * size[1] * 3))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def png_image(size: tuple[int, int] = (40, 30)) -> bytes:
    return png(7, size)


def same_result(got: EmbeddingResult, want: EmbeddingResult, what: str) -> None:
    """Bitwise-equal dense matrices, equal sparse maps, indices, in the same order."""
    assert sorted(got.dense) == sorted(want.dense), what
    for name, matrix in want.dense.items():
        assert got.dense[name].dtype == matrix.dtype, what
        assert got.dense[name].shape == matrix.shape, what
        assert got.dense[name].tobytes() == matrix.tobytes(), f"{what}: {name} vectors differ"
    assert np.array_equal(got.input_indices, want.input_indices), what
    if want.box_indices is None:
        assert got.box_indices is None, what
    else:
        assert got.box_indices is not None and np.array_equal(got.box_indices, want.box_indices)
    if want.sparse is None:
        assert got.sparse is None, what
    else:
        assert got.sparse is not None and len(got.sparse) == len(want.sparse), what
        for k, (a, b) in enumerate(zip(got.sparse, want.sparse, strict=True)):
            assert dict(a.weights) == dict(b.weights), f"{what}: sparse row {k} differs"


def wait_for(condition: Callable[[], bool], timeout: float = 10.0, step: float = 0.02) -> bool:
    """Poll ``condition`` until true or ``timeout`` seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


def raw_post(
    emu: Emulator, path: str, content: bytes, headers: dict[str, str], timeout: float = 10.0
) -> httpx.Response:
    return httpx.post(emu.url + path, content=content, headers=headers, timeout=timeout)


VIKING_PATH = "/api/data/embedding/version/2"
FGCLIP_PATH = "/models/interface"


def viking_signed(
    emu: Emulator,
    raw: bytes,
    *,
    content_type: str = "application/json",
    when: datetime.datetime | None = None,
    secret_key: str | None = None,
) -> dict[str, str]:
    """Headers of a Viking request signed over ``raw`` (``when`` backdates ``X-Date``)."""
    headers = {"Content-Type": content_type, "Host": emu.viking_host}
    parts = sign(
        access_key=emu.access_key,
        secret_key=secret_key or emu.secret_key,
        region=emu.region,
        service="air",
        method="POST",
        path=VIKING_PATH,
        headers=headers,
        body=raw,
        x_date=format_x_date(when or datetime.datetime.now(datetime.UTC)),
    )
    return {**headers, **parts.headers_added}


def fg_headers(emu: Emulator, content_type: str = "application/json") -> dict[str, str]:
    return {"Authorization": f"Bearer {emu.api_key}", "Content-Type": content_type}
