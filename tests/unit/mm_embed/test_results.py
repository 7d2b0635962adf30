"""Acceptance 7: what a call returns - dtypes, boxes, metadata, sparse, usage, ids."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from mm_embed import EmbeddingResult, SparseVector, sparse_index
from tests.unit._helpers import (
    FakeFGClip,
    FakeViking,
    build_fgclip,
    build_viking,
    fg_text_vector,
    fp,
    png_bytes,
    sparse_for,
    viking_tokens,
)

# --------------------------------------------------------------------------- FG-CLIP dense


@pytest.mark.parametrize(
    "types",
    [["float"], ["int8"], ["uint8"], ["float", "int8", "uint8"], ["uint8", "float"], "int8"],
)
async def test_fgclip_dtypes(fgclip: Any, types: Any) -> None:
    twin = fgclip()
    texts = ["alpha", "beta gamma", "δέλτα"]
    result = await twin.embed_texts(texts, embedding_types=types)
    wanted = [types] if isinstance(types, str) else types
    assert list(result.dense) == wanted
    expected = np.array([fg_text_vector(t) for t in texts])
    dtypes = {"float": np.float32, "int8": np.int8, "uint8": np.uint8}
    for name, matrix in result.dense.items():
        assert matrix.dtype == dtypes[name] and matrix.shape == (3, 4)
        if name == "float":
            np.testing.assert_array_equal(matrix, expected.astype(np.float32))
        elif name == "int8":
            np.testing.assert_array_equal(matrix, (expected.astype(np.int64) % 256) - 128)
        else:
            np.testing.assert_array_equal(matrix, expected.astype(np.int64) % 256)
    assert twin.provider.bodies[0]["embedding_types"] == wanted
    # Frameworks get floats, never dropped integer vectors.
    lists = result.as_float_lists(wanted[0])
    assert all(isinstance(v, float) for row in lists for v in row)
    np.testing.assert_array_equal(np.array(lists), result.dense[wanted[0]].astype(np.float64))
    assert result.embeddings is result.dense["float" if "float" in wanted else wanted[0]]
    assert result.dimension == 4


async def test_fgclip_text_box_flag(fgclip: Any) -> None:
    twin = fgclip()
    local = await twin.embed_texts(["a red car"], text_box=True)
    plain = await twin.embed_texts(["a red car"])
    assert twin.provider.bodies[0]["text_box_flag"] is True
    assert "text_box_flag" not in twin.provider.bodies[1]
    assert local.embeddings[0, 2] == 1.0 and plain.embeddings[0, 2] == 0.0


# --------------------------------------------------------------------------- FG-CLIP boxes


async def test_mixed_boxes_split_and_merge(fgclip: Any) -> None:
    twin = fgclip()
    images = [png_bytes(10 + i, 10) for i in range(5)]
    boxes = [None, [[0, 0, 2, 2], [1, 1, 3, 3]], [], [[4, 5, 1, 1]], None]
    result = await twin.embed_images(images, boxes=boxes, embedding_types=["float", "uint8"])
    # Two calls: whole images without image_boxes, boxed images with a 3-D image_boxes.
    global_bodies = [b for b in twin.provider.bodies if "image_boxes" not in b]
    box_bodies = [b for b in twin.provider.bodies if "image_boxes" in b]
    assert len(global_bodies) == 1 and len(box_bodies) == 1
    assert len(global_bodies[0]["images"]) == 3
    assert box_bodies[0]["image_boxes"] == [
        [[0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 3.0, 3.0]],
        [[4.0, 5.0, 1.0, 1.0]],
    ]
    assert len(box_bodies[0]["images"]) == 2
    # One row per box, merged back in caller order.
    np.testing.assert_array_equal(result.input_indices, [0, 1, 1, 2, 3, 4])
    assert result.box_indices is not None
    np.testing.assert_array_equal(result.box_indices, [-1, 0, 1, -1, 0, -1])
    sizes = ["10x10", "11x10", "11x10", "12x10", "13x10", "14x10"]
    np.testing.assert_array_equal(result.embeddings[:, 0], [fp(s) for s in sizes])
    np.testing.assert_array_equal(result.embeddings[:, 1], [-1, 0, 1, -1, 0, -1])
    np.testing.assert_array_equal(result.embeddings[:, 2], [0, 0, 1, 0, 4, 0])
    assert result.dense["uint8"].shape == (6, 4)
    np.testing.assert_array_equal(result.rows_for_input(1), [1, 2])
    np.testing.assert_array_equal(result.rows_for_input(2), [3])
    # Image metadata: one entry per caller image, in caller order.
    assert result.images is not None
    assert [(i.width, i.height) for i in result.images] == [(10 + i, 10) for i in range(5)]


async def test_mixed_boxes_across_many_calls_with_concurrency(kind: str) -> None:
    provider = FakeFGClip(delay=lambda n, body: 0.02 * (4 - min(n, 4)))
    twin = build_fgclip(kind, provider, max_concurrency=4)
    n = 70
    images = [png_bytes(5 + i, 6) for i in range(n)]
    boxes = [[[0, 0, 1, 1]] * (i % 3) if i % 2 else None for i in range(n)]
    result = await twin.embed_images(images, boxes=boxes)
    assert all(len(b["images"]) <= 32 for b in provider.bodies)
    expected_inputs = [i for i in range(n) for _ in range(max(1, len(boxes[i] or [])))]
    np.testing.assert_array_equal(result.input_indices, expected_inputs)
    np.testing.assert_array_equal(
        result.embeddings[:, 0], [fp(f"{5 + i}x6") for i in expected_inputs]
    )
    assert result.images is not None and [im.width for im in result.images] == [
        5 + i for i in range(n)
    ]


async def test_all_boxed_is_one_kind_of_call(fgclip: Any) -> None:
    twin = fgclip()
    result = await twin.embed_images(
        [png_bytes(9, 9), png_bytes(8, 8)], boxes=[[[0, 0, 1, 1]], [[1, 1, 1, 1]]]
    )
    assert twin.provider.count == 1 and "image_boxes" in twin.provider.bodies[0]
    assert result.box_indices is not None and list(result.box_indices) == [0, 0]


@pytest.mark.parametrize("boxes", [None, [None, None], [[], []]])
async def test_no_boxes(fgclip: Any, boxes: Any) -> None:
    twin = fgclip()
    result = await twin.embed_images([png_bytes(9, 9), png_bytes(8, 8)], boxes=boxes)
    assert twin.provider.count == 1 and "image_boxes" not in twin.provider.bodies[0]
    if boxes is None:
        assert result.box_indices is None
    else:
        assert result.box_indices is not None and list(result.box_indices) == [-1, -1]


async def test_text_lengths_follow_caller_order(kind: str) -> None:
    provider = FakeFGClip(delay=lambda n, body: 0.03 if n == 0 else 0.0)
    twin = build_fgclip(kind, provider, max_concurrency=3)
    texts = ["x" * (1 + i % 17) for i in range(80)]
    result = await twin.embed_texts(texts)
    assert result.text_lengths == [len(t) for t in texts]
    assert result.usage.prompt_tokens == sum(len(t) for t in texts)
    assert result.images is None


# --------------------------------------------------------------------------- Viking sparse


# Expected values from the documented rule, computed once with hashlib:
#   2**30 + int.from_bytes(blake2b(utf8(key), digest_size=8).digest(), "big") % 2**30
DOCUMENTED = {
    "hello": 1105540221,
    "De": 2012229990,
    "中文": 1773818714,
    "1073741824": 1297898143,  # a number too big for the id range is hashed too
    "-5": 1929204550,
    "": 1954132660,
}


@pytest.mark.parametrize(("token", "index"), sorted(DOCUMENTED.items()))
def test_sparse_index_documented_hash(token: str, index: int) -> None:
    assert sparse_index(token) == index
    assert 2**30 <= index < 2**31


@pytest.mark.parametrize(
    ("token", "index"), [("0", 0), ("71277", 71277), ("007", 7), (str(2**30 - 1), 2**30 - 1)]
)
def test_sparse_index_numeric_keys(token: str, index: int) -> None:
    assert sparse_index(token) == index


def test_sparse_index_non_ascii_digits_are_hashed() -> None:
    assert sparse_index("１２") >= 2**30  # fullwidth digits are not token ids
    assert sparse_index("٣") >= 2**30


def test_sparse_vector() -> None:
    vector = SparseVector({"9": 0.5, "hello": 0.25, "3": 1.0})
    assert vector.indices == (3, 9, DOCUMENTED["hello"])
    assert vector.values == (1.0, 0.5, 0.25)
    assert len(vector) == 3
    assert vector.to_dict() == {3: 1.0, 9: 0.5, DOCUMENTED["hello"]: 0.25}
    other = SparseVector({"3": 2.0, "hello": 4.0, "77": 1.0})
    assert vector.dot(other) == pytest.approx(1.0 * 2.0 + 0.25 * 4.0)
    assert SparseVector({}).to_dict() == {}


@pytest.mark.parametrize(
    ("model", "token_keys"),
    [("bge-m3", False), ("bge-large-zh-and-m3", False), ("doubao-embedding-and-m3", True)],
)
async def test_viking_sparse_results(viking: Any, model: str, token_keys: bool) -> None:
    twin = viking()
    texts = [f"word{i} common word{i + 1}" for i in range(130)]
    result = await twin.embed(texts, model=model)
    assert twin.provider.bodies[0]["model"]["params"]["return_sparse"] is True
    assert result.sparse is not None and len(result.sparse) == 130
    for text, vector in zip(texts, result.sparse, strict=True):
        weights = sparse_for(text, token_keys=token_keys)
        assert dict(vector.weights) == weights
        assert vector.to_dict() == {sparse_index(k): v for k, v in weights.items()}
        if token_keys:
            assert all(2**30 <= i < 2**31 for i in vector.indices)
        else:
            assert all(i < 2**30 for i in vector.indices)
    np.testing.assert_array_equal(result.embeddings[:, 0], [fp(t) for t in texts])


async def test_viking_sparse_only(viking: Any) -> None:
    twin = viking()
    result = await twin.embed(["a b", "c"], model="bge-m3", return_dense=False)
    assert result.dense == {}
    assert result.sparse is not None and len(result) == 2
    with pytest.raises(AttributeError, match="no dense"):
        _ = result.embeddings


async def test_viking_dense_only_on_sparse_model(viking: Any) -> None:
    twin = viking()
    result = await twin.embed(["a b"], model="bge-m3", return_sparse=False, dimension=1024)
    assert result.sparse is None
    params = twin.provider.bodies[0]["model"]["params"]
    assert params["return_sparse"] is False and params["embedding_dimension"] == 1024
    assert "model_version" not in params


# --------------------------------------------------------------------------- usage and ids


async def test_viking_usage_summed_across_batches(kind: str) -> None:
    provider = FakeViking(delay=lambda n, body: 0.01 * (3 - min(n, 3)))
    twin = build_viking(kind, provider, max_concurrency=3)
    texts = [f"text number {i} " * (1 + i % 4) for i in range(250)]
    result = await twin.embed(texts, model="doubao-embedding-and-m3", return_token_usage=True)
    tokens = sum(viking_tokens({"text": t}) for t in texts)
    assert provider.count == 3
    assert result.usage.total_tokens == tokens
    assert result.usage.prompt_tokens == tokens
    assert set(result.usage.by_model) == {"doubao-embedding", "bge-m3"}
    assert all(u.total_tokens == tokens for u in result.usage.by_model.values())
    # Request ids in caller order (each id names the call that carried those inputs).
    first_text = {f"vk-{s.number}": s.body["data"][0]["text"] for s in provider.seen}
    assert [first_text[r] for r in result.request_ids] == [texts[0], texts[100], texts[200]]
    assert result.model == "doubao-embedding-and-m3"


async def test_viking_usage_absent_unless_asked(viking: Any) -> None:
    twin = viking()
    result = await twin.embed(["a"], model="bge-m3")
    assert "return_token_usage" not in twin.provider.bodies[0]["model"]["params"]
    assert result.usage.total_tokens == 0


async def test_fgclip_usage_and_ids(kind: str) -> None:
    provider = FakeFGClip(delay=lambda n, body: 0.02 if n == 0 else 0.0)
    twin = build_fgclip(kind, provider, max_concurrency=2)
    images = [png_bytes(4 + i % 3, 4) for i in range(40)]
    result = await twin.embed_images(images)
    assert result.usage.images == 40
    first = {f"fg-{s.number}": len(s.body["images"]) for s in provider.seen}
    assert [first[r] for r in result.request_ids] == [32, 8]


async def test_viking_multimodal_rows(viking: Any) -> None:
    from mm_embed import FullModalItem, ImageItem, TextImageItem, VideoItem

    twin = viking()
    image = png_bytes(7, 5)
    inputs: list[Any] = [
        "plain",
        ImageItem(image),
        TextImageItem("caption", image),
        FullModalItem(["intro", ImageItem(image), VideoItem("https://example.com/v.mp4", fps=2)]),
        ImageItem("https://example.com/p.png"),
    ]
    result = await twin.embed(
        inputs, model="doubao-embedding-vision", model_version="250615", dimension=1024
    )
    expected = ["plain", "7x5", "caption|7x5", "intro+7x5+video@2.0", "https://example.com/p.png"]
    np.testing.assert_array_equal(result.embeddings[:, 0], [fp(e) for e in expected])
    sent = [d for b in twin.provider.bodies for d in b["data"]]
    kinds = sorted(d["data_type"] for d in sent)
    assert kinds == ["full_modal_seq", "image", "image", "text", "text-image"]
    assert all(b["model"]["params"]["model_version"] == "250615" for b in twin.provider.bodies)


# --------------------------------------------------------------------------- result helpers


def test_concat_and_take() -> None:
    a = EmbeddingResult(
        dense={"float": np.ones((2, 3), np.float32)},
        input_indices=np.array([0, 1]),
        request_ids=["a"],
    )
    b = EmbeddingResult(
        dense={"float": np.zeros((1, 3), np.float32)},
        input_indices=np.array([2]),
        request_ids=["b"],
    )
    both = EmbeddingResult.concat([a, b])
    assert both.embeddings.shape == (3, 3) and both.request_ids == ["a", "b"]
    picked = both.take([2, 0])
    np.testing.assert_array_equal(picked.input_indices, [2, 0])
    np.testing.assert_array_equal(picked.embeddings[:, 0], [0, 1])
    assert len(EmbeddingResult.concat([])) == 0
    assert next(iter(both)).shape == (3,)
