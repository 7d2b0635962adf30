"""LlamaIndex adapters for mm-embed: 360 FG-CLIP and Volcengine VikingDB embeddings.

* :class:`FGClipEmbedding`, :class:`VikingEmbedding`: ``MultiModalEmbedding`` models
  (texts, queries, images; boxes for FG-CLIP; text-image and full-modal for Viking)
  with real batched calls.
* :class:`VikingSparseEmbedding`: a ``BaseSparseEmbedding`` with stable integer indices.
* :func:`qdrant_sparse_fns`, :func:`viking_hybrid_fns`: the sparse functions of
  ``QdrantVectorStore(enable_hybrid=True)``; the latter hands a dense and a sparse
  model one :class:`mm_embed.pairing.DenseSparsePairing` (their ``pairing`` field), so
  the provider is asked once per text for both vectors.
* :class:`WeightedFusionRetriever`: fuses any retrievers with
  :func:`mm_embed.hybrid.fuse`, honouring weights in every mode;
  :class:`HybridStoreNodeRetriever` searches an :mod:`mm_embed.hybrid` store.

Thin classes over the core clients of :mod:`mm_embed`, which own batching, retries,
rate limits and validation. Install with ``pip install "mm-embed[llamaindex]"``.
"""

from .fgclip import FGClipEmbedding
from .qdrant import SparseEncoderFn, qdrant_sparse_fns, viking_hybrid_fns
from .retrievers import HybridStoreNodeRetriever, WeightedFusionRetriever
from .sparse import VikingSparseEmbedding
from .viking import FullModalPart, VikingEmbedding

__all__ = [
    "FGClipEmbedding",
    "FullModalPart",
    "HybridStoreNodeRetriever",
    "SparseEncoderFn",
    "VikingEmbedding",
    "VikingSparseEmbedding",
    "WeightedFusionRetriever",
    "qdrant_sparse_fns",
    "viking_hybrid_fns",
]
