"""What the LlamaIndex adapters share of the framework: the embedding hooks routed to
batch methods (dense and sparse), and the framework's own constructor settings (for the typed
constructors)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Generic, TypedDict, TypeVar

from llama_index.core.base.embeddings.base import Embedding
from llama_index.core.callbacks import CallbackManager
from llama_index.core.schema import ImageType

__all__ = [
    "BatchedHooks",
    "ImageType",
    "TextHooks",
    "_BaseEmbeddingArgs",
    "_SparseEmbeddingArgs",
]


V = TypeVar("V")

if TYPE_CHECKING:

    class _TypedBy(Generic[V]):
        pass

else:

    class _TypedBy:
        """``Generic`` for the type checker only: pydantic warns about (and mis-handles)
        a model whose bases put ``typing.Generic`` before ``BaseModel``."""

        def __class_getitem__(cls, _: object) -> type:
            return cls


class TextHooks(_TypedBy[V]):
    """LlamaIndex's six text embedding hooks, routed to two batch methods.

    Every hook, single or batched, sync or async, goes through :meth:`_texts` /
    :meth:`_atexts` with a list, so one index build sends wire-sized batches and a
    single text is a batch of one. ``V`` is one vector (dense or sparse). Put it before
    the LlamaIndex base class in the bases so its hooks win.
    """

    def _texts(self, texts: Sequence[str]) -> list[V]:
        raise NotImplementedError

    async def _atexts(self, texts: Sequence[str]) -> list[V]:
        raise NotImplementedError

    def _get_query_embedding(self, query: str) -> V:
        return self._texts([query])[0]

    async def _aget_query_embedding(self, query: str) -> V:
        return (await self._atexts([query]))[0]

    def _get_text_embedding(self, text: str) -> V:
        return self._texts([text])[0]

    async def _aget_text_embedding(self, text: str) -> V:
        return (await self._atexts([text]))[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[V]:
        return self._texts(texts)

    async def _aget_text_embeddings(self, texts: list[str]) -> list[V]:
        return await self._atexts(texts)


class BatchedHooks(TextHooks[Embedding]):
    """LlamaIndex's twelve embedding hooks, routed to four batch methods: the text hooks
    of :class:`TextHooks` and the image hooks, through :meth:`_images` /
    :meth:`_aimages`. Put it before ``MultiModalEmbedding`` in the bases so its hooks win.
    """

    def _images(self, images: Sequence[ImageType]) -> list[Embedding]:
        raise NotImplementedError

    async def _aimages(self, images: Sequence[ImageType]) -> list[Embedding]:
        raise NotImplementedError

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
