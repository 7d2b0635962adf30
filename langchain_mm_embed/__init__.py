"""LangChain adapters for mm-embed: 360 FG-CLIP and Volcengine VikingDB embeddings.

* :class:`FGClipEmbeddings`: texts, images and region (box) features in one space.
* :class:`VikingEmbeddings`: Viking dense vectors for texts, images, text-image pairs
  and full-modal sequences.
* :class:`VikingSparseEmbeddings`: Viking sparse vectors for ``langchain_qdrant`` hybrid
  search (``langchain_qdrant.SparseVector`` values); ``from_dense`` pairs it with a
  :class:`VikingEmbeddings` so one request per text brings both vectors.
* :class:`HybridRetriever` (and :class:`HybridStoreRetriever`,
  :class:`ScoredVectorStoreRetriever`, :class:`SparseIndexRetriever`): dense + sparse
  retrieval fused with :func:`mm_embed.hybrid.fuse` (weights, ``k``, ``top_k``);
  :func:`fgclip_relevance_score` turns FG-CLIP cosines into relevance scores.
* :func:`viking_qdrant_hybrid`: a ready ``langchain_qdrant.QdrantVectorStore`` in
  hybrid mode from a Viking model; :func:`qdrant_rrf` fixes Qdrant's RRF constant.

Install with ``pip install "mm-embed[langchain]"`` (add ``qdrant`` for Qdrant hybrid
search). The sparse module is imported on first use: ``langchain_qdrant`` is slow to
import and optional.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .fgclip import FGClipEmbeddings, fgclip_relevance_score
from .retrievers import (
    HybridRetriever,
    HybridStoreRetriever,
    ScoredVectorStoreRetriever,
    SparseIndexRetriever,
)
from .viking import VikingEmbeddings

if TYPE_CHECKING:
    from .qdrant import qdrant_rrf, viking_qdrant_hybrid
    from .sparse import VikingSparseEmbeddings

__all__ = [
    "FGClipEmbeddings",
    "HybridRetriever",
    "HybridStoreRetriever",
    "ScoredVectorStoreRetriever",
    "SparseIndexRetriever",
    "VikingEmbeddings",
    "VikingSparseEmbeddings",
    "fgclip_relevance_score",
    "qdrant_rrf",
    "viking_qdrant_hybrid",
]

# Imported on first use: langchain_qdrant is optional and slow to import.
_LAZY = {
    "VikingSparseEmbeddings": "sparse",
    "qdrant_rrf": "qdrant",
    "viking_qdrant_hybrid": "qdrant",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
