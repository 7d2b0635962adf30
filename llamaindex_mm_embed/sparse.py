"""``VikingSparseEmbedding``: Viking sparse vectors as a LlamaIndex ``BaseSparseEmbedding``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from llama_index.core.base.embeddings.base_sparse import BaseSparseEmbedding, SparseEmbedding
from llama_index.core.bridge.pydantic import Field, PrivateAttr

from mm_embed.protocol import viking as proto

from ._common import sparse_rows
from ._viking_settings import VikingSettings
from .hybrid import DenseSparsePair

__all__ = ["VikingSparseEmbedding"]


class VikingSparseEmbedding(VikingSettings, BaseSparseEmbedding):
    """Sparse vectors of a Viking model that has them (``bge-m3``,
    ``doubao-embedding-and-m3``, ``doubao-embedding-large-and-m3``,
    ``bge-large-zh-and-m3``), as ``{index: weight}``.

    The provider's token keys map to integer indices with the core's documented, stable
    mapping (:func:`mm_embed.sparse_index`: numeric token ids keep their value, other
    tokens hash into ``[2**30, 2**31)``), so indices agree across processes and runs.
    Only sparse vectors are requested, unless the model is paired with a dense
    :class:`VikingEmbedding` of the same model (see :func:`viking_hybrid_fns`), which
    makes one call serve both.

    Example::

        sparse = VikingSparseEmbedding(model_name="bge-m3")
        weights = sparse.get_query_embedding("red circle")   # {index: weight}
    """

    _secret_fields: ClassVar[tuple[str, ...]] = VikingSettings._secret_fields

    model_name: str = Field(
        default="bge-m3", description="A Viking embedding model that returns sparse vectors."
    )
    embed_batch_size: int = Field(
        default=proto.MAX_ITEMS,
        gt=0,
        le=2048,
        description="Inputs per wire request (default and cap: the provider's 100).",
    )

    _pair: DenseSparsePair | None = PrivateAttr(default=None)

    @classmethod
    def class_name(cls) -> str:
        return "VikingSparseEmbedding"

    def _validate_settings(self) -> None:
        proto.resolve_request(
            model=self.model_name,
            model_version=self.model_version,
            return_dense=False,
            return_sparse=True,
        )

    def _texts(self, texts: Sequence[str]) -> list[SparseEmbedding]:
        pair = self._pair
        if pair is not None:
            return pair.texts("sparse", self.client, texts)
        result = self.client.embed(
            texts,
            model=self.model_name,
            model_version=self.model_version,
            return_dense=False,
            return_sparse=True,
        )
        return sparse_rows(result)

    async def _atexts(self, texts: Sequence[str]) -> list[SparseEmbedding]:
        pair = self._pair
        if pair is not None:
            return await pair.atexts("sparse", self.async_client, texts)
        result = await self.async_client.embed(
            texts,
            model=self.model_name,
            model_version=self.model_version,
            return_dense=False,
            return_sparse=True,
        )
        return sparse_rows(result)

    def _get_query_embedding(self, query: str) -> SparseEmbedding:
        return self._texts([query])[0]

    async def _aget_query_embedding(self, query: str) -> SparseEmbedding:
        return (await self._atexts([query]))[0]

    def _get_text_embedding(self, text: str) -> SparseEmbedding:
        return self._texts([text])[0]

    async def _aget_text_embedding(self, text: str) -> SparseEmbedding:
        return (await self._atexts([text]))[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[SparseEmbedding]:
        return self._texts(texts)

    async def _aget_text_embeddings(self, texts: list[str]) -> list[SparseEmbedding]:
        return await self._atexts(texts)
