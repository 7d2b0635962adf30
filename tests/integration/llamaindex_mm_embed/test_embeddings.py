"""The adapters against the emulator: every input form, batching on the wire, async paths,
and the extra (box, text-image, full-modal, sparse) methods."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest

from llamaindex_mm_embed import FGClipEmbedding, VikingEmbedding, VikingSparseEmbedding
from mm_embed import (
    AuthenticationError,
    ImageItem,
    InputError,
    TextImageItem,
    VikingClient,
    sparse_index,
)
from mm_embed.emulator import Emulator
from mm_embed.emulator.encoders import sparse_vector
from tests.integration._helpers import TILE, embed_requests, fg_kwargs, solid_png, viking_kwargs


def same(a: object, b: object) -> bool:
    """Equal up to float noise (the emulator's projection depends on the batch's other rows)."""
    return bool(np.allclose(np.asarray(a), np.asarray(b), atol=1e-5))


def cos(a: list[float], b: list[float]) -> float:
    x, y = np.asarray(a), np.asarray(b)
    return float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y)))


def test_fgclip_text_batches_are_wire_sized(emulator: Emulator) -> None:
    embed = FGClipEmbedding(**fg_kwargs(emulator))
    texts = [f"note number {i}" for i in range(70)]
    vectors = embed.get_text_embedding_batch(texts)
    assert len(vectors) == 70 and {len(v) for v in vectors} == {768}
    sizes = sorted(r.items for r in embed_requests(emulator, "fgclip"))
    assert sizes == [6, 32, 32]  # embed_batch_size=32 is the provider's limit
    # Order is kept: each vector is the one of its own text.
    assert same(vectors[41], embed.get_query_embedding("note number 41"))
    assert same(vectors[41], embed.get_text_embedding("note number 41"))


async def test_fgclip_async_texts_and_images(emulator: Emulator, images: dict[str, Path]) -> None:
    embed = FGClipEmbedding(**fg_kwargs(emulator))
    vectors = await embed.aget_text_embedding_batch([f"t{i}" for i in range(40)])
    assert len(vectors) == 40
    query = await embed.aget_query_embedding("a red square")
    assert same(query, embed.get_query_embedding("a red square"))
    paths = [str(images[c]) for c in ("red", "green", "blue")]
    image_vectors = await embed.aget_image_embedding_batch(paths)
    assert same(image_vectors, embed.get_image_embedding_batch(paths))
    assert same(await embed.aget_image_embedding(paths[0]), image_vectors[0])
    assert max(range(3), key=lambda i: cos(query, image_vectors[i])) == 0
    await embed.aclose()


def test_image_forms_agree(emulator: Emulator, images: dict[str, Path]) -> None:
    embed = FGClipEmbedding(**fg_kwargs(emulator))
    png = solid_png("blue", TILE)
    data_uri = "data:image/png;base64," + base64.b64encode(png).decode()
    by_path = embed.get_image_embedding(str(images["blue"]))
    assert same(embed.get_image_embedding(data_uri), by_path)
    assert same(embed.get_image_embedding(io.BytesIO(png)), by_path)
    url_vector = embed.get_image_embedding(emulator.sample_url("red-circle"))
    assert cos(url_vector, embed.get_query_embedding("a red circle")) > cos(
        url_vector, embed.get_query_embedding("a green square")
    )
    # One batched call for a list of images, however they are given.
    emulator.clear_log()
    assert (
        len(embed.get_image_embedding_batch([str(images["blue"]), data_uri, io.BytesIO(png)])) == 3
    )
    assert [r.items for r in embed_requests(emulator, "fgclip")] == [3]


def test_fgclip_bad_image_names_the_input(emulator: Emulator, tmp_path: Path) -> None:
    embed = FGClipEmbedding(**fg_kwargs(emulator))
    with pytest.raises(InputError, match="file not found") as err:
        embed.get_image_embedding_batch([str(tmp_path / "missing.png")])
    assert err.value.field == "images" and err.value.index == 0
    assert embed_requests(emulator, "fgclip") == []


def test_fgclip_int8_vectors_are_cast_to_float(emulator: Emulator) -> None:
    embed = FGClipEmbedding(**fg_kwargs(emulator), embedding_type="int8")
    vector = embed.get_text_embedding("quantised")
    assert all(isinstance(x, float) and x == int(x) and -128 <= x <= 127 for x in vector)
    assert max(abs(x) for x in vector) == 127


async def test_fgclip_boxes_and_local_text(emulator: Emulator) -> None:
    from mm_embed.emulator import SAMPLES, sample_png

    embed = FGClipEmbedding(**fg_kwargs(emulator))
    sample = SAMPLES["red-circle-blue-square"]
    boxes = [list(box) for _, _, box in sample.shapes]
    image = sample_png(sample.name)
    per_box = embed.get_image_box_embeddings(image, boxes)
    assert len(per_box) == 2
    red, blue = embed.get_box_text_embeddings(["a red circle", "a blue square"])
    assert same(embed.get_box_text_embedding("a red circle"), red)
    assert cos(red, per_box[0]) > cos(red, per_box[1])
    assert cos(blue, per_box[1]) > cos(blue, per_box[0])
    # Batched: mixed boxed and whole images in one call, rows grouped per image.
    grouped = await embed.aget_image_box_embeddings_batch([image, image], [boxes[:1], None])
    assert [len(g) for g in grouped] == [1, 1]
    assert same(grouped[0][0], per_box[0])
    assert same(grouped[1][0], embed.get_image_embedding(io.BytesIO(image)))
    assert same(await embed.aget_image_box_embeddings(image, boxes[1:]), [per_box[1]])
    assert same(await embed.aget_box_text_embedding("a red circle"), red)
    assert same(await embed.aget_box_text_embeddings(["a blue square"]), [blue])
    with pytest.raises(InputError, match="box") as err:
        embed.get_image_box_embeddings(image, [[200, 200, 100, 100]])
    assert err.value.field.startswith("boxes")


def test_viking_batches_are_wire_sized(emulator: Emulator) -> None:
    embed = VikingEmbedding(**viking_kwargs(emulator), model_name="doubao-embedding", dimension=512)
    texts = [f"document {i}" for i in range(150)]
    vectors = embed.get_text_embedding_batch(texts)
    assert len(vectors) == 150 and {len(v) for v in vectors} == {512}
    assert [r.items for r in embed_requests(emulator, "viking")] == [100, 50]
    assert same(vectors[120], embed.get_query_embedding("document 120"))


async def test_viking_async_paths(emulator: Emulator, images: dict[str, Path]) -> None:
    embed = VikingEmbedding(**viking_kwargs(emulator), model_name="bge-visualized-m3")
    texts = [f"doc {i}" for i in range(130)]
    vectors = await embed.aget_text_embedding_batch(texts)
    assert len(vectors) == 130
    assert sorted(r.items for r in embed_requests(emulator, "viking")) == [30, 100]
    assert same(await embed.aget_text_embedding("doc 7"), vectors[7])
    assert same(await embed.aget_query_embedding("doc 7"), vectors[7])
    paths = [str(p) for p in images.values()]
    image_vectors = await embed.aget_image_embedding_batch(paths)
    assert same(image_vectors, embed.get_image_embedding_batch(paths))
    assert same(await embed.aget_image_embedding(paths[0]), image_vectors[0])


def test_viking_images_and_text_image(emulator: Emulator, images: dict[str, Path]) -> None:
    embed = VikingEmbedding(**viking_kwargs(emulator), model_name="bge-visualized-m3")
    png = solid_png("yellow", TILE)
    by_path = embed.get_image_embedding(str(images["yellow"]))
    assert same(embed.get_image_embedding(io.BytesIO(png)), by_path)
    data_uri = "data:image/png;base64," + base64.b64encode(png).decode()
    assert same(embed.get_image_embedding(data_uri), by_path)
    query = embed.get_query_embedding("something yellow")
    ranked = sorted(images, key=lambda c: -cos(query, embed.get_image_embedding(str(images[c]))))
    assert ranked[0] == "yellow"

    pair = embed.get_text_image_embedding("a yellow tile", str(images["yellow"]))
    pairs = embed.get_text_image_embeddings(
        [
            ("a yellow tile", str(images["yellow"])),
            ("a blue tile", io.BytesIO(solid_png("blue", TILE))),
        ]
    )
    assert same(pairs[0], pair) and len(pairs) == 2
    # The joint vector is what the core client returns for the same item.
    with VikingClient(**viking_kwargs(emulator)) as client:
        direct = client.embed(
            [TextImageItem("a yellow tile", str(images["yellow"]))], model="bge-visualized-m3"
        )
    assert same(pair, direct.embeddings[0])


async def test_viking_full_modal_and_async_text_image(
    emulator: Emulator, images: dict[str, Path]
) -> None:
    embed = VikingEmbedding(
        **viking_kwargs(emulator), model_name="doubao-embedding-vision", model_version="250615"
    )
    parts = ["a red tile", ImageItem(str(images["red"]))]
    one = embed.get_full_modal_embedding(parts)
    assert len(one) == 2048
    emulator.clear_log()
    many = await embed.aget_full_modal_embeddings([parts, ["just text"]])
    assert same(many[0], one)
    assert [r.items for r in embed_requests(emulator, "viking")] == [1, 1]  # one per request
    assert same(await embed.aget_full_modal_embedding(parts), one)
    joint = await embed.aget_text_image_embedding("a red tile", str(images["red"]))
    assert same(
        await embed.aget_text_image_embeddings([("a red tile", str(images["red"]))]), [joint]
    )
    assert same(joint, embed.get_text_image_embedding("a red tile", str(images["red"])))


def test_viking_errors_surface(emulator: Emulator, images: dict[str, Path]) -> None:
    embed = VikingEmbedding(**viking_kwargs(emulator), model_name="doubao-embedding")
    with pytest.raises(InputError, match="does not take 'image'") as err:
        embed.get_image_embedding_batch([str(images["red"])])
    assert err.value.index == 0
    assert embed_requests(emulator, "viking") == []
    wrong = VikingEmbedding(
        access_key=emulator.access_key, secret_key="wrong", base_url=emulator.url, max_retries=0
    )
    with pytest.raises(AuthenticationError):
        wrong.get_text_embedding("hello")


def test_sparse_uses_the_stable_mapping(emulator: Emulator) -> None:
    sparse = VikingSparseEmbedding(**viking_kwargs(emulator), model_name="doubao-embedding-and-m3")
    text = "Red circles and red squares"
    got = sparse.get_text_embedding(text)
    expected = sparse_vector(text, "token")  # the emulator's token keys
    assert got == pytest.approx({sparse_index(k): v for k, v in expected.items()})
    assert all(k >= 2**30 for k in got)  # token strings hash above every numeric id
    ids = VikingSparseEmbedding(**viking_kwargs(emulator), model_name="bge-m3")
    by_id = ids.get_query_embedding(text)
    assert by_id == pytest.approx({int(k): v for k, v in sparse_vector(text, "id").items()})
    assert sparse.similarity(got, sparse.get_query_embedding("red")) > 0


def test_sparse_batches_are_wire_sized(emulator: Emulator) -> None:
    sparse = VikingSparseEmbedding(**viking_kwargs(emulator))
    texts = [f"term{i} shared" for i in range(120)]
    vectors = sparse.get_text_embedding_batch(texts)
    assert len(vectors) == 120
    assert [r.items for r in embed_requests(emulator, "viking")] == [100, 20]
    assert vectors[5] == sparse.get_text_embedding("term5 shared")


async def test_sparse_async(emulator: Emulator) -> None:
    sparse = VikingSparseEmbedding(**viking_kwargs(emulator))
    texts = [f"word{i} common" for i in range(110)]
    vectors = await sparse.aget_text_embedding_batch(texts)
    assert sorted(r.items for r in embed_requests(emulator, "viking")) == [10, 100]
    assert vectors == sparse.get_text_embedding_batch(texts)
    assert await sparse.aget_query_embedding("word3 common") == vectors[3]
    assert await sparse.aget_text_embedding("word4 common") == vectors[4]
    await sparse.aclose()


def test_viking_image_url(emulator: Emulator) -> None:
    # Only doubao-embedding-vision takes http(s) links; the emulator fetches its own samples.
    embed = VikingEmbedding(**viking_kwargs(emulator), model_name="doubao-embedding-vision")
    vector = embed.get_image_embedding(emulator.sample_url("red-circle"))
    red, green = embed.get_text_embedding_batch(["a red circle", "a green square"])
    assert cos(vector, red) > cos(vector, green)
    other = VikingEmbedding(**viking_kwargs(emulator), model_name="bge-visualized-m3")
    with pytest.raises(InputError, match="http") as err:
        other.get_image_embedding(emulator.sample_url("red-circle"))
    assert err.value.index == 0
