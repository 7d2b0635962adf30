"""``VikingSparseEmbedding``: Viking sparse vectors as a LlamaIndex ``BaseSparseEmbedding``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar, Unpack

from llama_index.core.base.embeddings.base_sparse import BaseSparseEmbedding, SparseEmbedding

from mm_embed import EmbeddingResult
from mm_embed.adapter_support import VikingClientSettings
from mm_embed.errors import ResponseFormatError

from ._framework import TextHooks, _SparseEmbeddingArgs
from ._viking_fields import _VikingEmbeddingFields, _VikingModelArgs

__all__ = ["VikingSparseEmbedding"]


class VikingSparseEmbedding(
    _VikingEmbeddingFields, TextHooks[SparseEmbedding], BaseSparseEmbedding
):
    """Sparse vectors of a Viking model that has them (``bge-m3``,
    ``doubao-embedding-and-m3``, ``doubao-embedding-large-and-m3``,
    ``bge-large-zh-and-m3``), as ``{index: weight}``.

    The provider's token keys map to integer indices with the core's documented, stable
    mapping (:func:`mm_embed.sparse_index`: numeric token ids keep their value, other
    tokens hash into ``[2**30, 2**31)``), so indices agree across processes and runs.
    Only sparse vectors are requested, unless the model holds a ``pairing`` with a
    dense :class:`VikingEmbedding` of the same model (see :func:`viking_hybrid_fns`),
    which makes one request serve both; ``dimension`` is then the dense dimension asked
    for alongside.

    Example::

        sparse = VikingSparseEmbedding(model_name="bge-m3")
        weights = sparse.get_query_embedding("red circle")   # {index: weight}
    """

    _sparse: ClassVar[bool] = True

    if TYPE_CHECKING:

        def __init__(self, **settings: Unpack[_VikingSparseEmbeddingArgs]) -> None: ...

    @classmethod
    def class_name(cls) -> str:
        return "VikingSparseEmbedding"

    def _texts(self, texts: Sequence[str]) -> list[SparseEmbedding]:
        if self.pairing is not None:
            return [entry.sparse.to_dict() for entry in self._pair_entries(texts)]
        result = self.client.embed(texts, **self._request(dense=False), return_dense=False)
        return _sparse_rows(result)

    async def _atexts(self, texts: Sequence[str]) -> list[SparseEmbedding]:
        if self.pairing is not None:
            return [entry.sparse.to_dict() for entry in await self._apair_entries(texts)]
        result = await self.async_client.embed(
            texts, **self._request(dense=False), return_dense=False
        )
        return _sparse_rows(result)


def _sparse_rows(result: EmbeddingResult) -> list[SparseEmbedding]:
    """Sparse rows as ``{index: weight}`` with the core's stable token -> index mapping."""
    if result.sparse is None:
        raise ResponseFormatError("the provider returned no sparse vectors")
    return [vector.to_dict() for vector in result.sparse]


class _VikingSparseEmbeddingArgs(
    VikingClientSettings, _SparseEmbeddingArgs, _VikingModelArgs, total=False
):
    pass
