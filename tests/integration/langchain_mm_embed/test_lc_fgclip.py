"""FGClipEmbeddings against the emulator: images in every form, boxes, local text
features, integer vectors, batching, and real async."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from langchain_mm_embed import FGClipEmbeddings
from mm_embed import AsyncFGClipClient
from mm_embed.emulator import SAMPLES, sample_png
from mm_embed.errors import InputError

if TYPE_CHECKING:
    from mm_embed.emulator import Emulator

TWO_SHAPES = "red-circle-blue-square"


def cosine(a: list[float], b: list[float]) -> float:
    x, y = np.asarray(a), np.asarray(b)
    return float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y)))


def test_texts_and_queries(fgclip: FGClipEmbeddings, requests_on: Callable[[str], int]) -> None:
    docs = fgclip.embed_documents(["a red circle", "a blue square", "a red circle"])
    assert len(docs) == 3 and all(len(v) == 768 for v in docs)
    assert all(isinstance(x, float) for x in docs[0])
    assert docs[0] == docs[2]
    assert docs[0] != docs[1]
    assert fgclip.embed_query("a red circle") == pytest.approx(docs[0])
    assert fgclip.embed_documents([]) == []
    assert requests_on("fgclip") == 2


def test_image_in_every_form_gives_the_same_vector(
    fgclip: FGClipEmbeddings, emulator: Emulator, tmp_path: Path
) -> None:
    png = sample_png("red-circle")
    path = tmp_path / "red-circle.png"
    path.write_bytes(png)
    data_uri = "data:image/png;base64," + base64.b64encode(png).decode()
    vectors = fgclip.embed_image(
        uris=[str(path), emulator.sample_url("red-circle"), data_uri, path, png]
    )
    assert len(vectors) == 5 and len(vectors[0]) == 768
    for other in vectors[1:]:
        assert other == pytest.approx(vectors[0], abs=1e-6)


def test_text_finds_its_image(fgclip: FGClipEmbeddings, emulator: Emulator) -> None:
    names = ["red-circle", "green-square", "blue-triangle", "yellow-circle"]
    images = fgclip.embed_image([emulator.sample_url(n) for n in names])
    for name in names:
        query = fgclip.embed_query(SAMPLES[name].description)
        best = max(range(len(names)), key=lambda i: cosine(query, images[i]))
        assert names[best] == name


def test_boxes_one_vector_per_box_in_order(fgclip: FGClipEmbeddings, emulator: Emulator) -> None:
    shapes = SAMPLES[TWO_SHAPES].shapes
    boxes = [[list(box) for _, _, box in shapes], None, [[48, 48, 160, 160]]]
    uris = [emulator.sample_url(TWO_SHAPES), emulator.sample_url("green-square")]
    uris.append(emulator.sample_url("yellow-circle"))
    grouped = fgclip.embed_image_boxes(uris, boxes)
    assert [len(g) for g in grouped] == [2, 1, 1]
    # A whole image (None) is the image's own vector.
    assert grouped[1][0] == pytest.approx(fgclip.embed_image([uris[1]])[0], abs=1e-6)
    red_box, blue_box = grouped[0]
    red_query = fgclip.embed_box_query("a red circle")
    assert cosine(red_query, red_box) > cosine(red_query, blue_box)


def test_box_outside_the_image_is_refused_before_sending(
    fgclip: FGClipEmbeddings, emulator: Emulator, requests_on: Callable[[str], int]
) -> None:
    png = sample_png("red-circle")  # 256 x 256
    with pytest.raises(InputError, match=r"boxes\[1\]\[0\]: .* leaves the 256x256 image"):
        fgclip.embed_image_boxes([png, png], [[[0, 0, 10, 10]], [[200, 200, 100, 10]]])
    with pytest.raises(InputError, match="one entry per image"):
        fgclip.embed_image_boxes([png, png], [[[0, 0, 10, 10]]])
    assert requests_on("fgclip") == 0


def test_query_text_box_switches_embed_query_to_local_features(
    fgclip: FGClipEmbeddings,
) -> None:
    local = fgclip.model_copy(update={"query_text_box": True})
    global_vector = fgclip.embed_query("a red circle")
    box_vector = fgclip.embed_box_query("a red circle")
    assert box_vector != pytest.approx(global_vector, abs=1e-3)
    assert local.embed_query("a red circle") == pytest.approx(box_vector)
    # Documents stay global features either way.
    assert local.embed_documents(["a red circle"])[0] == pytest.approx(global_vector)


@pytest.mark.parametrize(("kind", "low", "high"), [("int8", -128, 127), ("uint8", 0, 255)])
def test_integer_vectors_come_back_as_floats(
    emulator: Emulator, kind: Any, low: int, high: int
) -> None:
    emb = FGClipEmbeddings(api_key=emulator.api_key, base_url=emulator.url, embedding_type=kind)
    vectors = emb.embed_documents(["a red circle", "a blue square"])
    vectors.append(emb.embed_image([sample_png("red-circle")])[0])
    for vector in vectors:
        assert len(vector) == 768
        assert all(type(x) is float and x == int(x) and low <= x <= high for x in vector)
    assert len(set(vectors[0])) > 10


def test_batch_size_sets_texts_per_request(
    emulator: Emulator, requests_on: Callable[[str], int]
) -> None:
    texts = [f"text number {i}" for i in range(7)]
    small = FGClipEmbeddings(api_key=emulator.api_key, base_url=emulator.url, batch_size=3)
    default = FGClipEmbeddings(api_key=emulator.api_key, base_url=emulator.url)
    assert small.embed_documents(texts) == default.embed_documents(texts)
    # Requests run concurrently, so they may arrive in any order.
    sizes = sorted(r.items for r in emulator.log if r.route == "fgclip")
    assert sizes == [1, 3, 3, 7]
    # Above the provider's 32 the core caps it.
    big = FGClipEmbeddings(api_key=emulator.api_key, base_url=emulator.url, batch_size=500)
    emulator.clear_log()
    big.embed_documents([f"t{i}" for i in range(40)])
    assert sorted(r.items for r in emulator.log) == [8, 32]
    assert requests_on("fgclip") == 2


async def test_async_is_native_and_matches_sync(
    fgclip: FGClipEmbeddings, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected_docs = fgclip.embed_documents(["a red circle", "a blue square"])
    expected_query = fgclip.embed_query("a red circle")
    expected_box = fgclip.embed_box_query("a red circle")
    uri = emulator.sample_url(TWO_SHAPES)
    expected_image = fgclip.embed_image([uri])
    expected_boxes = fgclip.embed_image_boxes([uri], [[[16, 72, 104, 104]]])

    def no_sync(*args: object, **kwargs: object) -> None:
        raise AssertionError("the async path must not use the blocking client")

    monkeypatch.setattr(type(fgclip), "client", property(no_sync))
    assert isinstance(fgclip.async_client, AsyncFGClipClient)
    assert await fgclip.aembed_documents(["a red circle", "a blue square"]) == expected_docs
    assert await fgclip.aembed_query("a red circle") == expected_query
    assert await fgclip.aembed_box_query("a red circle") == expected_box
    assert await fgclip.aembed_image([uri]) == expected_image
    assert await fgclip.aembed_image_boxes([uri], [[[16, 72, 104, 104]]]) == expected_boxes


def test_one_object_serves_several_event_loops(fgclip: FGClipEmbeddings) -> None:
    first = asyncio.run(fgclip.aembed_query("loop one"))
    second = asyncio.run(fgclip.aembed_query("loop one"))
    assert first == second


async def test_concurrent_async_calls(fgclip: FGClipEmbeddings) -> None:
    texts = [f"concurrent {i}" for i in range(12)]
    results = await asyncio.gather(*(fgclip.aembed_query(t) for t in texts))
    assert results == fgclip.embed_documents(texts)
