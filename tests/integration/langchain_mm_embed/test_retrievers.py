"""LangChain: HybridRetriever (fusion, weights, top_k, sync/async), the sparse-index and
scored vector-store retrievers, the Qdrant hybrid helper and the store retriever, against
the emulator, Qdrant local mode and milvus-lite."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.vectorstores import InMemoryVectorStore
from langchain_tests.integration_tests import RetrieversIntegrationTests
from pymilvus import MilvusClient
from qdrant_client import QdrantClient

from langchain_mm_embed import VikingEmbeddings, VikingSparseEmbeddings
from langchain_mm_embed.qdrant import qdrant_rrf, viking_qdrant_hybrid
from langchain_mm_embed.retrievers import (
    HybridRetriever,
    HybridStoreRetriever,
    ScoredVectorStoreRetriever,
    SparseIndexRetriever,
)
from mm_embed import VikingClient
from mm_embed.errors import InputError
from mm_embed.hybrid import MilvusHybrid, QdrantHybrid, SparseIndex, VikingHybridEncoder, fuse
from mm_embed.samples import load_corpus, load_queries

CORPUS = load_corpus()
QUERIES = load_queries()
TEXTS = [d.text for d in CORPUS]
IDS = [d.id for d in CORPUS]


class ListRetriever(BaseRetriever):
    """Returns a fixed list (in order), for fusion tests without any model."""

    docs: list[Document]

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return list(self.docs)


def docs(*pairs: tuple[str, float | None]) -> list[Document]:
    return [
        Document(page_content=f"text of {i}", id=i, metadata={} if s is None else {"score": s})
        for i, s in pairs
    ]


DENSE = ListRetriever(docs=docs(("a", 0.9), ("b", 0.8), ("c", 0.5)))
SPARSE = ListRetriever(docs=docs(("c", 12.0), ("d", 7.0), ("a", 1.0)))


# ---------------------------------------------------------------- fusion, no model


def test_rrf_matches_fuse_and_weights_change_the_order() -> None:
    plain = HybridRetriever(retrievers=[DENSE, SPARSE])
    got = plain.invoke("q")
    expected = fuse([{"a": 3, "b": 2, "c": 1}, {"c": 3, "d": 2, "a": 1}])
    assert [(d.id, d.metadata["fused_score"]) for d in got] == expected
    assert got[0].page_content == "text of a" and got[0].metadata["score"] == 0.9
    weighted = HybridRetriever(retrievers=[DENSE, SPARSE], weights=[0.2, 0.8])
    assert [d.id for d in weighted.invoke("q")] == ["c", "a", "d", "b"]
    assert [d.id for d in plain.invoke("q", weights=[1.0, 0.0])] == ["a", "b", "c"]


def test_top_k_and_per_call_overrides() -> None:
    r = HybridRetriever(retrievers=[DENSE, SPARSE], top_k=2)
    assert len(r.invoke("q")) == 2
    assert len(r.invoke("q", top_k=3)) == 3
    assert len(HybridRetriever(retrievers=[DENSE, SPARSE], top_k=None).invoke("q")) == 4
    # k=0 makes rank 1 count double rank 2
    assert r.invoke("q", k=0)[0].metadata["fused_score"] == pytest.approx(1 + 1 / 3)
    with pytest.raises(InputError, match="unknown argument"):
        r.invoke("q", limit=3)


def test_score_methods_use_metadata_scores_or_fall_back_to_rank() -> None:
    r = HybridRetriever(retrievers=[DENSE, SPARSE], method="relative_score", top_k=None)
    scores = {d.id: d.metadata["fused_score"] for d in r.invoke("q")}
    assert scores == pytest.approx({"a": 1.0, "b": 0.75, "c": 1.0, "d": 6 / 11})
    unscored = ListRetriever(docs=docs(("c", None), ("d", None), ("a", None)))
    r2 = HybridRetriever(retrievers=[DENSE, unscored], method="relative_score", top_k=None)
    scores2 = {d.id: d.metadata["fused_score"] for d in r2.invoke("q")}
    # ranks -0, -1, -2 min-max to 1, 0.5, 0
    assert scores2 == pytest.approx({"a": 1.0, "b": 0.75, "c": 1.0, "d": 0.5})


def test_identity_by_metadata_key_and_content() -> None:
    one = ListRetriever(docs=[Document(page_content="x", metadata={"src": "1"})])
    two = ListRetriever(docs=[Document(page_content="x again", metadata={"src": "1"})])
    by_key = HybridRetriever(retrievers=[one, two], id_key="src", fused_score_key=None)
    out = by_key.invoke("q")
    assert len(out) == 1 and out[0].page_content == "x" and out[0].metadata == {"src": "1"}
    by_content = HybridRetriever(retrievers=[one, two])
    assert len(by_content.invoke("q")) == 2


async def test_async_matches_sync() -> None:
    r = HybridRetriever(retrievers=[DENSE, SPARSE], weights=[1, 3], method="dbsf")
    assert [d.id for d in await r.ainvoke("q")] == [d.id for d in r.invoke("q")]


def test_bad_configuration() -> None:
    with pytest.raises(ValueError, match="weights has 1 entries for 2 retrievers"):
        HybridRetriever(retrievers=[DENSE, SPARSE], weights=[1.0])
    with pytest.raises(ValueError, match="finite numbers"):
        HybridRetriever(retrievers=[DENSE, SPARSE], weights=[1.0, -1.0])
    with pytest.raises(ValueError, match="retrievers"):
        HybridRetriever(retrievers=[])
    with pytest.raises(InputError, match="unknown fusion method"):
        HybridRetriever(retrievers=[DENSE]).invoke("q", method="borda")


class TestHybridRetrieverStandard(RetrieversIntegrationTests):
    """LangChain's own retriever suite; the result count argument is ``top_k`` (``k`` is
    the RRF constant, as in the issue)."""

    @property
    def retriever_constructor(self) -> type[HybridRetriever]:
        return HybridRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"retrievers": [DENSE, SPARSE]}

    @property
    def retriever_query_example(self) -> str:
        return "query"

    @property
    def num_results_arg_name(self) -> str:
        return "top_k"


# ---------------------------------------------------------------- with the emulator


def viking_kwargs(emu: Any) -> dict[str, Any]:
    return {"access_key": emu.access_key, "secret_key": emu.secret_key, "base_url": emu.url}


def embedded(emu: Any) -> list[Any]:
    return [r for r in emu.log if r.embedded]


def test_in_memory_hybrid_reproduces_the_core_ranking(emu: Any) -> None:
    """Dense InMemoryVectorStore + SparseIndexRetriever with paired Viking embeddings:
    one request per text for both vectors, and the same RRF top-10 as the core pipeline
    of the sample-set measurement (20 candidates per side)."""
    dense = VikingEmbeddings(model="bge-m3", **viking_kwargs(emu))
    sparse = VikingSparseEmbeddings.from_dense(dense)
    emu.clear_log()
    hybrid = HybridRetriever.from_texts(TEXTS, dense, sparse, ids=IDS, candidates=20, top_k=10)
    log = embedded(emu)
    assert sum(r.items for r in log) == 52 and len(log) == 1  # one request, both kinds

    with VikingClient(**viking_kwargs(emu)) as client:
        encoder = VikingHybridEncoder(client)
        enc_docs = encoder.encode_documents(TEXTS)
        enc_queries = encoder.encode_queries([q.text for q in QUERIES])
    index = SparseIndex()
    index.add(IDS, enc_docs.sparse)  # type: ignore[arg-type]
    matrix = enc_docs.dense / np.linalg.norm(enc_docs.dense, axis=1, keepdims=True)
    for i, query in enumerate(QUERIES):
        emu.clear_log()
        got = [d.id for d in hybrid.invoke(query.text)]
        assert [r.items for r in embedded(emu)] == [1], query.id  # dense+sparse, one request
        sims = matrix @ (enc_queries.dense[i] / np.linalg.norm(enc_queries.dense[i]))
        dense_top = sorted(zip(IDS, sims.tolist(), strict=True), key=lambda x: (-x[1], x[0]))[:20]
        sparse_top = index.search(enc_queries.sparse[i], top_k=20)  # type: ignore[index]
        expected = [d for d, _ in fuse([dict(dense_top), dict(sparse_top)], top_k=10)]
        assert got == expected, query.id


async def test_async_hybrid_query_sends_one_request_per_new_query(emu: Any) -> None:
    """``ainvoke`` runs the dense and the sparse retriever concurrently; with paired
    Viking embeddings their two first asks for a new query share one request (they
    used to send one each), and a repeated query sends none."""
    dense = VikingEmbeddings(model="bge-m3", **viking_kwargs(emu))
    sparse = VikingSparseEmbeddings.from_dense(dense)
    hybrid = HybridRetriever.from_texts(TEXTS, dense, sparse, ids=IDS, candidates=20, top_k=10)
    for query in QUERIES[:6]:
        emu.clear_log()
        got = [d.id for d in await hybrid.ainvoke(query.text)]
        assert [r.items for r in embedded(emu)] == [1], query.id
        assert got == [d.id for d in hybrid.invoke(query.text)]
        assert [d.id for d in await hybrid.ainvoke(query.text)] == got
        assert [r.items for r in embedded(emu)] == [1], query.id  # both held since


def test_composed_vector_store_and_sparse_index(emu: Any) -> None:
    dense = VikingEmbeddings(model="bge-m3", **viking_kwargs(emu))
    store = InMemoryVectorStore(dense)
    store.add_texts(TEXTS[16:25], ids=IDS[16:25], metadatas=[{"n": i} for i in range(9)])
    sparse = SparseIndexRetriever.from_texts(
        TEXTS[16:25], VikingSparseEmbeddings.from_dense(dense), ids=IDS[16:25]
    )
    dense_r = ScoredVectorStoreRetriever(vectorstore=store, scores="raw")
    hybrid = HybridRetriever(retrievers=[dense_r, sparse], method="relative_score", top_k=2)
    hits = hybrid.invoke("OOMKilled memory limit")
    assert hits[0].id == "k8s-08" and hits[0].metadata["n"] == 7
    assert hits[0].metadata["fused_score"] == pytest.approx(2.0)  # best on both sides


async def test_sparse_index_retriever_async(emu: Any) -> None:
    sparse = VikingSparseEmbeddings(model="bge-m3", **viking_kwargs(emu))
    retriever = SparseIndexRetriever(sparse_embeddings=sparse, top_k=3)
    ids = await retriever.aadd_documents([Document(page_content=t) for t in TEXTS[16:25]])
    assert ids == [str(i) for i in range(9)] and len(retriever) == 9
    hits = await retriever.ainvoke("kubectl rollout undo")
    assert hits[0].page_content == TEXTS[16] and hits[0].metadata["score"] > 0
    assert [d.id for d in retriever.invoke("kubectl rollout undo", top_k=1)] == ["0"]


def test_scored_vector_store_retriever_needs_relevance_or_raw(emu: Any) -> None:
    store = InMemoryVectorStore(VikingEmbeddings(model="bge-m3", **viking_kwargs(emu)))
    store.add_texts(TEXTS[:3])
    with pytest.raises(InputError, match="scores='raw'"):
        ScoredVectorStoreRetriever(vectorstore=store).invoke("bread")
    raw = ScoredVectorStoreRetriever(vectorstore=store, scores="raw", top_k=2).invoke("bread")
    assert len(raw) == 2 and raw[0].metadata["score"] >= raw[1].metadata["score"]


@pytest.mark.parametrize("where", ["memory", "path"])
def test_viking_qdrant_hybrid_store(emu: Any, tmp_path: Path, where: str) -> None:
    client = QdrantClient(":memory:") if where == "memory" else QdrantClient(path=str(tmp_path))
    dense = VikingEmbeddings(model="bge-m3", **viking_kwargs(emu))
    emu.clear_log()
    store = viking_qdrant_hybrid(dense, collection_name="docs", client=client)
    assert embedded(emu) == []  # no "dummy_text" probe request
    store.add_texts(TEXTS, ids=[f"00000000-0000-0000-0000-{i:012d}" for i in range(52)])
    log = embedded(emu)
    assert sum(r.items for r in log) == 52
    assert max(Counter(h for r in log for h in r.item_hashes).values()) == 1
    params = client.get_collection("docs").config.params
    assert params.vectors["dense"].size == 1024  # type: ignore[index]
    assert "sparse" in (params.sparse_vectors or {})

    emu.clear_log()
    hits = store.similarity_search(
        "autoscaling pods on CPU usage", k=3, hybrid_fusion=qdrant_rrf(60)
    )
    assert [r.items for r in embedded(emu)] == [1]
    assert hits[0].page_content == TEXTS[17]  # k8s-02
    retriever = store.as_retriever(search_kwargs={"k": 2, "hybrid_fusion": qdrant_rrf()})
    assert len(retriever.invoke("OOMKilled memory limit")) == 2

    other = VikingEmbeddings(model="doubao-embedding-and-m3", **viking_kwargs(emu))
    with pytest.raises(InputError, match="2048-d"):
        viking_qdrant_hybrid(other, collection_name="docs", client=client)
    with pytest.raises(InputError, match="k must be"):
        qdrant_rrf(-1)


@pytest.fixture(scope="module")
def viking(emu: Any) -> Iterator[VikingClient]:
    with VikingClient(**viking_kwargs(emu)) as client:
        yield client


def test_store_retriever_over_qdrant_and_milvus(
    emu: Any, viking: VikingClient, tmp_path: Path
) -> None:
    milvus = MilvusClient(str(tmp_path / "lc.db"))
    stores = [
        QdrantHybrid.from_viking(QdrantClient(":memory:"), "lc", viking),
        MilvusHybrid.from_viking(milvus, "lc", viking),
    ]
    try:
        for store in stores:
            store.add_texts(TEXTS[16:34], ids=IDS[16:34], metadatas=[{"n": i} for i in range(18)])
            retriever = HybridStoreRetriever(store=store, top_k=3)
            emu.clear_log()
            hits = retriever.invoke("OOMKilled memory limit")
            assert [r.items for r in embedded(emu)] == [1]
            assert hits[0].id == "k8s-08" and hits[0].metadata["n"] == 7
            assert hits[0].metadata["score"] > 0 and len(hits) == 3
            client = retriever.invoke("OOMKilled memory limit", client_side=True, fusion="dbsf")
            assert client[0].id == "k8s-08"
            with pytest.raises(InputError, match="unknown argument"):
                retriever.invoke("x", limit=2)
    finally:
        milvus.close()


async def test_store_retriever_async(viking: VikingClient) -> None:
    store = QdrantHybrid.from_viking(QdrantClient(":memory:"), "lc", viking)
    store.add_texts(TEXTS[:10], ids=IDS[:10])
    retriever = HybridStoreRetriever(store=store, top_k=2, mode="sparse")
    hits = await retriever.ainvoke("sourdough starter")
    assert hits[0].id == "bread-01" and len(hits) <= 2
