"""Acceptance 2: any number of inputs, wire-legal calls, caller order, real concurrency."""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np
import pytest

from mm_embed import FullModalItem, ImageItem, InputError, VideoItem
from mm_embed.batching import plan_chunks
from tests.unit._helpers import (
    FakeFGClip,
    FakeViking,
    build_fgclip,
    build_viking,
    fp,
    png_bytes,
    sparse_for,
)


def texts(n: int, prefix: str = "text") -> list[str]:
    return [f"{prefix} number {i}" for i in range(n)]


def assert_rows_are(result: Any, identities: list[str]) -> None:
    assert len(result) == len(identities)
    if not identities:
        assert result.embeddings.shape[0] == 0
        return
    np.testing.assert_array_equal(result.embeddings[:, 0], [fp(i) for i in identities])
    np.testing.assert_array_equal(result.input_indices, np.arange(len(identities)))


# --------------------------------------------------------------------------- item counts


@pytest.mark.parametrize("n", [0, 1, 31, 32, 33, 64, 65, 100])
async def test_fgclip_texts_any_count(fgclip: Any, n: int) -> None:
    twin = fgclip()
    result = await twin.embed_texts(texts(n))
    assert twin.provider.count == math.ceil(n / 32)
    sizes = [len(b["texts"]) for b in twin.provider.bodies]
    assert all(1 <= s <= 32 for s in sizes) and sum(sizes) == n
    assert_rows_are(result, texts(n))


@pytest.mark.parametrize("n", [1, 32, 33, 70])
async def test_fgclip_images_any_count(fgclip: Any, n: int) -> None:
    twin = fgclip()
    images = [png_bytes(4 + i, 5) for i in range(n)]
    result = await twin.embed_images(images)
    assert twin.provider.count == math.ceil(n / 32)
    assert all(1 <= len(b["images"]) <= 32 for b in twin.provider.bodies)
    assert_rows_are(result, [f"{4 + i}x5" for i in range(n)])


@pytest.mark.parametrize("n", [0, 1, 99, 100, 101, 250])
async def test_viking_any_count(viking: Any, n: int) -> None:
    twin = viking()
    result = await twin.embed(texts(n), model="bge-large-zh")
    assert twin.provider.count == math.ceil(n / 100)
    sizes = [len(b["data"]) for b in twin.provider.bodies]
    assert all(1 <= s <= 100 for s in sizes) and sum(sizes) == n
    assert_rows_are(result, texts(n))


async def test_viking_full_modal_goes_alone(viking: Any) -> None:
    video = VideoItem("https://example.com/clip.mp4", fps=0.5)
    inputs: list[Any] = [
        "a",
        FullModalItem(["x", video]),
        "b",
        "c",
        FullModalItem([ImageItem(png_bytes(6, 7)), "y"]),
        "d",
    ]
    twin = viking()
    result = await twin.embed(inputs, model="doubao-embedding-vision", model_version="250615")
    for body in twin.provider.bodies:
        kinds = [item["data_type"] for item in body["data"]]
        assert "full_modal_seq" not in kinds or kinds == ["full_modal_seq"]
    assert sorted(len(b["data"]) for b in twin.provider.bodies).count(1) >= 2
    assert_rows_are(result, ["a", "x+video@0.5", "b", "c", "6x7+y", "d"])


# --------------------------------------------------------------------------- body size


@pytest.mark.parametrize("limit", [1024, 2000, 3000])
async def test_fgclip_body_limit_splits(fgclip: Any, limit: int) -> None:
    twin = fgclip(max_body_bytes=limit)
    inputs = [f"{i:03d} " + "z" * 150 for i in range(40)]
    result = await twin.embed_texts(inputs, embedding_types=["float", "int8", "uint8"])
    assert twin.provider.count > math.ceil(40 / 32)
    assert all(len(s.request.content) <= limit for s in twin.provider.seen)
    assert_rows_are(result, inputs)


@pytest.mark.parametrize(
    ("size", "count"),
    [(1, 100), (10, 100), (200, 60), (1500, 9)],
    ids=["tiny-texts", "short-texts", "medium-texts", "long-texts"],
)
async def test_viking_body_limit_splits(viking: Any, size: int, count: int) -> None:
    limit = 4096
    twin = viking(max_body_bytes=limit)
    inputs = [f"{i}-" + "w" * size for i in range(count)]
    result = await twin.embed(inputs, model="bge-m3", return_token_usage=True)
    assert all(len(s.request.content) <= limit for s in twin.provider.seen), [
        len(s.request.content) for s in twin.provider.seen
    ]
    assert_rows_are(result, inputs)


async def test_fgclip_image_bodies_split_by_size(fgclip: Any) -> None:
    images = [png_bytes(30, 30, noisy=True, seed=i) for i in range(6)]
    limit = 8000  # about two noisy 30x30 PNGs per call
    twin = fgclip(max_body_bytes=limit)
    result = await twin.embed_images(
        images, boxes=[[[0, 0, 5, 5]], None, [], [[1, 1, 2, 2]], None, None]
    )
    assert twin.provider.count >= 3
    assert all(len(s.request.content) <= limit for s in twin.provider.seen)
    np.testing.assert_array_equal(result.input_indices, np.arange(6))


@pytest.mark.parametrize(
    ("sizes", "max_items", "max_bytes", "overhead", "expected"),
    [
        ([], 3, 100, 10, []),
        ([1, 1, 1, 1, 1, 1, 1], 3, 1000, 10, [[0, 1, 2], [3, 4, 5], [6]]),
        ([40, 40, 40], 10, 100, 10, [[0, 1], [2]]),
        ([20, 20, 20, 20], 10, 100, 10, [[0, 1, 2, 3]]),
        ([30, 30, 30, 30], 10, 100, 10, [[0, 1], [2, 3]]),
        ([90], 10, 100, 10, [[0]]),
    ],
)
def test_plan_chunks(
    sizes: list[int], max_items: int, max_bytes: int, overhead: int, expected: list[list[int]]
) -> None:
    chunks = plan_chunks(
        sizes, max_items=max_items, max_bytes=max_bytes, overhead=overhead, field="x"
    )
    assert chunks == expected
    for chunk in chunks:
        assert len(chunk) <= max_items
        assert overhead + sum(sizes[i] + 1 for i in chunk) - 1 <= max_bytes


def test_plan_chunks_refuses_an_item_that_never_fits() -> None:
    with pytest.raises(InputError) as info:
        plan_chunks([5, 95, 5], max_items=10, max_bytes=100, overhead=10, field="texts")
    assert info.value.field == "texts" and info.value.index == 1
    assert "texts[1]" in str(info.value) and "100 bytes" in str(info.value)


# --------------------------------------------------------------------------- concurrency


async def test_sync_calls_overlap_and_stay_bounded() -> None:
    barrier = threading.Barrier(3, timeout=5)

    def delay(n: int, body: dict[str, Any]) -> float:
        if n < 3:
            barrier.wait()  # breaks (and fails the test) unless 3 calls are in flight at once
        return 0.01

    provider = FakeFGClip(delay=delay)
    twin = build_fgclip("sync", provider, max_concurrency=3)
    inputs = texts(32 * 9 + 5)
    result = await twin.embed_texts(inputs)
    assert provider.max_in_flight == 3
    assert_rows_are(result, inputs)


async def test_async_calls_overlap_and_stay_bounded() -> None:
    provider = FakeViking(delay=lambda n, body: 0.03)
    twin = build_viking("async", provider, max_concurrency=4)
    inputs = texts(100 * 9 + 1)
    result = await twin.embed(inputs, model="bge-large-zh")
    assert provider.count == 10
    assert provider.max_in_flight == 4
    assert_rows_are(result, inputs)


@pytest.mark.parametrize("api", ["fgclip", "viking"])
async def test_reverse_completion_keeps_order(kind: str, api: str) -> None:
    n_calls = 6

    # The first request is answered last, the last one first.
    def delay(n: int, body: dict[str, Any]) -> float:
        return 0.02 * (n_calls - n)

    if api == "fgclip":
        fg = build_fgclip(kind, FakeFGClip(delay=delay), max_concurrency=n_calls)
        inputs = texts(32 * (n_calls - 1) + 7)
        result = await fg.embed_texts(inputs)
        provider = fg.provider
    else:
        vk = build_viking(kind, FakeViking(delay=delay), max_concurrency=n_calls)
        inputs = texts(100 * (n_calls - 1) + 7)
        result = await vk.embed(inputs, model="bge-m3")
        provider = vk.provider
    assert provider.count == n_calls
    assert provider.max_in_flight > 1
    assert_rows_are(result, inputs)
    if api == "viking":
        assert result.sparse is not None and len(result.sparse) == len(inputs)
        for text, vector in zip(inputs, result.sparse, strict=True):
            assert dict(vector.weights) == sparse_for(text, token_keys=False)
