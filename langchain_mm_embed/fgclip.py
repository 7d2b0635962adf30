"""LangChain embeddings over 360 FG-CLIP: texts, images, and region (box) features;
:func:`fgclip_relevance_score` turns FG-CLIP cosines into match probabilities."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal, Unpack

from langchain_core.embeddings import Embeddings
from langchain_core.utils import secret_from_env
from pydantic import Field, SecretStr

from mm_embed import EmbeddingResult, fgclip_probability
from mm_embed.adapter_support import FGClipClientFields, FGClipClientSettings
from mm_embed.config import EnvVar
from mm_embed.inputs import ImageSource
from mm_embed.providers.fgclip.catalogue import DEFAULT_MODEL, MAX_TEXT_TOKENS

from ._batching import _BatchingArgs, _BatchingFields

__all__ = ["FGClipEmbeddings", "fgclip_relevance_score"]

#: One list of ``[x, y, w, h]`` boxes (pixels of the original image) per image.
BoxLists = Sequence[Sequence[Sequence[float]] | None]
EmbeddingType = Literal["float", "int8", "uint8"]
Truncate = Literal["none", "start"]


def fgclip_relevance_score(similarity: float) -> float:
    """FG-CLIP's text-image match probability of a cosine similarity,
    ``sigmoid(115.58 * cos - 16.75)`` (the provider's published logit scale and bias):
    a relevance in ``[0, 1]`` ordered like the cosines.

    For LangChain vector stores that take ``relevance_score_fn=`` and hand it a cosine
    *similarity*, and for :class:`~langchain_mm_embed.ScoredVectorStoreRetriever`
    (``relevance_score_fn=fgclip_relevance_score``). A store that hands over a cosine
    *distance* needs ``lambda d: fgclip_relevance_score(1 - d)``.
    """
    return float(fgclip_probability(similarity))


class FGClipEmbeddings(_BatchingFields, FGClipClientFields, Embeddings):
    """360 FG-CLIP embeddings for LangChain: texts and images in one vector space, plus
    fine-grained region (box) features.

    Texts go through :meth:`embed_documents` / :meth:`embed_query`; images through
    :meth:`embed_image` (the ``embed_image(uris=...)`` convention Chroma and other
    multimodal vector stores call); boxes through :meth:`embed_image_boxes`, with queries
    embedded as FG-CLIP *local* text features by :meth:`embed_box_query` (or by
    :meth:`embed_query` when ``query_text_box=True``). Every method has a native async
    twin. Vectors are ``list[float]``; ``int8`` / ``uint8`` vectors are cast to floats.

    Setup: ``pip install "mm-embed[langchain]"`` and pass ``api_key`` or set the key's
    environment variable (see :class:`mm_embed.config.EnvVar`; the endpoint's variable
    points it elsewhere, e.g. at the local emulator). Settings and their defaults are
    :class:`mm_embed.adapter_support.FGClipClientFields`'s plus the fields below.

    Example:
        .. code-block:: python

            from langchain_mm_embed import FGClipEmbeddings

            embeddings = FGClipEmbeddings()
            vectors = embeddings.embed_documents(["a red circle", "a blue square"])
            images = embeddings.embed_image(["photo.png", "https://example.com/cat.jpg"])

    Batching, retries, rate limits and bounded concurrency happen in the core client
    (:class:`mm_embed.FGClipClient`), built on first use from these settings and rebuilt
    when one of them changes; a copy (``model_copy``) builds its own.
    """

    fgclip_api_key: SecretStr | None = Field(
        alias="api_key",
        default_factory=secret_from_env(f"{EnvVar.FGCLIP_API_KEY}", default=None),
        description=f"API key; read from {EnvVar.FGCLIP_API_KEY} when not given.",
    )
    model: str = Field(
        default=DEFAULT_MODEL, description="The FG-CLIP model (the API serves fg-clip)."
    )
    embedding_type: EmbeddingType = Field(
        default="float", description="Vector type asked for; int8/uint8 come back as floats."
    )
    truncate: Truncate = Field(
        default="none",
        description=f'"none": a text over {MAX_TEXT_TOKENS} tokens is an error; '
        '"start": keep its start.',
    )
    query_text_box: bool = Field(
        default=False,
        description="embed_query returns local text features (text_box_flag), the ones "
        "to compare with box vectors from embed_image_boxes.",
    )

    if TYPE_CHECKING:

        def __init__(self, **settings: Unpack[_FGClipEmbeddingsArgs]) -> None: ...

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


class _FGClipEmbeddingsArgs(FGClipClientSettings, _BatchingArgs, total=False):
    model: str
    embedding_type: EmbeddingType
    truncate: Truncate
    query_text_box: bool
