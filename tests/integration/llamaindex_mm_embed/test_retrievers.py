"""LlamaIndex: WeightedFusionRetriever (weights in every mode, sync and async) and the
store retriever over Qdrant local mode and milvus-lite, with the emulator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.llms import MockLLM
from llama_index.core.retrievers import QueryFusionRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
from pymilvus import MilvusClient
from qdrant_client import QdrantClient

from llamaindex_mm_embed import VikingEmbedding, viking_hybrid_fns
from llamaindex_mm_embed.retrievers import HybridStoreNodeRetriever, WeightedFusionRetriever
from mm_embed import VikingClient
from mm_embed.errors import InputError
from mm_embed.hybrid import MilvusHybrid, QdrantHybrid, fuse
from mm_embed.samples import load_corpus, load_queries
from tests.integration._helpers import (
    qdrant_hybrid_index,
    qdrant_hybrid_index_async,
    viking_kwargs,
)

CORPUS = load_corpus()
TEXTS = [d.text for d in CORPUS]
IDS = [d.id for d in CORPUS]
QUERIES = load_queries()

pytestmark = pytest.mark.filterwarnings("ignore:Payload indexes have no effect:UserWarning")


class ListRetriever(BaseRetriever):
    """Returns fixed nodes in order (fresh objects: QueryFusionRetriever rewrites the
    scores of the nodes it is given in place)."""

    def __init__(self, pairs: list[tuple[str, float | None]]) -> None:
        super().__init__()
        self.pairs = pairs

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return [
            NodeWithScore(node=TextNode(id_=i, text=f"text {i}"), score=s) for i, s in self.pairs
        ]


DENSE = ListRetriever([("a", 0.9), ("b", 0.8), ("c", 0.5)])
SPARSE = ListRetriever([("c", 12.0), ("d", 7.0), ("a", 1.0)])


def ids(nodes: list[NodeWithScore]) -> list[str]:
    return [n.node.node_id for n in nodes]


def test_weights_are_honoured_in_rrf_unlike_query_fusion_retriever() -> None:
    ours_a = WeightedFusionRetriever([DENSE, SPARSE], weights=[0.8, 0.2]).retrieve("q")
    ours_b = WeightedFusionRetriever([DENSE, SPARSE], weights=[0.2, 0.8]).retrieve("q")
    assert ids(ours_b) == ["c", "a", "d", "b"] != ids(ours_a)
    assert [n.score for n in ours_b] == pytest.approx(
        [
            s
            for _, s in fuse(
                [{"a": 3, "b": 2, "c": 1}, {"c": 3, "d": 2, "a": 1}], weights=[0.2, 0.8]
            )
        ]
    )

    def theirs(weights: list[float]) -> list[str]:
        r = QueryFusionRetriever(
            [DENSE, SPARSE],
            mode="reciprocal_rerank",  # type: ignore[arg-type]
            retriever_weights=weights,
            num_queries=1,
            use_async=False,
            llm=MockLLM(),
            similarity_top_k=4,
        )
        return ids(r.retrieve("q"))

    # LlamaIndex's reciprocal-rank mode gives the same order whatever the weights.
    assert theirs([0.8, 0.2]) == theirs([0.2, 0.8])


def test_score_modes_and_rank_fallback() -> None:
    r = WeightedFusionRetriever([DENSE, SPARSE], method="relative_score", top_k=None)
    assert {n.node.node_id: n.score for n in r.retrieve("q")} == pytest.approx(
        {"a": 1.0, "b": 0.75, "c": 1.0, "d": 6 / 11}
    )
    unscored = ListRetriever([("c", None), ("d", None), ("a", None)])
    r2 = WeightedFusionRetriever([DENSE, unscored], method="dbsf", weights=[0.0, 1.0])
    assert ids(r2.retrieve("q")) == ["c", "d", "a"]  # the unscored retriever's own order
    assert len(WeightedFusionRetriever([DENSE, SPARSE], top_k=2).retrieve("q")) == 2


def test_input_nodes_are_not_modified() -> None:
    shared = [NodeWithScore(node=TextNode(id_="x", text="x"), score=0.3)]

    class Shared(BaseRetriever):
        def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
            return shared

    out = WeightedFusionRetriever([Shared(), DENSE], method="relative_score").retrieve("q")
    x = next(n for n in out if n.node.node_id == "x")
    assert x.score == 1.0 and x.node is shared[0].node
    assert shared[0].score == 0.3


async def test_async_matches_sync() -> None:
    r = WeightedFusionRetriever([DENSE, SPARSE], weights=[1, 3], method="dbsf")
    assert ids(await r.aretrieve("q")) == ids(r.retrieve("q"))


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"weights": [1.0]}, "weights has 1 entries"),
        ({"weights": [1.0, -2.0]}, "finite numbers"),
        ({"method": "borda"}, "unknown fusion method"),
        ({"top_k": -1}, "top_k"),
    ],
)
def test_bad_configuration(kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InputError, match=fragment):
        WeightedFusionRetriever([DENSE, SPARSE], **kwargs)
    with pytest.raises(InputError, match="non-empty list"):
        WeightedFusionRetriever([])


# ---------------------------------------------------------------- with the emulator


def embedded(emu: Any) -> list[Any]:
    return [r for r in emu.log if r.embedded]


def test_fusing_llamaindex_qdrant_dense_and_sparse_retrievers(emu: Any) -> None:
    """LlamaIndex's own Qdrant store (hybrid, paired Viking functions) queried dense and
    sparse separately and fused with weights: one request per text and per query."""
    dense = VikingEmbedding(**viking_kwargs(emu), model_name="bge-m3")
    emu.clear_log()
    index = qdrant_hybrid_index(dense, viking_hybrid_fns(dense), TEXTS, IDS)
    assert sum(r.items for r in embedded(emu)) == 52
    dense_r = index.as_retriever(similarity_top_k=10)
    sparse_r = index.as_retriever(
        vector_store_query_mode="sparse", sparse_top_k=10, similarity_top_k=10
    )
    query = "autoscaling pods on CPU usage"
    emu.clear_log()
    sparse_top = sparse_r.retrieve(query)[0].node.get_content()
    dense_top = dense_r.retrieve(query)[0].node.get_content()
    assert [r.items for r in embedded(emu)] == [1]  # both sides from one request
    assert sparse_top != dense_top
    for weights, expected in (([0.0, 1.0], sparse_top), ([1.0, 0.0], dense_top)):
        fused = WeightedFusionRetriever([dense_r, sparse_r], weights=weights, top_k=3).retrieve(
            query
        )
        assert fused[0].node.get_content() == expected


async def test_async_fusion_of_dense_and_sparse_sends_one_request_per_new_query(
    emu: Any,
) -> None:
    """``aretrieve`` of a fusion retriever runs the dense and the sparse retriever
    concurrently: the dense one embeds the query in a task while the store calls its
    sparse function synchronously on the loop's thread. With paired Viking models the
    two share one request per new query (they used to send one each)."""
    dense = VikingEmbedding(**viking_kwargs(emu), model_name="bge-m3")
    index = await qdrant_hybrid_index_async(dense, viking_hybrid_fns(dense), TEXTS)
    dense_r = index.as_retriever(similarity_top_k=10)
    sparse_r = index.as_retriever(vector_store_query_mode="sparse", sparse_top_k=10)
    ours = WeightedFusionRetriever([dense_r, sparse_r], top_k=5)
    theirs = QueryFusionRetriever(
        [dense_r, sparse_r], llm=MockLLM(), num_queries=1, mode="relative_score", similarity_top_k=5
    )
    for n, query in enumerate(QUERIES[:4]):
        for fusion in (ours, theirs):
            emu.clear_log()
            text = f"{query.text} ({n}, {type(fusion).__name__})"  # a new query each time
            hits = await fusion.aretrieve(text)
            assert [r.items for r in embedded(emu)] == [1], text
            assert len(hits) == 5
    await dense.aclose()


def test_store_retriever_over_qdrant_and_milvus(
    emu: Any, viking: VikingClient, tmp_path: Path
) -> None:
    milvus = MilvusClient(str(tmp_path / "li.db"))
    stores = [
        QdrantHybrid.from_viking(QdrantClient(path=str(tmp_path / "q")), "li", viking),
        MilvusHybrid.from_viking(milvus, "li", viking),
    ]
    try:
        for store in stores:
            store.add_texts(TEXTS[16:34], ids=IDS[16:34], metadatas=[{"n": i} for i in range(18)])
            retriever = HybridStoreNodeRetriever(store, top_k=3)
            emu.clear_log()
            hits = retriever.retrieve("OOMKilled memory limit")
            assert [r.items for r in embedded(emu)] == [1]
            assert hits[0].node.node_id == "k8s-08" and hits[0].node.metadata == {"n": 7}
            assert hits[0].node.get_content() == TEXTS[23] and len(hits) == 3
            dense_only = HybridStoreNodeRetriever(store, top_k=2, mode="dense").retrieve(
                "OOMKilled"
            )
            assert len(dense_only) == 2
    finally:
        milvus.close()


async def test_store_retriever_async(viking: VikingClient) -> None:
    store = QdrantHybrid.from_viking(QdrantClient(":memory:"), "li", viking)
    store.add_texts(TEXTS[:10], ids=IDS[:10])
    hits = await HybridStoreNodeRetriever(store, top_k=2, fusion="dbsf").aretrieve(
        "sourdough starter"
    )
    assert hits[0].node.node_id == "bread-01"
    with pytest.raises(InputError, match="QdrantHybrid or MilvusHybrid"):
        HybridStoreNodeRetriever(object())  # type: ignore[arg-type]
