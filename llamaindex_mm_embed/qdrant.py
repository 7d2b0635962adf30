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
from mm_embed.protocol import viking as proto

from ._viking_settings import VikingSettings
from .hybrid import DenseSparsePair
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
    ttl_seconds: float = 600.0,
    max_entries: int = 10_000,
) -> tuple[SparseEncoderFn, SparseEncoderFn]:
    """``(sparse_doc_fn, sparse_query_fn)`` whose sparse vectors come from the same Viking
    model as ``dense_model``'s dense ones, asking the provider **once per text** for both.

    ``dense_model`` (and ``sparse_model``, built from ``dense_model``'s settings when
    omitted) are paired through a :class:`DenseSparsePair`: from now on a text call of
    either one requests dense and sparse vectors together, a call for a text already
    being requested waits for that request, and both vectors are kept for
    ``ttl_seconds`` (at most ``max_entries`` texts). Use ``dense_model`` as the index's
    ``embed_model`` and pass the functions to ``QdrantVectorStore(enable_hybrid=True)``.
    ``max_entries`` must hold one insert batch of the index (``insert_batch_size``,
    2048 by default) for the store's sparse calls to find every text; each held text
    takes about 10-25 KiB.

    Raises :class:`mm_embed.ConfigurationError` when the model has no sparse vectors or
    the two models differ in model, version or endpoint.
    """
    spec = proto.get_model(dense_model.model_name)
    if not spec.sparse:
        raise ConfigurationError(
            f"model {dense_model.model_name!r} has no sparse vectors; pick one of "
            + ", ".join(name for name, m in proto.MODELS.items() if m.sparse)
        )
    if sparse_model is None:
        settings = {name: getattr(dense_model, name) for name in VikingSettings.model_fields}
        sparse_model = VikingSparseEmbedding(
            **settings,
            model_name=dense_model.model_name,
            embed_batch_size=dense_model.embed_batch_size,
        )
    else:
        for name in ("model_name", "model_version", "base_url"):
            if getattr(sparse_model, name) != getattr(dense_model, name):
                raise ConfigurationError(
                    f"dense and sparse models differ in {name} "
                    f"({getattr(dense_model, name)!r} vs {getattr(sparse_model, name)!r}): "
                    "one call cannot serve both; use qdrant_sparse_fns(sparse_model) instead"
                )
    pair = dense_model._pair or DenseSparsePair(
        dense_model, ttl_seconds=ttl_seconds, max_entries=max_entries
    )
    dense_model._pair = pair
    sparse_model._pair = pair
    return qdrant_sparse_fns(sparse_model)
