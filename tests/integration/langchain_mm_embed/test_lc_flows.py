"""Real LangChain flows over the emulator: in-memory store, Qdrant hybrid search in
local mode, an image collection searched by text, and region (box) search."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from langchain_core.documents import Document
from langchain_core.vectorstores import InMemoryVectorStore
from langchain_qdrant import QdrantVectorStore, RetrievalMode
from qdrant_client import QdrantClient, models

from langchain_mm_embed import FGClipEmbeddings, VikingEmbeddings, VikingSparseEmbeddings
from mm_embed.emulator import SAMPLES

if TYPE_CHECKING:
    from mm_embed.emulator import Emulator

TEXTS = [
    "Qdrant stores dense and sparse vectors side by side",
    "the red fox jumps over the lazy dog",
    "hybrid retrieval fuses lexical and semantic rankings",
    "bananas are rich in potassium",
    "the emulator answers on loopback only",
]


@pytest.mark.parametrize("which", ["fgclip", "viking"])
def test_in_memory_vector_store(
    which: str, fgclip: FGClipEmbeddings, viking: VikingEmbeddings
) -> None:
    embedding = fgclip if which == "fgclip" else viking
    store = InMemoryVectorStore.from_texts(
        TEXTS, embedding, metadatas=[{"n": i} for i in range(len(TEXTS))]
    )
    hits = store.similarity_search("which fruit is rich in potassium?", k=2)
    assert hits[0].page_content == TEXTS[3]
    assert hits[0].metadata == {"n": 3}
    scored = store.similarity_search_with_score("a fox and a lazy dog", k=len(TEXTS))
    assert scored[0][0].page_content == TEXTS[1]
    assert scored[0][1] > scored[-1][1]


async def test_in_memory_vector_store_async(viking: VikingEmbeddings) -> None:
    store = await InMemoryVectorStore.afrom_texts(TEXTS, viking)
    hits = await store.asimilarity_search("loopback emulator", k=1)
    assert hits[0].page_content == TEXTS[4]


def _hybrid_store(
    dense: VikingEmbeddings, sparse: VikingSparseEmbeddings, name: str
) -> QdrantVectorStore:
    return QdrantVectorStore.from_texts(
        TEXTS,
        embedding=dense,
        sparse_embedding=sparse,
        location=":memory:",
        collection_name=name,
        retrieval_mode=RetrievalMode.HYBRID,
    )


def test_qdrant_hybrid_search_asks_once_per_text(
    viking_settings: dict[str, Any], requests_on: Callable[[str], int]
) -> None:
    dense = VikingEmbeddings(model="doubao-embedding-and-m3", dimension=512, **viking_settings)
    sparse = VikingSparseEmbeddings.from_dense(dense)
    store = _hybrid_store(dense, sparse, "paired")
    # One request sizes the collection ("dummy_text"), one embeds the batch both ways.
    assert requests_on("viking") == 2
    hits = store.similarity_search("lexical and semantic hybrid retrieval", k=2)
    assert hits[0].page_content == TEXTS[2]
    assert requests_on("viking") == 3

    # The same flow with unpaired objects costs a request per vector kind.
    alone_dense = VikingEmbeddings(model=dense.model, dimension=512, **viking_settings)
    alone_sparse = VikingSparseEmbeddings(model=dense.model, **viking_settings)
    alone = _hybrid_store(alone_dense, alone_sparse, "unpaired")
    assert requests_on("viking") == 3 + 3
    assert [d.page_content for d in alone.similarity_search(TEXTS[2], k=2)] == [
        d.page_content for d in store.similarity_search(TEXTS[2], k=2)
    ]
    # 2 for the unpaired query; the paired one finds TEXTS[2] cached from indexing.
    assert requests_on("viking") == 6 + 2


def test_qdrant_sparse_only_and_dense_only(viking_settings: dict[str, Any]) -> None:
    sparse = VikingSparseEmbeddings(model="bge-m3", **viking_settings)
    store = QdrantVectorStore.from_texts(
        TEXTS,
        sparse_embedding=sparse,
        location=":memory:",
        collection_name="sparse",
        retrieval_mode=RetrievalMode.SPARSE,
    )
    assert store.similarity_search("potassium bananas", k=1)[0].page_content == TEXTS[3]


def _precomputed_store(
    embedding: FGClipEmbeddings, labels: list[str], vectors: list[list[float]]
) -> QdrantVectorStore:
    """A Qdrant collection of precomputed (image or box) vectors, queried through
    LangChain with ``embedding.embed_query``."""
    client = QdrantClient(":memory:")
    client.create_collection(
        "media",
        vectors_config=models.VectorParams(size=len(vectors[0]), distance=models.Distance.COSINE),
    )
    client.upsert(
        "media",
        points=[
            models.PointStruct(id=i, vector=v, payload={"page_content": label, "metadata": {}})
            for i, (label, v) in enumerate(zip(labels, vectors, strict=True))
        ],
    )
    return QdrantVectorStore(client=client, collection_name="media", embedding=embedding)


def test_image_collection_searched_by_text(fgclip: FGClipEmbeddings, emulator: Emulator) -> None:
    names = [n for n in SAMPLES if n != "red-circle-blue-square"]
    vectors = fgclip.embed_image(uris=[emulator.sample_url(n) for n in names])
    store = _precomputed_store(fgclip, names, vectors)
    for name in names:
        hit: Document = store.similarity_search(SAMPLES[name].description, k=1)[0]
        assert hit.page_content == name


def test_box_search_ranks_the_right_region_first(emulator: Emulator) -> None:
    emb = FGClipEmbeddings(api_key=emulator.api_key, base_url=emulator.url, query_text_box=True)
    name = "red-circle-blue-square"
    shapes = SAMPLES[name].shapes
    per_image = emb.embed_image_boxes(
        [emulator.sample_url(name), emulator.sample_url("green-square")],
        [[list(box) for _, _, box in shapes], [[48, 48, 160, 160]]],
    )
    labels = [f"{c} {s}" for c, s, _ in shapes] + ["green square"]
    store = _precomputed_store(emb, labels, [v for boxes in per_image for v in boxes])
    for query, expected in [
        ("a red circle", "red circle"),
        ("a blue square", "blue square"),
        ("the green square", "green square"),
    ]:
        ranked = store.similarity_search_with_score(query, k=3)
        assert ranked[0][0].page_content == expected
        assert ranked[0][1] > ranked[1][1]
