"""LangChain embeddings over Volcengine VikingDB embedding v2: texts, images,
text-image pairs and full-modal sequences."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Unpack

from langchain_core.embeddings import Embeddings

from mm_embed import FullModalItem, ImageItem, TextImageItem, VideoItem
from mm_embed.inputs import ImageSource, Item, TextItem

from ._viking_fields import _VikingEmbeddingsArgs, _VikingEmbeddingsFields

__all__ = ["VikingEmbeddings"]

FullModalParts = Sequence[str | TextItem | ImageItem | VideoItem]


class VikingEmbeddings(_VikingEmbeddingsFields, Embeddings):
    """VikingDB embedding v2 dense vectors for LangChain.

    Texts go through :meth:`embed_documents` / :meth:`embed_query`, images through
    :meth:`embed_image` (the ``embed_image(uris=...)`` convention of multimodal vector
    stores), text-image pairs through :meth:`embed_text_image_pairs` and text + image +
    video sequences through :meth:`embed_full_modal`; each has a native async twin.
    Which inputs a model takes is in ``mm_embed.VIKING_MODELS`` (images: the
    ``doubao-embedding-vision`` and ``bge-visualized-m3`` models; full-modal:
    ``doubao-embedding-vision`` version ``250615``).

    The model defaults to ``doubao-embedding-vision`` version ``250615`` (2048-d; not
    the retiring 241215 the server picks when no version is sent). Credentials:
    ``access_key`` / ``secret_key`` (optional ``session_token``) for signed requests, or
    ``token``, as arguments or from the environment (:class:`mm_embed.config.EnvVar`);
    settings and their defaults are :class:`mm_embed.adapter_support.VikingClientFields`. The
    core client is built on first use and rebuilt when a setting changes; a copy builds
    its own.

    Hybrid search: ``VikingSparseEmbeddings.from_dense(embeddings)`` gives the sparse
    twin of a ``*-and-m3`` / ``bge-m3`` model; the two share a
    :class:`~mm_embed.pairing.DenseSparsePairing` (the ``pairing`` field) and ask the
    provider once per text for both vectors.

    Example:
        .. code-block:: python

            from langchain_mm_embed import VikingEmbeddings

            embeddings = VikingEmbeddings(model="doubao-embedding", dimension=1024)
            vectors = embeddings.embed_documents(["hello", "world"])
    """

    if TYPE_CHECKING:

        def __init__(self, **settings: Unpack[_VikingEmbeddingsArgs]) -> None: ...

    def _embed(self, inputs: Sequence[Item]) -> list[list[float]]:
        return self.client.embed(inputs, **self._request(), return_sparse=False).as_float_lists()

    async def _aembed(self, inputs: Sequence[Item]) -> list[list[float]]:
        result = await self.async_client.embed(inputs, **self._request(), return_sparse=False)
        return result.as_float_lists()

    # ------------------------------------------------------------------ texts

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Dense vectors, one per text, in order."""
        if self.pairing is None:
            return self._embed(texts)
        return [entry.dense_list() for entry in self._pair_entries(texts)]

    def embed_query(self, text: str) -> list[float]:
        """The dense vector of one text (Viking embeds queries and documents alike)."""
        return self.embed_documents([text])[0]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """Async twin of :meth:`embed_documents` (asyncio I/O, no thread pool)."""
        if self.pairing is None:
            return await self._aembed(texts)
        return [entry.dense_list() for entry in await self._apair_entries(texts)]

    async def aembed_query(self, text: str) -> list[float]:
        """Async twin of :meth:`embed_query`."""
        return (await self.aembed_documents([text]))[0]

    # ------------------------------------------------------------------ other modalities

    def embed_image(self, uris: Sequence[ImageSource]) -> list[list[float]]:
        """One vector per image: local paths, ``data:`` URIs, raw bytes, ``PIL.Image``,
        ``tos://`` objects, or ``http(s)`` URLs (``doubao-embedding-vision`` only)."""
        return self._embed([ImageItem(uri) for uri in uris])

    async def aembed_image(self, uris: Sequence[ImageSource]) -> list[list[float]]:
        """Async twin of :meth:`embed_image`."""
        return await self._aembed([ImageItem(uri) for uri in uris])

    def embed_text_image_pairs(self, pairs: Sequence[tuple[str, ImageSource]]) -> list[list[float]]:
        """One vector per ``(text, image)`` pair, encoded jointly (``text-image``)."""
        return self._embed([TextImageItem(text, image) for text, image in pairs])

    async def aembed_text_image_pairs(
        self, pairs: Sequence[tuple[str, ImageSource]]
    ) -> list[list[float]]:
        """Async twin of :meth:`embed_text_image_pairs`."""
        return await self._aembed([TextImageItem(text, image) for text, image in pairs])

    def embed_full_modal(
        self, sequences: Sequence[FullModalParts | FullModalItem]
    ) -> list[list[float]]:
        """One vector per sequence of parts: ``str`` texts, ``mm_embed.ImageItem`` images
        and ``mm_embed.VideoItem`` videos (``full_modal_seq``; one request each)."""
        return self._embed(_full_modal_items(sequences))

    async def aembed_full_modal(
        self, sequences: Sequence[FullModalParts | FullModalItem]
    ) -> list[list[float]]:
        """Async twin of :meth:`embed_full_modal`."""
        return await self._aembed(_full_modal_items(sequences))


def _full_modal_items(sequences: Sequence[FullModalParts | FullModalItem]) -> list[Item]:
    return [s if isinstance(s, FullModalItem) else FullModalItem(parts=s) for s in sequences]
