"""Hybrid dense + sparse retrieval, with no framework imports.

* :func:`fuse`: reciprocal rank, relative-score and distribution-based fusion of ranked
  lists, weighted, with documented tie-breaking.
* :class:`SparseIndex`: an exact in-memory sparse dot-product index (numpy only).
* :class:`VikingHybridEncoder` / :class:`FGClipEncoder`: dense + sparse from one provider
  request per batch.
* :class:`QdrantHybrid` (``mm_embed.hybrid.qdrant``, needs ``qdrant-client``) and
  :class:`MilvusHybrid` (``mm_embed.hybrid.milvus``, needs ``pymilvus``): collections
  with named dense and sparse vectors, database-side or client-side fusion. They are
  imported on first use, so ``mm_embed.hybrid`` itself needs neither.
* :func:`ndcg_at_k` and :func:`evaluate_sample_set` measure retrieval on the shipped
  labelled sample set (``mm_embed.samples``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .encoding import Encoded, FGClipEncoder, TextEncoder, VikingHybridEncoder
from .evaluation import EvaluationReport, evaluate_sample_set, mean_ndcg, ndcg_at_k
from .fusion import FUSION_METHODS, FusionMethod, RankedList, fuse, ranked
from .sparse_index import SparseIndex, as_index_values
from .store import Hit, HybridStore, SearchMode, StoreFusion, doc_uuid

if TYPE_CHECKING:
    from .milvus import MilvusHybrid
    from .qdrant import QdrantHybrid

__all__ = [
    "FUSION_METHODS",
    "Encoded",
    "EvaluationReport",
    "FGClipEncoder",
    "FusionMethod",
    "Hit",
    "HybridStore",
    "MilvusHybrid",
    "QdrantHybrid",
    "RankedList",
    "SearchMode",
    "SparseIndex",
    "StoreFusion",
    "TextEncoder",
    "VikingHybridEncoder",
    "as_index_values",
    "doc_uuid",
    "evaluate_sample_set",
    "fuse",
    "mean_ndcg",
    "ndcg_at_k",
    "ranked",
]


def __getattr__(name: str) -> Any:
    # The store backends import their database clients, which are optional extras.
    if name == "QdrantHybrid":
        from .qdrant import QdrantHybrid

        return QdrantHybrid
    if name == "MilvusHybrid":
        from .milvus import MilvusHybrid

        return MilvusHybrid
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
