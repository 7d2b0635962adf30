"""What the LlamaIndex adapters share of the framework: the embedding hooks routed to
batch methods, and the framework's own constructor settings (for the typed
constructors)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypedDict

from llama_index.core.base.embeddings.base import Embedding
from llama_index.core.callbacks import CallbackManager
from llama_index.core.schema import ImageType

__all__ = [
    "BatchedHooks",
    "ImageType",
    "_BaseEmbeddingArgs",
    "_SparseEmbeddingArgs",
]


class BatchedHooks:
    """LlamaIndex's twelve embedding hooks, routed to four batch methods.

    Every hook, single or batched, text or image, sync or async, goes through
    :meth:`_texts` / :meth:`_atexts` / :meth:`_images` / :meth:`_aimages` with a list,
    so one index build sends wire-sized batches and a single input is a batch of one.
    Put it before ``MultiModalEmbedding`` in the bases so its hooks win.
    """

    def _texts(self, texts: Sequence[str]) -> list[Embedding]:
        raise NotImplementedError

    async def _atexts(self, texts: Sequence[str]) -> list[Embedding]:
        raise NotImplementedError

    def _images(self, images: Sequence[ImageType]) -> list[Embedding]:
        raise NotImplementedError

    async def _aimages(self, images: Sequence[ImageType]) -> list[Embedding]:
        raise NotImplementedError

    def _get_query_embedding(self, query: str) -> Embedding:
        return self._texts([query])[0]

    async def _aget_query_embedding(self, query: str) -> Embedding:
        return (await self._atexts([query]))[0]

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._texts([text])[0]

    async def _aget_text_embedding(self, text: str) -> Embedding:
        return (await self._atexts([text]))[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return self._texts(texts)

    async def _aget_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return await self._atexts(texts)

    def _get_image_embedding(self, img_file_path: ImageType) -> Embedding:
        return self._images([img_file_path])[0]

    async def _aget_image_embedding(self, img_file_path: ImageType) -> Embedding:
        return (await self._aimages([img_file_path]))[0]

    def _get_image_embeddings(self, img_file_paths: list[ImageType]) -> list[Embedding]:
        return self._images(img_file_paths)

    async def _aget_image_embeddings(self, img_file_paths: list[ImageType]) -> list[Embedding]:
        return await self._aimages(img_file_paths)


class _SparseEmbeddingArgs(TypedDict, total=False):
    """The settings of LlamaIndex's ``BaseSparseEmbedding``."""

    model_name: str
    embed_batch_size: int
    num_workers: int | None


class _BaseEmbeddingArgs(_SparseEmbeddingArgs, total=False):
    """The settings of LlamaIndex's ``BaseEmbedding``."""

    callback_manager: CallbackManager
    embeddings_cache: Any
    rate_limiter: Any
