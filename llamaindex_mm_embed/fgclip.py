"""``FGClipEmbedding``: 360 FG-CLIP as a LlamaIndex multimodal embedding."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, ClassVar, Literal, Unpack

from llama_index.core.base.embeddings.base import Embedding
from llama_index.core.bridge.pydantic import Field, SecretStr
from llama_index.core.embeddings import MultiModalEmbedding

from mm_embed import EmbeddingResult
from mm_embed.adapter_support import FGClipClientFields, FGClipClientSettings
from mm_embed.config import EnvVar
from mm_embed.inputs import Box, ImageSource
from mm_embed.providers.fgclip.catalogue import DEFAULT_MODEL, MAX_ITEMS, MAX_TEXT_TOKENS

from ._framework import BatchedHooks, _BaseEmbeddingArgs

__all__ = ["FGClipEmbedding"]

EmbeddingType = Literal["float", "int8", "uint8"]
Truncate = Literal["none", "start"]


class FGClipEmbedding(FGClipClientFields, BatchedHooks, MultiModalEmbedding):
    """360 FG-CLIP embeddings for LlamaIndex: texts, queries and images in one space,
    plus region (box) features and the texts' *local* features that match them.

    Images are a path, an ``http(s)`` URL, a ``data:image/...;base64,`` URI or a
    ``BytesIO`` (the region methods also take bytes and ``PIL`` images). Batched calls
    go to the core client whole; it splits them into wire-sized requests (at most
    ``embed_batch_size``, capped at the provider's 32) and runs them concurrently.

    The API key comes from ``api_key`` or the environment (:class:`mm_embed.config.EnvVar`)
    and never appears in ``repr``, ``to_dict()`` / ``to_json()`` or pickles. Client
    settings and their defaults are :class:`mm_embed.adapter_support.FGClipClientFields`'s;
    the core client is built on first use and rebuilt when a setting changes (a copy
    builds its own).

    Example::

        embed = FGClipEmbedding()  # key and endpoint from the environment
        vector = embed.get_query_embedding("a red circle")
        image_vector = embed.get_image_embedding("photo.png")
        boxes = embed.get_image_box_embeddings("photo.png", [[10, 10, 50, 50]])
    """

    api_key: SecretStr | None = Field(
        default=None,
        exclude=True,
        repr=False,
        description=f"The API key; defaults to {EnvVar.FGCLIP_API_KEY}. Never serialised.",
    )
    model_name: str = Field(
        default=DEFAULT_MODEL, description="The FG-CLIP model (the API serves fg-clip)."
    )
    embed_batch_size: int = Field(
        default=MAX_ITEMS,
        gt=0,
        le=2048,
        description="Inputs per wire request (default and cap: the provider's 32).",
    )
    embedding_type: EmbeddingType = Field(
        default="float",
        description="The vector type asked for; int8/uint8 are returned cast to float.",
    )
    truncate: Truncate = Field(
        default="none",
        description=f"none: a text over {MAX_TEXT_TOKENS} tokens is an error; start: keep "
        "its start.",
    )

    _client_renames: ClassVar[Mapping[str, str]] = {
        "max_batch_size": "embed_batch_size",
        "model": "model_name",
    }

    if TYPE_CHECKING:

        def __init__(self, **settings: Unpack[_FGClipEmbeddingArgs]) -> None: ...

    @classmethod
    def class_name(cls) -> str:
        return "FGClipEmbedding"

    # ------------------------------------------------------------------ texts

    def _texts(self, texts: Sequence[str], *, local: bool = False) -> list[Embedding]:
        result = self.client.embed_texts(
            texts, embedding_types=(self.embedding_type,), truncate=self.truncate, text_box=local
        )
        return result.as_float_lists(self.embedding_type)

    async def _atexts(self, texts: Sequence[str], *, local: bool = False) -> list[Embedding]:
        result = await self.async_client.embed_texts(
            texts, embedding_types=(self.embedding_type,), truncate=self.truncate, text_box=local
        )
        return result.as_float_lists(self.embedding_type)

    # ------------------------------------------------------------------ images

    def _images(self, images: Sequence[ImageSource]) -> list[Embedding]:
        result = self.client.embed_images(images, embedding_types=(self.embedding_type,))
        return result.as_float_lists(self.embedding_type)

    async def _aimages(self, images: Sequence[ImageSource]) -> list[Embedding]:
        result = await self.async_client.embed_images(
            images, embedding_types=(self.embedding_type,)
        )
        return result.as_float_lists(self.embedding_type)

    # ------------------------------------------------------------------ regions

    def get_image_box_embeddings(self, image: ImageSource, boxes: Sequence[Box]) -> list[Embedding]:
        """One vector per ``[x, y, w, h]`` box (pixels of ``image``, top-left origin), in
        order; compare them with :meth:`get_box_text_embedding` vectors."""
        return self.get_image_box_embeddings_batch([image], [boxes])[0]

    async def aget_image_box_embeddings(
        self, image: ImageSource, boxes: Sequence[Box]
    ) -> list[Embedding]:
        """Async twin of :meth:`get_image_box_embeddings`."""
        return (await self.aget_image_box_embeddings_batch([image], [boxes]))[0]

    def get_image_box_embeddings_batch(
        self, images: Sequence[ImageSource], boxes: Sequence[Sequence[Box] | None]
    ) -> list[list[Embedding]]:
        """For each image, one vector per box of its entry in ``boxes`` (``None`` or ``[]``:
        a single whole-image vector)."""
        result = self.client.embed_images(
            images, boxes=boxes, embedding_types=(self.embedding_type,)
        )
        return _per_input(result, len(images), self.embedding_type)

    async def aget_image_box_embeddings_batch(
        self, images: Sequence[ImageSource], boxes: Sequence[Sequence[Box] | None]
    ) -> list[list[Embedding]]:
        """Async twin of :meth:`get_image_box_embeddings_batch`."""
        result = await self.async_client.embed_images(
            images, boxes=boxes, embedding_types=(self.embedding_type,)
        )
        return _per_input(result, len(images), self.embedding_type)

    def get_box_text_embedding(self, text: str) -> Embedding:
        """The text's *local* (fine-grained) features, the ones to compare with box
        vectors (FG-CLIP ``text_box_flag``)."""
        return self._texts([text], local=True)[0]

    async def aget_box_text_embedding(self, text: str) -> Embedding:
        """Async twin of :meth:`get_box_text_embedding`."""
        return (await self._atexts([text], local=True))[0]

    def get_box_text_embeddings(self, texts: Sequence[str]) -> list[Embedding]:
        """Batched :meth:`get_box_text_embedding`."""
        return self._texts(texts, local=True)

    async def aget_box_text_embeddings(self, texts: Sequence[str]) -> list[Embedding]:
        """Async twin of :meth:`get_box_text_embeddings`."""
        return await self._atexts(texts, local=True)


def _per_input(result: EmbeddingResult, n: int, embedding_type: str) -> list[list[Embedding]]:
    rows = result.as_float_lists(embedding_type)
    return [[rows[int(r)] for r in result.rows_for_input(i)] for i in range(n)]


class _FGClipEmbeddingArgs(FGClipClientSettings, _BaseEmbeddingArgs, total=False):
    embedding_type: EmbeddingType
    truncate: Truncate
