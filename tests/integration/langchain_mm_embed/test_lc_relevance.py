"""FG-CLIP's match probability as a relevance score: ``fgclip_relevance_score`` through
``ScoredVectorStoreRetriever(relevance_score_fn=...)`` over real vector stores (LangChain's
in-memory store, Qdrant local mode) gives scores in [0, 1] ordered like the cosines."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import pytest
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import InMemoryVectorStore, VectorStore
from langchain_qdrant import QdrantVectorStore
from pydantic import ValidationError
from qdrant_client import QdrantClient, models

from langchain_mm_embed import FGClipEmbeddings, ScoredVectorStoreRetriever, fgclip_relevance_score
from mm_embed import fgclip_probability
from mm_embed.emulator import SAMPLES

if TYPE_CHECKING:
    from mm_embed.emulator import Emulator


def test_the_score_is_the_published_sigmoid() -> None:
    for cosine in (-1.0, 0.0, 0.1, 0.145, 0.2, 0.3, 1.0):
        expected = 1 / (1 + math.exp(-(115.5843 * cosine - 16.75)))
        assert fgclip_relevance_score(cosine) == pytest.approx(expected, rel=1e-9, abs=1e-12)
        assert isinstance(fgclip_relevance_score(cosine), float)
    assert fgclip_relevance_score(0.3) == pytest.approx(float(fgclip_probability(0.3)))


class PictureEmbeddings(Embeddings):
    """Documents are picture URLs embedded as pictures; queries are texts (the
    multimodal text -> image search FG-CLIP's probability is made for)."""

    def __init__(self, fgclip: FGClipEmbeddings) -> None:
        self.fgclip = fgclip

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.fgclip.embed_image(texts)

    def embed_query(self, text: str) -> list[float]:
        return self.fgclip.embed_query(text)


def _stores(fgclip: FGClipEmbeddings, emulator: Emulator) -> dict[str, VectorStore]:
    urls = [emulator.sample_url(name) for name in SAMPLES if name != "red-circle-blue-square"]
    pictures = PictureEmbeddings(fgclip)
    client = QdrantClient(":memory:")
    client.create_collection(
        "pictures", vectors_config=models.VectorParams(size=768, distance=models.Distance.COSINE)
    )
    qdrant = QdrantVectorStore(
        client=client,
        collection_name="pictures",
        embedding=pictures,
        validate_collection_config=False,  # its check embeds a text as a document
    )
    qdrant.add_texts(urls)
    return {"in-memory": InMemoryVectorStore.from_texts(urls, pictures), "qdrant": qdrant}


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_relevance_in_0_1_ordered_like_the_cosines(
    fgclip: FGClipEmbeddings, emulator: Emulator, mode: str
) -> None:
    for name, store in _stores(fgclip, emulator).items():
        raw = ScoredVectorStoreRetriever(vectorstore=store, scores="raw", top_k=10)
        relevance = ScoredVectorStoreRetriever(
            vectorstore=store, top_k=10, relevance_score_fn=fgclip_relevance_score
        )
        for query in ("a red circle", "a green square"):
            if mode == "sync":
                cosines, scored = raw.invoke(query), relevance.invoke(query)
            else:
                cosines, scored = await raw.ainvoke(query), await relevance.ainvoke(query)
            assert [d.page_content for d in scored] == [d.page_content for d in cosines], name
            scores = [d.metadata["score"] for d in scored]
            assert all(0.0 <= s <= 1.0 for s in scores), (name, scores)
            assert scores == sorted(scores, reverse=True)
            assert scores == [
                pytest.approx(fgclip_relevance_score(d.metadata["score"])) for d in cosines
            ]
            assert len(set(scores)) > 1  # a real spread, not a constant


def test_relevance_fn_goes_with_relevance_scores(fgclip: FGClipEmbeddings) -> None:
    store: Any = InMemoryVectorStore(fgclip)
    with pytest.raises(ValidationError, match="relevance_score_fn goes with scores='relevance'"):
        ScoredVectorStoreRetriever(
            vectorstore=store, scores="raw", relevance_score_fn=fgclip_relevance_score
        )
