"""Real LlamaIndex index flows over the emulator: VectorStoreIndex with VikingEmbedding
(batched on the wire), Settings.embed_model resolution, and MultiModalVectorStoreIndex
with FGClipEmbedding for text -> image retrieval."""

from __future__ import annotations

from pathlib import Path

import pytest
from llama_index.core import Document, Settings, VectorStoreIndex
from llama_index.core.embeddings.utils import resolve_embed_model
from llama_index.core.indices import MultiModalVectorStoreIndex
from llama_index.core.llms import MockLLM
from llama_index.core.schema import ImageDocument, ImageNode, TextNode

from llamaindex_mm_embed import FGClipEmbedding, VikingEmbedding
from mm_embed.emulator import Emulator
from tests.integration._helpers import (
    FACTS,
    QUERIES,
    embed_requests,
    fg_kwargs,
    synthetic,
    viking_kwargs,
)


def viking(emu: Emulator, **extra: object) -> VikingEmbedding:
    return VikingEmbedding(
        **viking_kwargs(emu), model_name="doubao-embedding", dimension=512, **extra
    )


def test_from_documents_sends_wire_sized_batches(emulator: Emulator) -> None:
    texts = synthetic(250)
    index = VectorStoreIndex.from_documents(
        [Document(text=t) for t in texts], embed_model=viking(emulator)
    )
    requests = embed_requests(emulator, "viking")
    # One call per 100 nodes (the provider's limit), not one per node.
    assert [r.items for r in requests] == [100, 100, 50]
    hashes = [h for r in requests for h in r.item_hashes]
    assert len(set(hashes)) == 250

    hits = index.as_retriever(similarity_top_k=3).retrieve("specimen code123x")
    assert hits[0].node.get_content() == texts[123]
    assert [r.items for r in embed_requests(emulator, "viking")][3:] == [1]


def test_from_documents_async_build_is_batched(emulator: Emulator) -> None:
    # use_async=True runs LlamaIndex's async embedding path (in its own event loop).
    texts = synthetic(130)
    index = VectorStoreIndex.from_documents(
        [Document(text=t) for t in texts], embed_model=viking(emulator), use_async=True
    )
    assert sorted(r.items for r in embed_requests(emulator, "viking")) == [30, 100]
    hits = index.as_retriever(similarity_top_k=1).retrieve("label tag7y")
    assert hits[0].node.get_content() == texts[1]


def test_settings_embed_model_resolution(emulator: Emulator) -> None:
    embed = viking(emulator)
    Settings.embed_model = embed
    assert Settings.embed_model is embed
    assert resolve_embed_model(embed) is embed

    index = VectorStoreIndex.from_documents([Document(text=t) for t in FACTS.values()])
    assert index._embed_model is embed
    assert [r.items for r in embed_requests(emulator, "viking")] == [len(FACTS)]
    engine = index.as_query_engine(llm=MockLLM(), similarity_top_k=2)
    for query, key in QUERIES:
        response = engine.query(query)
        assert response.source_nodes[0].node.get_content() == FACTS[key]


async def test_async_retrieval_and_query_engine(emulator: Emulator) -> None:
    embed = viking(emulator)
    index = VectorStoreIndex(nodes=[], embed_model=embed)
    await index.ainsert_nodes([TextNode(text=t) for t in FACTS.values()])
    assert [r.items for r in embed_requests(emulator, "viking")] == [len(FACTS)]
    retriever = index.as_retriever(similarity_top_k=3)
    engine = index.as_query_engine(llm=MockLLM(), similarity_top_k=2)
    for query, key in QUERIES:
        hits = await retriever.aretrieve(query)
        assert hits[0].node.get_content() == FACTS[key]
        response = await engine.aquery(query)
        assert response.source_nodes[0].node.get_content() == FACTS[key]
    await embed.aclose()


def image_documents(images: dict[str, Path]) -> list[ImageDocument]:
    # from_documents skips documents whose embed-mode content is empty, so an image
    # document needs metadata (SimpleDirectoryReader sets file_name and more); the name
    # does not say the colour, and image nodes are embedded from their pixels only.
    return [
        ImageDocument(image_path=str(p), metadata={"file_name": p.name}) for p in images.values()
    ]


COLOUR_QUERIES = [
    ("a red square", "red"),
    ("a green square", "green"),
    ("a blue square", "blue"),
    ("a yellow square", "yellow"),
]


def test_multimodal_index_text_to_image(emulator: Emulator, images: dict[str, Path]) -> None:
    fg = FGClipEmbedding(**fg_kwargs(emulator))
    documents = image_documents(images)
    index = MultiModalVectorStoreIndex.from_documents(
        documents, embed_model=fg, image_embed_model=fg
    )
    requests = embed_requests(emulator, "fgclip")
    assert [r.items for r in requests] == [len(images)]  # all images in one call
    retriever = index.as_retriever(image_similarity_top_k=3)
    for query, colour in COLOUR_QUERIES:
        hits = retriever.text_to_image_retrieve(query)
        assert isinstance(hits[0].node, ImageNode)
        assert hits[0].node.image_path == str(images[colour]), query
    # Image -> image finds the same picture first.
    same = retriever.image_to_image_retrieve(str(images["purple"]))
    assert same[0].node.image_path == str(images["purple"])


async def test_multimodal_index_async(emulator: Emulator, images: dict[str, Path]) -> None:
    fg = FGClipEmbedding(**fg_kwargs(emulator))
    index = MultiModalVectorStoreIndex(nodes=[], embed_model=fg, image_embed_model=fg)
    nodes = [ImageNode(image_path=str(path)) for path in images.values()]
    nodes.append(TextNode(text="A note about red squares and other shapes."))
    await index.ainsert_nodes(nodes)
    assert sorted(r.items for r in embed_requests(emulator, "fgclip")) == [1, len(images)]
    retriever = index.as_retriever(image_similarity_top_k=2, similarity_top_k=1)
    for query, colour in COLOUR_QUERIES:
        hits = await retriever.atext_to_image_retrieve(query)
        assert hits[0].node.image_path == str(images[colour]), query
    text_hits = await retriever.atext_retrieve("red squares")
    assert "red squares" in text_hits[0].node.get_content()


def test_multimodal_index_with_viking_images(emulator: Emulator, images: dict[str, Path]) -> None:
    embed = VikingEmbedding(**viking_kwargs(emulator), model_name="bge-visualized-m3")
    documents = image_documents(images)
    index = MultiModalVectorStoreIndex.from_documents(
        documents, embed_model=embed, image_embed_model=embed
    )
    assert [r.items for r in embed_requests(emulator, "viking")] == [len(images)]
    hits = index.as_retriever(image_similarity_top_k=1).text_to_image_retrieve("something blue")
    assert hits[0].node.image_path == str(images["blue"])


@pytest.mark.parametrize("batch", [2, 100])
def test_embed_batch_size_bounds_each_request(emulator: Emulator, batch: int) -> None:
    embed = viking(emulator, embed_batch_size=batch)
    embed.get_text_embedding_batch(synthetic(5))
    sizes = [r.items for r in embed_requests(emulator, "viking")]
    assert sizes == ([2, 2, 1] if batch == 2 else [5])
