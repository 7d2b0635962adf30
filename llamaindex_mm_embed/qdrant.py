"""Sparse functions for ``llama-index-vector-stores-qdrant`` from Viking sparse models.

``QdrantVectorStore(enable_hybrid=True, sparse_doc_fn=..., sparse_query_fn=...)`` calls
each function with a list of texts and expects ``(indices, values)``: one list of
integer indices and one list of weights per text. Nothing here imports the Qdrant
package; the functions only follow that shape.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from llama_index.core.base.embeddings.base_sparse import SparseEmbedding

from mm_embed import ConfigurationError
from mm_embed.adapter_support import check_pairable
from mm_embed.pairing import DenseSparsePairing

from ._viking_fields import _VikingEmbeddingFields
from .sparse import VikingSparseEmbedding
from .viking import VikingEmbedding

__all__ = ["SparseEncoderFn", "qdrant_sparse_fns", "viking_hybrid_fns"]

#: ``texts -> (indices per text, values per text)``, the Qdrant store's sparse function type.
SparseEncoderFn = Callable[[list[str]], tuple[list[list[int]], list[list[float]]]]


def _split(vectors: Sequence[SparseEmbedding]) -> tuple[list[list[int]], list[list[float]]]:
    return [list(v.keys()) for v in vectors], [list(v.values()) for v in vectors]


def qdrant_sparse_fns(
    sparse_model: VikingSparseEmbedding,
) -> tuple[SparseEncoderFn, SparseEncoderFn]:
    """``(sparse_doc_fn, sparse_query_fn)`` for ``QdrantVectorStore`` from a Viking sparse
    model. Documents go through ``get_text_embedding_batch`` (one wire request per
    ``embed_batch_size`` texts), queries through ``get_query_embedding``.

    The store calls these functions synchronously, also from its async methods.
    """

    def sparse_doc_fn(texts: list[str]) -> tuple[list[list[int]], list[list[float]]]:
        return _split(sparse_model.get_text_embedding_batch(list(texts)))

    def sparse_query_fn(texts: list[str]) -> tuple[list[list[int]], list[list[float]]]:
        if len(texts) == 1:
            return _split([sparse_model.get_query_embedding(texts[0])])
        return _split(sparse_model.get_text_embedding_batch(list(texts)))

    return sparse_doc_fn, sparse_query_fn


def viking_hybrid_fns(
    dense_model: VikingEmbedding,
    sparse_model: VikingSparseEmbedding | None = None,
    *,
    pairing: DenseSparsePairing | None = None,
) -> tuple[SparseEncoderFn, SparseEncoderFn]:
    """``(sparse_doc_fn, sparse_query_fn)`` whose sparse vectors come from the same Viking
    model as ``dense_model``'s dense ones, asking the provider **once per text** for both.

    ``dense_model`` and ``sparse_model`` (built from ``dense_model``'s settings when
    omitted) get one :class:`~mm_embed.pairing.DenseSparsePairing` in their ``pairing``
    field: ``pairing``, else the one ``dense_model`` holds, else a new one with the
    defaults of :data:`mm_embed.config.DEFAULTS` (both vectors of a text reused for
    600 s, at most 10,000 texts, which holds one insert batch of an index: 2,048 by
    default). From then on a text call of either requests dense and sparse vectors
    together, and a call for a text already being requested waits for that request. Use
    ``dense_model`` as the index's ``embed_model`` and pass the functions to
    ``QdrantVectorStore(enable_hybrid=True)``. A given ``sparse_model`` without a
    ``dimension`` takes ``dense_model``'s (the pair asks for it in each request).

    Raises :class:`mm_embed.ConfigurationError` when the model has no sparse vectors or
    the two models differ in model, version, dimension or endpoint.
    """
    check_pairable(dense_model.model_name)
    if sparse_model is None:
        settings = {
            name: getattr(dense_model, name) for name in _VikingEmbeddingFields.model_fields
        }
        sparse_model = VikingSparseEmbedding(**settings)
    else:
        if sparse_model.dimension is None:
            sparse_model.dimension = dense_model.dimension
        for name in ("model_name", "model_version", "dimension", "base_url"):
            if getattr(sparse_model, name) != getattr(dense_model, name):
                raise ConfigurationError(
                    f"dense and sparse models differ in {name} "
                    f"({getattr(dense_model, name)!r} vs {getattr(sparse_model, name)!r}): "
                    "one call cannot serve both; use qdrant_sparse_fns(sparse_model) instead"
                )
    if pairing is None:  # not ``or``: an empty pairing is falsy (it has a length)
        pairing = dense_model.pairing if dense_model.pairing is not None else DenseSparsePairing()
    dense_model.pairing = pairing
    sparse_model.pairing = pairing
    return qdrant_sparse_fns(sparse_model)
