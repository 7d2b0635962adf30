"""VikingEmbeddings and VikingSparseEmbeddings against the emulator: every modality,
sparse vectors and their index mapping, and one request for dense + sparse."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from langchain_qdrant import SparseEmbeddings
from langchain_qdrant import SparseVector as QdrantSparseVector

from langchain_mm_embed import VikingEmbeddings, VikingSparseEmbeddings
from mm_embed import AsyncVikingClient, FullModalItem, ImageItem, VideoItem, sparse_index
from mm_embed.emulator import sample_png
from mm_embed.errors import InputError, InternalServerError
from mm_embed.pairing import DenseSparsePairing

if TYPE_CHECKING:
    from mm_embed.emulator import Emulator

DOCS = ["the quick brown fox", "a lazy dog sleeps", "quick brown dogs run"]


def cosine(a: list[float], b: list[float]) -> float:
    x, y = np.asarray(a), np.asarray(b)
    return float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y)))


@pytest.mark.parametrize(
    ("model", "dimension", "size"),
    [
        ("doubao-embedding", None, 2048),
        ("doubao-embedding", 512, 512),
        ("doubao-embedding-large-and-m3", 1024, 1024),
        ("bge-large-zh", None, 1024),
    ],
)
def test_texts_with_model_and_dimension(
    viking_settings: dict[str, Any], model: str, dimension: int | None, size: int
) -> None:
    emb = VikingEmbeddings(model=model, dimension=dimension, **viking_settings)
    vectors = emb.embed_documents(DOCS)
    assert [len(v) for v in vectors] == [size] * 3
    assert emb.embed_query(DOCS[0]) == pytest.approx(vectors[0])
    assert cosine(vectors[0], vectors[2]) > cosine(vectors[0], vectors[1])


def test_model_version_is_sent(viking_settings: dict[str, Any]) -> None:
    old = VikingEmbeddings(
        model="doubao-embedding-vision", model_version="241215", **viking_settings
    )
    new = VikingEmbeddings(
        model="doubao-embedding-vision", model_version="250615", dimension=1024, **viking_settings
    )
    assert len(old.embed_query("hello")) == 3072  # warned once per process: being retired
    assert len(new.embed_query("hello")) == 1024


def test_default_model_is_the_current_vision_version(
    emulator: Emulator, viking_settings: dict[str, Any]
) -> None:
    """Not the retiring 241215 (3072-d) the server picks when no version is sent."""
    for emb in (
        VikingEmbeddings(**viking_settings),
        VikingEmbeddings(model="doubao-embedding-vision", **viking_settings),
    ):
        assert (emb.model, emb.model_version) == ("doubao-embedding-vision", "250615")
        assert len(emb.embed_query("hello")) == 2048
    # An explicit None still means "the server's default".
    server_default = VikingEmbeddings(model_version=None, **viking_settings)
    assert len(server_default.embed_query("hello")) == 3072


def test_token_credentials(emulator: Emulator) -> None:
    emb = VikingEmbeddings(token=emulator.token, base_url=emulator.url, model="bge-m3")
    assert len(emb.embed_query("token auth")) == 1024
    assert emulator.log[-1].auth == "token"


def test_images_pairs_and_full_modal(
    emulator: Emulator, viking_settings: dict[str, Any], tmp_path: Path
) -> None:
    emb = VikingEmbeddings(
        model="doubao-embedding-vision", model_version="250615", **viking_settings
    )
    red, blue = sample_png("red-circle"), sample_png("blue-triangle")
    path = tmp_path / "red.png"
    path.write_bytes(red)
    images = emb.embed_image([str(path), emulator.sample_url("red-circle"), blue])
    assert [len(v) for v in images] == [2048] * 3
    assert images[1] == pytest.approx(images[0], abs=1e-6)
    query = emb.embed_query("a red circle")
    assert cosine(query, images[0]) > cosine(query, images[2])

    pairs = emb.embed_text_image_pairs([("a red circle", red), ("a blue triangle", blue)])
    assert len(pairs) == 2 and pairs[0] != pairs[1]

    video = tmp_path / "clip.mp4"
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    sequences: list[Any] = [
        ["a red circle", ImageItem(red)],
        FullModalItem(parts=["a short clip", VideoItem(video, fps=0.5)]),
    ]
    emulator.clear_log()
    full = emb.embed_full_modal(sequences)
    assert [len(v) for v in full] == [2048, 2048]
    assert emulator.counters.get("route:viking") == 2  # full-modal goes one per request


def test_a_model_that_cannot_take_images_says_so(
    viking: VikingEmbeddings, requests_on: Callable[[str], int]
) -> None:
    with pytest.raises(InputError, match=r"inputs\[0\]: .*does not take 'image'"):
        viking.embed_image([sample_png("red-circle")])
    assert requests_on("viking") == 0


async def test_async_twins_are_native_and_match_sync(
    emulator: Emulator, viking_settings: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    emb = VikingEmbeddings(
        model="doubao-embedding-vision", model_version="250615", **viking_settings
    )
    red = sample_png("red-circle")
    expected = (
        emb.embed_documents(DOCS),
        emb.embed_query("hello"),
        emb.embed_image([red]),
        emb.embed_text_image_pairs([("a red circle", red)]),
        emb.embed_full_modal([["a red circle", ImageItem(red)]]),
    )

    def no_sync(*args: object, **kwargs: object) -> None:
        raise AssertionError("the async path must not use the blocking client")

    monkeypatch.setattr(VikingEmbeddings, "client", property(no_sync))
    assert isinstance(emb.async_client, AsyncVikingClient)
    got = (
        await emb.aembed_documents(DOCS),
        await emb.aembed_query("hello"),
        await emb.aembed_image([red]),
        await emb.aembed_text_image_pairs([("a red circle", red)]),
        await emb.aembed_full_modal([["a red circle", ImageItem(red)]]),
    )
    assert got == expected


def test_batch_size_sets_inputs_per_request(
    emulator: Emulator, viking_settings: dict[str, Any]
) -> None:
    emb = VikingEmbeddings(model="bge-m3", batch_size=4, **viking_settings)
    assert len(emb.embed_documents([f"text {i}" for i in range(10)])) == 10
    assert sorted(r.items for r in emulator.log if r.route == "viking") == [2, 4, 4]


# --------------------------------------------------------------------------- sparse


def test_sparse_vectors_in_the_langchain_qdrant_shape(
    viking_settings: dict[str, Any], requests_on: Callable[[str], int]
) -> None:
    sparse = VikingSparseEmbeddings(model="doubao-embedding-and-m3", **viking_settings)
    assert isinstance(sparse, SparseEmbeddings)
    vectors = sparse.embed_documents(["quick brown fox", "lazy dog"])
    weights = sparse.embed_weights(["quick brown fox", "lazy dog"])
    assert all(type(v) is QdrantSparseVector for v in vectors)
    for vector, raw in zip(vectors, weights, strict=True):
        assert set(raw) == set(raw) & {"quick", "brown", "fox", "lazy", "dog"}
        assert vector.indices == sorted({sparse_index(t) for t in raw})
        by_index = {sparse_index(t): w for t, w in raw.items()}
        assert vector.values == [by_index[i] for i in vector.indices]
    query = sparse.embed_query("brown fox")
    assert set(query.indices) < set(vectors[0].indices)
    assert requests_on("viking") == 3  # standalone: no cache


@pytest.mark.parametrize("model", ["bge-m3", "bge-large-zh-and-m3"])
def test_numeric_token_ids_keep_their_value(viking_settings: dict[str, Any], model: str) -> None:
    sparse = VikingSparseEmbeddings(model=model, **viking_settings)
    raw = sparse.embed_weights(["numeric token ids"])[0]
    assert raw and all(key.isdigit() for key in raw)
    assert sparse.embed_query("numeric token ids").indices == sorted(int(k) for k in raw)


async def test_sparse_async(viking_settings: dict[str, Any]) -> None:
    sparse = VikingSparseEmbeddings(**viking_settings)
    assert await sparse.aembed_documents(DOCS) == sparse.embed_documents(DOCS)
    assert await sparse.aembed_query("fox") == sparse.embed_query("fox")
    assert await sparse.aembed_weights(["fox"]) == sparse.embed_weights(["fox"])


# --------------------------------------------------------------------------- pairing


@pytest.fixture
def pair(viking_settings: dict[str, Any]) -> tuple[VikingEmbeddings, VikingSparseEmbeddings]:
    dense = VikingEmbeddings(model="doubao-embedding-and-m3", dimension=512, **viking_settings)
    return dense, VikingSparseEmbeddings.from_dense(dense)


def test_paired_objects_ask_once_for_both_vectors(
    pair: tuple[VikingEmbeddings, VikingSparseEmbeddings],
    viking_settings: dict[str, Any],
    requests_on: Callable[[str], int],
) -> None:
    dense, sparse = pair
    assert dense.paired and sparse.paired and sparse.model == dense.model
    d = dense.embed_documents(DOCS)
    s = sparse.embed_documents(DOCS)
    assert requests_on("viking") == 1
    # Sparse first works the same way.
    q_sparse = sparse.embed_query("brown fox")
    q_dense = dense.embed_query("brown fox")
    assert requests_on("viking") == 2

    # The vectors are exactly what unpaired objects get with two requests.
    alone_dense = VikingEmbeddings(model=dense.model, dimension=512, **viking_settings)
    alone_sparse = VikingSparseEmbeddings(model=dense.model, **viking_settings)
    assert alone_dense.embed_documents(DOCS) == d
    assert alone_sparse.embed_documents(DOCS) == s
    assert alone_dense.embed_query("brown fox") == q_dense
    assert alone_sparse.embed_query("brown fox") == q_sparse
    assert requests_on("viking") == 6


def test_partial_hits_and_expiry_ask_again(
    emulator: Emulator, viking_settings: dict[str, Any], requests_on: Callable[[str], int]
) -> None:
    dense = VikingEmbeddings(model="bge-m3", **viking_settings)
    sparse = VikingSparseEmbeddings.from_dense(
        dense, pairing=DenseSparsePairing(ttl_seconds=0.2, max_entries=2)
    )
    assert dense.pairing is sparse.pairing
    dense.embed_documents(["one", "two"])
    sparse.embed_documents(["two", "three"])  # only "three" is new: only it is sent
    assert requests_on("viking") == 2
    assert [r.items for r in emulator.log if r.embedded] == [2, 1]
    sparse.embed_documents(["two", "three"])
    assert requests_on("viking") == 2
    dense.embed_documents(["one"])  # evicted: only two texts fit
    assert requests_on("viking") == 3
    time.sleep(0.3)
    sparse.embed_documents(["one"])  # expired
    assert requests_on("viking") == 4


async def test_paired_async_asks_once(
    pair: tuple[VikingEmbeddings, VikingSparseEmbeddings], requests_on: Callable[[str], int]
) -> None:
    dense, sparse = pair
    d = await dense.aembed_documents(DOCS)
    s = await sparse.aembed_documents(DOCS)
    assert requests_on("viking") == 1
    assert d == dense.embed_documents(DOCS)
    assert s == sparse.embed_documents(DOCS)
    assert requests_on("viking") == 1
    assert len(await sparse.aembed_weights(["brown fox"])) == 1
    assert len(await dense.aembed_query("brown fox")) == 512
    assert requests_on("viking") == 2


async def test_concurrent_first_asks_share_one_request(
    pair: tuple[VikingEmbeddings, VikingSparseEmbeddings], requests_on: Callable[[str], int]
) -> None:
    # A hybrid retriever's dense and sparse sides ask at the same moment: one request.
    dense, sparse = pair
    for n, query in enumerate(["first query", "second query"], start=1):
        d, s = await asyncio.gather(dense.aembed_query(query), sparse.aembed_query(query))
        assert requests_on("viking") == n
        assert d == dense.embed_query(query) and s == sparse.embed_query(query)
    # A worker thread (blocking call) and a task of the loop share one too.
    d, s = await asyncio.gather(
        asyncio.to_thread(dense.embed_documents, DOCS), sparse.aembed_documents(DOCS)
    )
    assert requests_on("viking") == 3
    assert len(d) == len(s) == 3


def test_pairing_shares_requests_each_object_its_own_client(
    pair: tuple[VikingEmbeddings, VikingSparseEmbeddings], requests_on: Callable[[str], int]
) -> None:
    dense, sparse = pair
    assert dense.pairing is sparse.pairing is not None
    assert dense.client is not sparse.client  # no object reaches into another's state
    again = VikingSparseEmbeddings.from_dense(dense)
    assert again.pairing is dense.pairing  # pairing again reuses the pairing
    dense.embed_documents(["pair once"])
    assert again.embed_weights(["pair once"]) == sparse.embed_weights(["pair once"])

    async def sparse_twice() -> None:
        await sparse.aembed_query("pair once")
        await again.aembed_query("pair once")

    asyncio.run(sparse_twice())
    assert requests_on("viking") == 1
    # A pairing handed in is used by both.
    mine = DenseSparsePairing(ttl_seconds=30)
    third = VikingSparseEmbeddings.from_dense(dense, pairing=mine)
    assert dense.pairing is mine and third.pairing is mine


def test_unpaired_objects_ask_twice(
    viking_settings: dict[str, Any], requests_on: Callable[[str], int]
) -> None:
    dense = VikingEmbeddings(model="bge-m3", **viking_settings)
    sparse = VikingSparseEmbeddings(model="bge-m3", **viking_settings)
    assert not dense.paired and not sparse.paired
    dense.embed_documents(DOCS)
    sparse.embed_documents(DOCS)
    assert requests_on("viking") == 2


def test_paired_input_errors_name_the_callers_index(
    pair: tuple[VikingEmbeddings, VikingSparseEmbeddings], requests_on: Callable[[str], int]
) -> None:
    dense, sparse = pair
    with pytest.raises(InputError, match=r"texts\[2\]: text is empty"):
        sparse.embed_documents(["a", "b", ""])
    with pytest.raises(InputError, match="wrap a single text in a list"):
        dense.embed_documents("a")  # type: ignore[arg-type]
    assert requests_on("viking") == 0


def test_paired_provider_errors_name_the_callers_index(
    emulator: Emulator, pair: tuple[VikingEmbeddings, VikingSparseEmbeddings]
) -> None:
    dense, sparse = pair
    dense.embed_documents(["held"])
    emulator.queue_faults("500")
    with pytest.raises(InternalServerError) as info:
        sparse.embed_documents(["held", "new", "held", "new"])  # only "new" is sent
    assert (info.value.input_indices, info.value.failed_indices) == ((1, 3), (1, 3))
    assert len(sparse.embed_documents(["held", "new"])) == 2  # asked again, not stuck
    assert [r.items for r in emulator.log if r.route == "viking"] == [1, 1, 1]
