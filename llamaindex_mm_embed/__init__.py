"""LlamaIndex adapters for mm-embed: 360 FG-CLIP and Volcengine VikingDB embeddings.

* :class:`FGClipEmbedding`, :class:`VikingEmbedding`: ``MultiModalEmbedding`` models
  (texts, queries, images; boxes for FG-CLIP; text-image and full-modal for Viking)
  with real batched calls.
* :class:`VikingSparseEmbedding`: a ``BaseSparseEmbedding`` with stable integer indices.
* :func:`qdrant_sparse_fns`, :func:`viking_hybrid_fns`: the sparse functions of
  ``QdrantVectorStore(enable_hybrid=True)``; the latter asks the provider once per text
  for dense and sparse vectors of the same model (:class:`DenseSparsePair`, on the
  core's :class:`mm_embed.pairing.DenseSparseCache`).
* :class:`WeightedFusionRetriever`: fuses any retrievers with
  :func:`mm_embed.hybrid.fuse`, honouring weights in every mode;
  :class:`HybridStoreRetriever` searches an :mod:`mm_embed.hybrid` store.

Thin classes over the core clients of :mod:`mm_embed`, which own batching, retries,
rate limits and validation. Install with ``pip install "mm-embed[llamaindex]"``.
"""

from .fgclip import FGClipEmbedding
from .hybrid import DenseSparsePair
from .qdrant import SparseEncoderFn, qdrant_sparse_fns, viking_hybrid_fns
from .retrievers import HybridStoreRetriever, WeightedFusionRetriever
from .sparse import VikingSparseEmbedding
from .viking import FullModalPart, VikingEmbedding

__all__ = [
    "DenseSparsePair",
    "FGClipEmbedding",
    "FullModalPart",
    "HybridStoreRetriever",
    "SparseEncoderFn",
    "VikingEmbedding",
    "VikingSparseEmbedding",
    "WeightedFusionRetriever",
    "qdrant_sparse_fns",
    "viking_hybrid_fns",
]
