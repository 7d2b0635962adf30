"""``VikingEmbedding``: Volcengine VikingDB embedding v2 as a LlamaIndex multimodal embedding."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Unpack

from llama_index.core.base.embeddings.base import Embedding
from llama_index.core.bridge.pydantic import Field
from llama_index.core.embeddings import MultiModalEmbedding

from mm_embed import FullModalItem, ImageItem, TextImageItem, VideoItem
from mm_embed.adapter_support import VikingClientSettings
from mm_embed.inputs import ImageSource, Item, TextItem
from mm_embed.providers.viking.catalogue import ADAPTER_DEFAULT_MODEL

from ._framework import BatchedHooks, ImageType, _BaseEmbeddingArgs
from ._viking_fields import _VikingEmbeddingFields, _VikingModelArgs

__all__ = ["FullModalPart", "VikingEmbedding"]

#: One element of a full-modal sequence: a text, an image or a video.
FullModalPart = str | TextItem | ImageItem | VideoItem


class VikingEmbedding(_VikingEmbeddingFields, BatchedHooks, MultiModalEmbedding):
    """Viking embedding v2 dense vectors for LlamaIndex: texts, queries, images
    (``doubao-embedding-vision``, ``bge-visualized-m3``), text-image pairs and
    full-modal sequences (text + image + video, ``doubao-embedding-vision`` 250615).

    Images are a path, an ``http(s)`` URL (``doubao-embedding-vision`` only), a
    ``data:image/...;base64,`` URI or a ``BytesIO``. Batched calls go to the core
    client whole; it splits them into wire-sized requests (at most ``embed_batch_size``,
    capped at the provider's 100), keeps the token and image budgets and retries.

    The model defaults to ``doubao-embedding-vision`` version ``250615`` (2048-d; not
    the retiring 241215 the server picks when no version is sent). The model, version
    and dimension are checked against the provider's catalogue at construction.
    Credentials never appear in ``repr``, ``to_dict()`` / ``to_json()`` or pickles;
    settings and defaults are :class:`mm_embed.adapter_support.VikingClientFields`'s.
    With ``pairing`` (see :func:`~llamaindex_mm_embed.viking_hybrid_fns`) texts are
    embedded with their sparse vectors in one request.

    Example::

        embed = VikingEmbedding()  # doubao-embedding-vision 250615
        Settings.embed_model = embed
        vector = embed.get_query_embedding("a red circle")
        pair = embed.get_text_image_embedding("a red circle", "photo.png")
    """

    model_name: str = Field(
        default=ADAPTER_DEFAULT_MODEL, description="The Viking embedding model."
    )

    if TYPE_CHECKING:

        def __init__(self, **settings: Unpack[_VikingEmbeddingArgs]) -> None: ...

    @classmethod
    def class_name(cls) -> str:
        return "VikingEmbedding"

    # ------------------------------------------------------------------ any input

    def _embed(self, items: Sequence[Item]) -> list[Embedding]:
        return self.client.embed(items, **self._request(), return_sparse=False).as_float_lists()

    async def _aembed(self, items: Sequence[Item]) -> list[Embedding]:
        result = await self.async_client.embed(items, **self._request(), return_sparse=False)
        return result.as_float_lists()

    # ------------------------------------------------------------------ texts

    def _texts(self, texts: Sequence[str]) -> list[Embedding]:
        if self.pairing is None:
            return self._embed(texts)
        return [entry.dense_list() for entry in self._pair_entries(texts)]

    async def _atexts(self, texts: Sequence[str]) -> list[Embedding]:
        if self.pairing is None:
            return await self._aembed(texts)
        return [entry.dense_list() for entry in await self._apair_entries(texts)]

    # ------------------------------------------------------------------ images

    def _images(self, images: Sequence[ImageType]) -> list[Embedding]:
        return self._embed([ImageItem(image) for image in images])

    async def _aimages(self, images: Sequence[ImageType]) -> list[Embedding]:
        return await self._aembed([ImageItem(image) for image in images])

    # ------------------------------------------------------------------ text-image

    def get_text_image_embedding(self, text: str, image: ImageSource) -> Embedding:
        """One vector for a text and an image encoded jointly (``data_type="text-image"``)."""
        return self._embed([TextImageItem(text, image)])[0]

    async def aget_text_image_embedding(self, text: str, image: ImageSource) -> Embedding:
        """Async twin of :meth:`get_text_image_embedding`."""
        return (await self._aembed([TextImageItem(text, image)]))[0]

    def get_text_image_embeddings(
        self, pairs: Sequence[tuple[str, ImageSource]]
    ) -> list[Embedding]:
        """Batched :meth:`get_text_image_embedding` over ``(text, image)`` pairs."""
        return self._embed([TextImageItem(text, image) for text, image in pairs])

    async def aget_text_image_embeddings(
        self, pairs: Sequence[tuple[str, ImageSource]]
    ) -> list[Embedding]:
        """Async twin of :meth:`get_text_image_embeddings`."""
        return await self._aembed([TextImageItem(text, image) for text, image in pairs])

    # ------------------------------------------------------------------ full-modal

    def get_full_modal_embedding(self, parts: Sequence[FullModalPart]) -> Embedding:
        """One vector for a sequence of texts, :class:`ImageItem` and :class:`VideoItem`
        (``data_type="full_modal_seq"``; ``doubao-embedding-vision`` 250615)."""
        return self._embed([FullModalItem(parts)])[0]

    async def aget_full_modal_embedding(self, parts: Sequence[FullModalPart]) -> Embedding:
        """Async twin of :meth:`get_full_modal_embedding`."""
        return (await self._aembed([FullModalItem(parts)]))[0]

    def get_full_modal_embeddings(
        self, sequences: Sequence[Sequence[FullModalPart]]
    ) -> list[Embedding]:
        """Batched :meth:`get_full_modal_embedding` (the provider takes one sequence per
        request; the core sends them concurrently)."""
        return self._embed([FullModalItem(parts) for parts in sequences])

    async def aget_full_modal_embeddings(
        self, sequences: Sequence[Sequence[FullModalPart]]
    ) -> list[Embedding]:
        """Async twin of :meth:`get_full_modal_embeddings`."""
        return await self._aembed([FullModalItem(parts) for parts in sequences])


class _VikingEmbeddingArgs(VikingClientSettings, _BaseEmbeddingArgs, _VikingModelArgs, total=False):
    pass
