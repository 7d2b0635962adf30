"""A ready ``langchain_qdrant.QdrantVectorStore`` in hybrid mode from a Viking model.

:func:`viking_qdrant_hybrid` creates (or checks) the collection with a dense vector of
the model's size and a sparse vector, pairs the dense and sparse embeddings so each text
costs one provider request for both vectors, and skips ``langchain_qdrant``'s probe
request (``embed_documents(["dummy_text"])``) by checking the collection itself.

``QdrantVectorStore``'s hybrid search fuses with ``Fusion.RRF``, Qdrant's RRF with its
default ``k = 2``, and fetches only ``k`` candidates per side. Pass
``hybrid_fusion=qdrant_rrf(60)`` (a ``k`` of 60 in the usual ``1 / (k + rank)`` form)
to ``similarity_search`` or ``as_retriever(search_kwargs=...)`` for the common RRF.
"""

from __future__ import annotations

from typing import Any, Literal

from mm_embed._extras import missing_extra
from mm_embed.errors import InputError
from mm_embed.hybrid.qdrant import create_hybrid_collection
from mm_embed.providers.viking.protocol import resolve_request

from .sparse import VikingSparseEmbeddings
from .viking import VikingEmbeddings

try:
    from langchain_qdrant import QdrantVectorStore, RetrievalMode
    from qdrant_client import QdrantClient, models
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise missing_extra(__name__, "langchain-qdrant", "langchain,qdrant") from exc

__all__ = ["qdrant_rrf", "viking_qdrant_hybrid"]

_DISTANCES = {"cosine": models.Distance.COSINE, "dot": models.Distance.DOT}


def qdrant_rrf(k: int = 60, weights: list[float] | None = None) -> models.RrfQuery:
    """Qdrant's RRF query scoring ``1 / (k + rank)`` with ranks from 1 (Qdrant counts
    positions from 0, so it gets ``k + 1``). Qdrant's weighted form is
    ``1 / (rank / w + k)``; see :mod:`mm_embed.hybrid.qdrant`."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise InputError(f"k must be an int >= 0, got {k!r}", field="k")
    return models.RrfQuery(rrf=models.Rrf(k=k + 1, weights=weights))


def viking_qdrant_hybrid(
    embeddings: VikingEmbeddings,
    *,
    collection_name: str,
    client: QdrantClient | None = None,
    sparse_embeddings: VikingSparseEmbeddings | None = None,
    vector_name: str = "dense",
    sparse_vector_name: str = "sparse",
    distance: Literal["cosine", "dot"] = "cosine",
    recreate: bool = False,
    **kwargs: Any,
) -> QdrantVectorStore:
    """A ``QdrantVectorStore`` in ``RetrievalMode.HYBRID`` over a Viking model.

    Args:
        embeddings: a :class:`~langchain_mm_embed.VikingEmbeddings` of a model with sparse
            vectors (``bge-m3``, ``doubao-embedding-and-m3``, ...).
        collection_name: the collection; created when missing, checked when present.
        client: a ``QdrantClient`` (``":memory:"``, a local path or a server URL; same
            code); default: a new in-memory client.
        sparse_embeddings: default ``VikingSparseEmbeddings.from_dense(embeddings)``,
            which shares one request per text with ``embeddings``. Passing your own
            unpaired one costs two requests per text.
        vector_name / sparse_vector_name: the named vectors.
        distance: the dense distance (``"cosine"``).
        recreate: drop and recreate an existing collection.
        kwargs: passed to ``QdrantVectorStore`` (``content_payload_key``, ...).

    Raises:
        InputError: an existing collection has another dense size or no sparse vector.
        ConfigurationError: the model has no sparse vectors.
    """
    if distance not in _DISTANCES:
        raise InputError(f"unknown distance {distance!r}", field="distance", limit="cosine, dot")
    sparse = sparse_embeddings or VikingSparseEmbeddings.from_dense(embeddings)
    dimension = resolve_request(
        model=embeddings.model,
        model_version=embeddings.model_version,
        dimension=embeddings.dimension,
        strict=embeddings.strict_models,
    ).expected_dimension
    if dimension is None:
        raise InputError(
            f"the dense size of model {embeddings.model!r} is not in the catalogue: "
            "pass dimension=",
            field="dimension",
        )
    qdrant = client if client is not None else QdrantClient(":memory:")
    create_hybrid_collection(
        qdrant,
        collection_name,
        dimension=dimension,
        sparse=True,
        dense_name=vector_name,
        sparse_name=sparse_vector_name,
        distance=distance,
        recreate=recreate,
    )
    return QdrantVectorStore(
        client=qdrant,
        collection_name=collection_name,
        embedding=embeddings,
        sparse_embedding=sparse,
        retrieval_mode=RetrievalMode.HYBRID,
        vector_name=vector_name,
        sparse_vector_name=sparse_vector_name,
        distance=_DISTANCES[distance],
        # Checked above without langchain_qdrant's dummy embedding request.
        validate_collection_config=False,
        **kwargs,
    )
