"""``FGClipEmbedding``: 360 FG-CLIP as a LlamaIndex multimodal embedding."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from llama_index.core.base.embeddings.base import Embedding
from llama_index.core.bridge.pydantic import ConfigDict, Field, PrivateAttr, SecretStr
from llama_index.core.embeddings import MultiModalEmbedding

from mm_embed import AsyncFGClipClient, ConfigurationError, EmbeddingResult, FGClipClient
from mm_embed.inputs import Box, ImageSource
from mm_embed.protocol import fgclip as proto

from ._common import AdapterBase, BatchedHooks, ClientSlot, dense_rows, env_secret

__all__ = ["FGClipEmbedding"]


class FGClipEmbedding(AdapterBase, BatchedHooks, MultiModalEmbedding):
    """360 FG-CLIP embeddings for LlamaIndex: texts, queries and images in one space,
    plus region (box) features and the texts' *local* features that match them.

    Images are a path, an ``http(s)`` URL, a ``data:image/...;base64,`` URI or a
    ``BytesIO`` (the region methods also take bytes and ``PIL`` images). Batched calls
    go to the core client whole; it splits them into wire-sized requests (at most
    ``embed_batch_size``, capped at the provider's 32) and runs them concurrently.

    The API key comes from ``api_key`` or ``FGCLIP_API_KEY`` and never appears in
    ``repr``, ``to_dict()`` / ``to_json()`` or pickles. Client settings are read when
    the first call builds the core client.

    Example::

        embed = FGClipEmbedding()  # FGCLIP_API_KEY, FGCLIP_BASE_URL from the environment
        vector = embed.get_query_embedding("a red circle")
        image_vector = embed.get_image_embedding("photo.png")
        boxes = embed.get_image_box_embeddings("photo.png", [[10, 10, 50, 50]])
    """

    model_config = ConfigDict(extra="forbid")

    _secret_fields: ClassVar[tuple[str, ...]] = ("api_key",)

    model_name: str = Field(
        default=proto.MODEL, description="The FG-CLIP model (the API serves one: fg-clip)."
    )
    embed_batch_size: int = Field(
        default=proto.MAX_ITEMS,
        gt=0,
        le=2048,
        description="Inputs per wire request (default and cap: the provider's 32).",
    )
    api_key: SecretStr | None = Field(
        default=None,
        exclude=True,
        repr=False,
        description="The API key; defaults to FGCLIP_API_KEY. Never serialised.",
    )
    base_url: str | None = Field(
        default=None,
        description="Defaults to FGCLIP_BASE_URL, else https://api.research.360.cn.",
    )
    embedding_type: Literal["float", "int8", "uint8"] = Field(
        default="float",
        description="The vector type asked for; int8/uint8 are returned cast to float.",
    )
    truncate: Literal["none", "start"] = Field(
        default="none",
        description="none: a text over 196 tokens is an error; start: keep its first 196.",
    )
    timeout: float = Field(default=60.0, gt=0, description="Seconds per wire request.")
    max_retries: int = Field(default=3, ge=0, description="Retries per wire request.")
    max_concurrency: int = Field(default=4, ge=1, description="Wire requests in flight.")

    _clients: ClientSlot[FGClipClient, AsyncFGClipClient] = PrivateAttr(default_factory=ClientSlot)

    @classmethod
    def class_name(cls) -> str:
        return "FGClipEmbedding"

    def _load_secrets(self, *, strict: bool) -> None:
        self.api_key = env_secret(self.api_key, "FGCLIP_API_KEY")
        if strict and self.api_key is None:
            raise ConfigurationError(
                "FG-CLIP API key missing: pass api_key=... or set FGCLIP_API_KEY"
            )

    def _validate_settings(self) -> None:
        if self.model_name != proto.MODEL:
            raise ConfigurationError(
                f"model_name must be {proto.MODEL!r} (the only FG-CLIP model), got {self.model_name!r}"
            )

    # ------------------------------------------------------------------ clients

    def _client_options(self) -> dict[str, Any]:
        return {
            "api_key": self.api_key,
            "base_url": self.base_url,
            "timeout": self.timeout,
            "max_retries": self.max_retries,
            "max_concurrency": self.max_concurrency,
            "max_batch_size": self.embed_batch_size,
        }

    @property
    def client(self) -> FGClipClient:
        """The blocking core client (built on first use), for anything not wrapped here."""
        return self._clients.sync(lambda: FGClipClient(**self._client_options()))

    @property
    def async_client(self) -> AsyncFGClipClient:
        """The async core client of the running event loop (built on first use)."""
        return self._clients.for_running_loop(lambda: AsyncFGClipClient(**self._client_options()))

    def close(self) -> None:
        """Close the blocking client's connections (a later call opens new ones)."""
        self._clients.close()

    async def aclose(self) -> None:
        """Close the running loop's async client (a later call opens a new one)."""
        await self._clients.aclose()

    # ------------------------------------------------------------------ texts

    def _texts(self, texts: Sequence[str], *, local: bool = False) -> list[Embedding]:
        result = self.client.embed_texts(
            texts, embedding_types=(self.embedding_type,), truncate=self.truncate, text_box=local
        )
        return dense_rows(result, self.embedding_type)

    async def _atexts(self, texts: Sequence[str], *, local: bool = False) -> list[Embedding]:
        result = await self.async_client.embed_texts(
            texts, embedding_types=(self.embedding_type,), truncate=self.truncate, text_box=local
        )
        return dense_rows(result, self.embedding_type)

    # ------------------------------------------------------------------ images

    def _images(self, images: Sequence[ImageSource]) -> list[Embedding]:
        result = self.client.embed_images(images, embedding_types=(self.embedding_type,))
        return dense_rows(result, self.embedding_type)

    async def _aimages(self, images: Sequence[ImageSource]) -> list[Embedding]:
        result = await self.async_client.embed_images(
            images, embedding_types=(self.embedding_type,)
        )
        return dense_rows(result, self.embedding_type)

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
    rows = dense_rows(result, embedding_type)
    return [[rows[int(r)] for r in result.rows_for_input(i)] for i in range(n)]
