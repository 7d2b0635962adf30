"""Hybrid retrieval through llama-index-vector-stores-qdrant (Qdrant local mode) with the
Viking sparse functions: one provider call per text for dense + sparse, sync and async
query engines and retrievers, and QueryFusionRetriever over dense and sparse retrievers."""

from __future__ import annotations

import pytest
from llama_index.core import VectorStoreIndex
from llama_index.core.llms import MockLLM
from llama_index.core.retrievers import QueryFusionRetriever
from llama_index.vector_stores.qdrant import QdrantVectorStore

from llamaindex_mm_embed import (
    VikingEmbedding,
    VikingSparseEmbedding,
    qdrant_sparse_fns,
    viking_hybrid_fns,
)
from mm_embed import ConfigurationError
from mm_embed.emulator import Emulator
from tests.integration._helpers import (
    FACTS,
    QUERIES,
    embed_requests,
    qdrant_hybrid_index,
    qdrant_hybrid_index_async,
    viking_kwargs,
)

MODEL = "doubao-embedding-and-m3"

# Qdrant local mode warns that payload indexes do nothing there; the store creates one.
pytestmark = pytest.mark.filterwarnings("ignore:Payload indexes have no effect:UserWarning")


def dense_model(emu: Emulator) -> VikingEmbedding:
    return VikingEmbedding(**viking_kwargs(emu), model_name=MODEL, dimension=512)


def items(emu: Emulator) -> list[str]:
    """Hashes of every item the provider embedded, once per time it was embedded."""
    return [h for r in embed_requests(emu, "viking") for h in r.item_hashes]


def hybrid_index(emu: Emulator) -> tuple[VectorStoreIndex, VikingEmbedding]:
    """The facts in a hybrid Qdrant store, dense and sparse from one paired model."""
    dense = dense_model(emu)
    return qdrant_hybrid_index(dense, viking_hybrid_fns(dense), list(FACTS.values())), dense


async def async_hybrid_index(emu: Emulator) -> tuple[VectorStoreIndex, VikingEmbedding]:
    """The async twin of :func:`hybrid_index`."""
    dense = dense_model(emu)
    index = await qdrant_hybrid_index_async(dense, viking_hybrid_fns(dense), list(FACTS.values()))
    return index, dense


def test_hybrid_index_asks_once_per_text(emulator: Emulator) -> None:
    index, _ = hybrid_index(emulator)
    embedded = items(emulator)
    assert len(embedded) == len(FACTS) == len(set(embedded))
    assert len(embed_requests(emulator, "viking")) == 1

    # The sparse halves reached the right points: compare with an unpaired sparse model.
    reference = VikingSparseEmbedding(**viking_kwargs(emulator), model_name=MODEL)
    store = index.vector_store
    assert isinstance(store, QdrantVectorStore)
    points, _ = store.client.scroll(
        store.collection_name, limit=100, with_vectors=True, with_payload=True
    )
    assert len(points) == len(FACTS)
    for point in points:
        stored = point.vector[str(store.sparse_vector_name)]
        node_text = _node_text(point.payload)
        want = reference.get_text_embedding(node_text)
        assert dict(zip(stored.indices, stored.values, strict=True)) == pytest.approx(want)


def _node_text(payload: dict[str, object] | None) -> str:
    import json

    assert payload is not None
    content = json.loads(str(payload["_node_content"]))
    return str(content["text"])


def test_hybrid_sync_query_engine_and_retriever(emulator: Emulator) -> None:
    index, _ = hybrid_index(emulator)
    emulator.clear_log()
    engine = index.as_query_engine(
        llm=MockLLM(), vector_store_query_mode="hybrid", similarity_top_k=3, sparse_top_k=5
    )
    retriever = index.as_retriever(
        vector_store_query_mode="hybrid", similarity_top_k=3, sparse_top_k=5, alpha=0.3
    )
    for n, (query, key) in enumerate(QUERIES, start=1):
        response = engine.query(query)
        assert response.source_nodes[0].node.get_content() == FACTS[key]
        # One provider call per query text, serving both the dense and the sparse side.
        assert len(items(emulator)) == n
        hits = retriever.retrieve(query)
        assert hits[0].node.get_content() == FACTS[key]
        assert len(items(emulator)) == n  # the same query again: both vectors are held


async def test_hybrid_async_build_query_engine_and_retriever(emulator: Emulator) -> None:
    index, dense = await async_hybrid_index(emulator)
    assert len(items(emulator)) == len(FACTS) == len(set(items(emulator)))

    engine = index.as_query_engine(
        llm=MockLLM(), vector_store_query_mode="hybrid", similarity_top_k=3, sparse_top_k=5
    )
    retriever = index.as_retriever(vector_store_query_mode="hybrid", similarity_top_k=2)
    for query, key in QUERIES:
        before = len(items(emulator))
        response = await engine.aquery(query)
        assert response.source_nodes[0].node.get_content() == FACTS[key]
        hits = await retriever.aretrieve(query)
        assert hits[0].node.get_content() == FACTS[key]
        assert len(items(emulator)) == before + 1
    await dense.aclose()


def test_sparse_only_model_in_a_hybrid_store(emulator: Emulator) -> None:
    # Dense and sparse from different models: qdrant_sparse_fns, no pairing.
    dense = VikingEmbedding(**viking_kwargs(emulator), model_name="doubao-embedding", dimension=512)
    sparse = VikingSparseEmbedding(**viking_kwargs(emulator), model_name="bge-m3")
    index = qdrant_hybrid_index(dense, qdrant_sparse_fns(sparse), list(FACTS.values()))
    assert len(items(emulator)) == 2 * len(FACTS)  # one dense and one sparse call per text
    retriever = index.as_retriever(vector_store_query_mode="sparse", sparse_top_k=2)
    for query, key in QUERIES:
        assert retriever.retrieve(query)[0].node.get_content() == FACTS[key]


def test_query_fusion_over_dense_and_sparse(emulator: Emulator) -> None:
    index, _ = hybrid_index(emulator)
    emulator.clear_log()
    dense_retriever = index.as_retriever(similarity_top_k=3)
    sparse_retriever = index.as_retriever(vector_store_query_mode="sparse", sparse_top_k=3)
    fusion = QueryFusionRetriever(
        [dense_retriever, sparse_retriever],
        llm=MockLLM(),
        num_queries=1,
        mode="reciprocal_rerank",
        similarity_top_k=3,
        use_async=False,
    )
    for n, (query, key) in enumerate(QUERIES, start=1):
        dense_hits = dense_retriever.retrieve(query)
        sparse_hits = sparse_retriever.retrieve(query)
        assert dense_hits[0].node.get_content() == FACTS[key]
        assert sparse_hits[0].node.get_content() == FACTS[key]
        fused = fusion.retrieve(query)
        assert fused[0].node.get_content() == FACTS[key]
        assert {h.node.node_id for h in fused} <= {h.node.node_id for h in dense_hits + sparse_hits}
        # Per query: the dense retriever's call also brings the sparse vector, which the
        # sparse retriever then uses; the fusion's retrievers find both held.
        assert len(items(emulator)) == n


async def test_query_fusion_async(emulator: Emulator) -> None:
    index, _ = await async_hybrid_index(emulator)
    fusion = QueryFusionRetriever(
        [
            index.as_retriever(similarity_top_k=3),
            index.as_retriever(vector_store_query_mode="sparse", sparse_top_k=3),
        ],
        llm=MockLLM(),
        num_queries=1,
        mode="relative_score",
        similarity_top_k=3,
    )
    for query, key in QUERIES:
        emulator.clear_log()
        fused = await fusion.aretrieve(query)
        assert fused[0].node.get_content() == FACTS[key]
        # The dense and sparse retrievers run concurrently and both embed the new
        # query: one provider call between them (they used to send one each).
        assert len(items(emulator)) == 1


def test_pairing_refuses_what_one_call_cannot_serve(emulator: Emulator) -> None:
    with pytest.raises(ConfigurationError, match="no sparse vectors"):
        viking_hybrid_fns(VikingEmbedding(**viking_kwargs(emulator), model_name="doubao-embedding"))
    with pytest.raises(ConfigurationError, match="differ in model_name"):
        viking_hybrid_fns(
            dense_model(emulator),
            VikingSparseEmbedding(**viking_kwargs(emulator), model_name="bge-m3"),
        )
    # A given sparse model of the same model is paired, not replaced.
    dense = dense_model(emulator)
    sparse = VikingSparseEmbedding(**viking_kwargs(emulator), model_name=MODEL)
    doc_fn, _ = viking_hybrid_fns(dense, sparse)
    dense.get_text_embedding_batch(["alpha beta", "gamma"])
    indices, values = doc_fn(["gamma", "alpha beta"])
    assert len(items(emulator)) == 2  # the sparse side was served from the dense call
    assert [len(i) for i in indices] == [1, 2] and [len(v) for v in values] == [1, 2]
