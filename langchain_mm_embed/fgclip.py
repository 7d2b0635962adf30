"""LangChain embeddings over 360 FG-CLIP: texts, images, and region (box) features."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self

from langchain_core.embeddings import Embeddings
from pydantic import Field, PrivateAttr, SecretStr, model_validator

from mm_embed import AsyncFGClipClient, EmbeddingResult, FGClipClient
from mm_embed.errors import ConfigurationError
from mm_embed.inputs import ImageSource

from ._common import AdapterBase, ClientSlot, env_secret_factory, env_str_factory

__all__ = ["FGClipEmbeddings"]

_MISSING_KEY = "FG-CLIP API key missing: pass api_key=... or set FGCLIP_API_KEY"
#: One list of ``[x, y, w, h]`` boxes (pixels of the original image) per image.
BoxLists = Sequence[Sequence[Sequence[float]] | None]


class FGClipEmbeddings(AdapterBase, Embeddings):
    """360 FG-CLIP embeddings for LangChain: texts and images in one vector space, plus
    fine-grained region (box) features.

    Texts go through :meth:`embed_documents` / :meth:`embed_query`; images through
    :meth:`embed_image` (the ``embed_image(uris=...)`` convention Chroma and other
    multimodal vector stores call); boxes through :meth:`embed_image_boxes`, with queries
    embedded as FG-CLIP *local* text features by :meth:`embed_box_query` (or by
    :meth:`embed_query` when ``query_text_box=True``). Every method has a native async
    twin. Vectors are ``list[float]``; ``int8`` / ``uint8`` vectors are cast to floats.

    Setup: ``pip install "mm-embed[langchain]"`` and set ``FGCLIP_API_KEY`` (and
    ``FGCLIP_BASE_URL`` to use another endpoint, e.g. the local emulator).

    Example:
        .. code-block:: python

            from langchain_mm_embed import FGClipEmbeddings

            embeddings = FGClipEmbeddings()
            vectors = embeddings.embed_documents(["a red circle", "a blue square"])
            images = embeddings.embed_image(["photo.png", "https://example.com/cat.jpg"])

    Batching, retries, rate limits and bounded concurrency happen in the core client
    (:class:`mm_embed.FGClipClient`), built on first use from these settings.
    """

    fgclip_api_key: SecretStr | None = Field(
        alias="api_key",
        default_factory=env_secret_factory("FGCLIP_API_KEY", missing=_MISSING_KEY),
        description="API key; read from FGCLIP_API_KEY when not given.",
    )
    base_url: str | None = Field(
        default_factory=env_str_factory("FGCLIP_BASE_URL"),
        description="Endpoint; FGCLIP_BASE_URL, else https://api.research.360.cn.",
    )
    embedding_type: Literal["float", "int8", "uint8"] = Field(
        default="float", description="Vector type asked for; int8/uint8 come back as floats."
    )
    truncate: Literal["none", "start"] = Field(
        default="none",
        description='"none": a text over 196 tokens is an error; "start": keep its start.',
    )
    query_text_box: bool = Field(
        default=False,
        description="embed_query returns local text features (text_box_flag), the ones "
        "to compare with box vectors from embed_image_boxes.",
    )
    batch_size: int | None = Field(
        default=None, ge=1, description="Inputs per request; default and cap: 32."
    )
    max_retries: int = Field(default=3, ge=0, description="Retries per request; 0 = none.")
    timeout: float | None = Field(
        default=None, gt=0, description="Seconds per request; None: 60 s (10 s to connect)."
    )
    max_concurrency: int = Field(default=4, ge=1, description="Requests in flight at once.")
    show_progress_bar: bool = Field(default=False, description="tqdm bar over inputs.")

    _secret_env: ClassVar[dict[str, str]] = {"fgclip_api_key": "FGCLIP_API_KEY"}
    _clients: ClientSlot[FGClipClient, AsyncFGClipClient] = PrivateAttr(default_factory=ClientSlot)

    if TYPE_CHECKING:
        # The constructor as callers see it (secrets may be plain str); pydantic builds
        # the real one from the fields above. tests/langchain keep the two in step.
        def __init__(
            self,
            *,
            api_key: str | SecretStr | None = ...,
            base_url: str | None = ...,
            embedding_type: Literal["float", "int8", "uint8"] = ...,
            truncate: Literal["none", "start"] = ...,
            query_text_box: bool = ...,
            batch_size: int | None = ...,
            max_retries: int = ...,
            timeout: float | None = ...,
            max_concurrency: int = ...,
            show_progress_bar: bool = ...,
        ) -> None: ...

    @model_validator(mode="after")
    def _require_key(self) -> Self:
        key = self.fgclip_api_key
        if key is None or not key.get_secret_value():
            raise ConfigurationError(_MISSING_KEY)
        return self

    # ------------------------------------------------------------------ clients

    def _client_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "api_key": self.fgclip_api_key,
            "base_url": self.base_url,
            "max_retries": self.max_retries,
            "max_concurrency": self.max_concurrency,
            "show_progress": self.show_progress_bar,
            "max_batch_size": self.batch_size,
        }
        if self.timeout is not None:
            options["timeout"] = self.timeout
        return options

    @property
    def client(self) -> FGClipClient:
        """The blocking core client (built on first use, shared by every call)."""
        return self._clients.sync(lambda: FGClipClient(**self._client_options()))

    @property
    def async_client(self) -> AsyncFGClipClient:
        """The async core client of the running event loop (one per loop)."""
        return self._clients.for_running_loop(lambda: AsyncFGClipClient(**self._client_options()))

    def _types(self) -> tuple[str]:
        return (self.embedding_type,)

    def _floats(self, result: EmbeddingResult) -> list[list[float]]:
        return result.as_float_lists(self.embedding_type)

    # ------------------------------------------------------------------ texts

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Global text features, one vector per text, in order."""
        return self._floats(
            self.client.embed_texts(texts, embedding_types=self._types(), truncate=self.truncate)
        )

    def embed_query(self, text: str) -> list[float]:
        """A global text feature (a local one when ``query_text_box=True``)."""
        return self._embed_one(text, text_box=self.query_text_box)

    def embed_box_query(self, text: str) -> list[float]:
        """A *local* text feature (``text_box_flag``): the query vector for box search."""
        return self._embed_one(text, text_box=True)

    def _embed_one(self, text: str, *, text_box: bool) -> list[float]:
        result = self.client.embed_texts(
            [text], embedding_types=self._types(), truncate=self.truncate, text_box=text_box
        )
        return self._floats(result)[0]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """Async twin of :meth:`embed_documents` (asyncio I/O, no thread pool)."""
        result = await self.async_client.embed_texts(
            texts, embedding_types=self._types(), truncate=self.truncate
        )
        return self._floats(result)

    async def aembed_query(self, text: str) -> list[float]:
        """Async twin of :meth:`embed_query`."""
        return await self._aembed_one(text, text_box=self.query_text_box)

    async def aembed_box_query(self, text: str) -> list[float]:
        """Async twin of :meth:`embed_box_query`."""
        return await self._aembed_one(text, text_box=True)

    async def _aembed_one(self, text: str, *, text_box: bool) -> list[float]:
        result = await self.async_client.embed_texts(
            [text], embedding_types=self._types(), truncate=self.truncate, text_box=text_box
        )
        return self._floats(result)[0]

    # ------------------------------------------------------------------ images

    def embed_image(self, uris: Sequence[ImageSource]) -> list[list[float]]:
        """One vector per image. Each entry is a local path, an ``http(s)`` URL (jpg,
        jpeg, png or bmp on a named host), a ``data:image/...;base64,`` URI, raw bytes or
        a ``PIL.Image``. Vector stores call this as ``embed_image(uris=[...])``."""
        return self._floats(self.client.embed_images(uris, embedding_types=self._types()))

    async def aembed_image(self, uris: Sequence[ImageSource]) -> list[list[float]]:
        """Async twin of :meth:`embed_image`."""
        result = await self.async_client.embed_images(uris, embedding_types=self._types())
        return self._floats(result)

    def embed_image_boxes(
        self, uris: Sequence[ImageSource], boxes: BoxLists
    ) -> list[list[list[float]]]:
        """Region features: for each image, one vector per box, in the boxes' order.

        ``boxes`` has one entry per image: a list of ``[x, y, w, h]`` boxes in pixels of
        the original image (``x + w <= width``, ``y + h <= height``), or ``None`` / ``[]``
        for one whole-image vector. Compare these with :meth:`embed_box_query` vectors.
        """
        result = self.client.embed_images(uris, boxes=boxes, embedding_types=self._types())
        return self._per_image(result, len(uris))

    async def aembed_image_boxes(
        self, uris: Sequence[ImageSource], boxes: BoxLists
    ) -> list[list[list[float]]]:
        """Async twin of :meth:`embed_image_boxes`."""
        result = await self.async_client.embed_images(
            uris, boxes=boxes, embedding_types=self._types()
        )
        return self._per_image(result, len(uris))

    def _per_image(self, result: EmbeddingResult, n_images: int) -> list[list[list[float]]]:
        grouped: list[list[list[float]]] = [[] for _ in range(n_images)]
        for image, vector in zip(result.input_indices.tolist(), self._floats(result), strict=True):
            grouped[image].append(vector)
        return grouped
