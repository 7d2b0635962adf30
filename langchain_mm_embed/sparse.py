"""Sparse vectors from the Viking ``*-and-m3`` and ``bge-m3`` models, in the shape
``langchain_qdrant`` takes (``SparseEmbeddings`` returning ``SparseVector``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import Field, SecretStr

from mm_embed import EmbeddingResult
from mm_embed import SparseVector as CoreSparseVector
from mm_embed.errors import ConfigurationError, ResponseFormatError
from mm_embed.pairing import DenseSparseCache
from mm_embed.protocol import viking as proto

from ._viking_base import Pairing, VikingSettings
from .viking import VikingEmbeddings

try:  # the ``qdrant`` extra; without it the same interface comes from a local stand-in
    from langchain_qdrant import SparseEmbeddings, SparseVector
except ImportError:  # pragma: no cover - covered by a subprocess test that hides it
    from ._sparse_types import SparseEmbeddings, SparseVector  # type: ignore[assignment]

__all__ = ["SparseVector", "VikingSparseEmbeddings"]

DEFAULT_CACHE_TTL = 60.0
DEFAULT_CACHE_SIZE = 1024


class VikingSparseEmbeddings(VikingSettings, SparseEmbeddings):
    """VikingDB sparse (lexical) vectors for LangChain, e.g. for
    ``langchain_qdrant.QdrantVectorStore(..., retrieval_mode=RetrievalMode.HYBRID)``.

    :meth:`embed_documents` / :meth:`embed_query` return ``SparseVector(indices, values)``
    (``langchain_qdrant.SparseVector`` when the ``qdrant`` extra is installed). Token keys
    map to integer indices with ``mm_embed.sparse_index``: numeric token ids keep their
    value, other tokens get a stable 31-bit hash, the same in every process.
    :meth:`embed_weights` gives the provider's own ``{token: weight}`` maps.

    Models with sparse vectors: ``bge-m3``, ``bge-large-zh-and-m3``,
    ``doubao-embedding-and-m3``, ``doubao-embedding-large-and-m3``.

    One request for both vectors: build the sparse object with :meth:`from_dense` from a
    :class:`VikingEmbeddings` of the same model. The two then share one client and a
    short-lived cache (:class:`mm_embed.pairing.DenseSparseCache`); whichever embeds a
    text first asks for dense and sparse together, the other reads its half from the
    cache, and when both ask at once (``HybridRetriever.ainvoke``) the second waits for
    the first's request. A hybrid index or query costs one request, not two. A
    standalone object asks for sparse vectors only.

    Example:
        .. code-block:: python

            from langchain_mm_embed import VikingEmbeddings, VikingSparseEmbeddings

            dense = VikingEmbeddings(model="doubao-embedding-and-m3")
            sparse = VikingSparseEmbeddings.from_dense(dense)
    """

    model: str = Field(default="bge-m3", description="A Viking model with sparse vectors.")

    if TYPE_CHECKING:
        # The constructor as callers see it (secrets may be plain str); pydantic builds
        # the real one from the fields. tests/langchain keep the two in step.
        def __init__(
            self,
            *,
            access_key: str | SecretStr | None = ...,
            secret_key: str | SecretStr | None = ...,
            token: str | SecretStr | None = ...,
            base_url: str | None = ...,
            region: str = ...,
            model: str = ...,
            model_version: str | None = ...,
            batch_size: int | None = ...,
            max_retries: int = ...,
            timeout: float | None = ...,
            max_concurrency: int = ...,
            tokens_per_minute: int | None = ...,
            images_per_second: float | None = ...,
            show_progress_bar: bool = ...,
        ) -> None: ...

    def _check_model(self) -> None:
        proto.resolve_request(
            model=self.model, model_version=self.model_version, return_sparse=True
        )

    @classmethod
    def from_dense(
        cls,
        dense: VikingEmbeddings,
        *,
        cache_ttl: float = DEFAULT_CACHE_TTL,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> VikingSparseEmbeddings:
        """The sparse twin of ``dense``: same model and settings, one shared client, and
        a cache that holds both vectors of each text for ``cache_ttl`` seconds after they
        arrive (at most ``cache_size`` texts, least recently used dropped first), so
        each text costs one request for both vectors. Only texts neither held nor being
        fetched are sent; errors name indices of the caller's own list.

        From then on ``dense`` asks for both vectors of the texts it embeds (images and
        other inputs are unaffected). Calling this again for the same ``dense`` reuses
        the pairing. Raises ``ConfigurationError`` when ``dense.model`` has no sparse
        vectors.
        """
        if (
            isinstance(cache_ttl, bool)
            or not isinstance(cache_ttl, (int, float))
            or not cache_ttl > 0
        ):
            raise ConfigurationError(f"cache_ttl must be > 0 seconds, got {cache_ttl!r}")
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 1:
            raise ConfigurationError(f"cache_size must be an integer >= 1, got {cache_size!r}")
        spec = proto.get_model(dense.model)
        if not spec.sparse:
            raise ConfigurationError(
                f"model {dense.model!r} has no sparse vectors; use one of: "
                + ", ".join(name for name, s in proto.MODELS.items() if s.sparse)
            )
        settings = {name: getattr(dense, name) for name in VikingSettings.model_fields}
        sparse = cls(**settings)
        session = dense._session
        current = session.pair
        wanted = (dense.model, dense.model_version, dense.dimension)
        if current is None or (current.model, current.model_version, current.dimension) != wanted:
            cache = DenseSparseCache(ttl_seconds=cache_ttl, max_entries=cache_size)
            session.pair = Pairing(*wanted, cache=cache)
        sparse._session = session
        return sparse

    # ------------------------------------------------------------------ core vectors

    def _options(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "model_version": self.model_version,
            "return_dense": False,
            "return_sparse": True,
        }

    def _core_sparse(self, texts: Sequence[str]) -> list[CoreSparseVector]:
        pair = self._session.pair
        if pair is None:
            return _rows(self.client.embed(texts, **self._options()))
        return [entry.sparse for entry in pair.entries(self.client, texts)]

    async def _acore_sparse(self, texts: Sequence[str]) -> list[CoreSparseVector]:
        pair = self._session.pair
        if pair is None:
            return _rows(await self.async_client.embed(texts, **self._options()))
        return [entry.sparse for entry in await pair.aentries(self.async_client, texts)]

    # ------------------------------------------------------------------ LangChain

    def embed_documents(self, texts: list[str]) -> list[SparseVector]:
        """One ``SparseVector(indices, values)`` per text, indices unique and ascending."""
        return [_to_langchain(v) for v in self._core_sparse(texts)]

    def embed_query(self, text: str) -> SparseVector:
        """The sparse vector of one text."""
        return self.embed_documents([text])[0]

    async def aembed_documents(self, texts: list[str]) -> list[SparseVector]:
        """Async twin of :meth:`embed_documents` (asyncio I/O, no thread pool)."""
        return [_to_langchain(v) for v in await self._acore_sparse(texts)]

    async def aembed_query(self, text: str) -> SparseVector:
        """Async twin of :meth:`embed_query`."""
        return (await self.aembed_documents([text]))[0]

    def embed_weights(self, texts: list[str]) -> list[dict[str, float]]:
        """The provider's ``{token: weight}`` map of each text, keys as returned."""
        return [dict(v.weights) for v in self._core_sparse(texts)]

    async def aembed_weights(self, texts: list[str]) -> list[dict[str, float]]:
        """Async twin of :meth:`embed_weights`."""
        return [dict(v.weights) for v in await self._acore_sparse(texts)]


def _rows(result: EmbeddingResult) -> list[CoreSparseVector]:
    if result.sparse is None:
        raise ResponseFormatError("the provider returned no sparse vectors")
    return result.sparse


def _to_langchain(vector: CoreSparseVector) -> SparseVector:
    return SparseVector(indices=list(vector.indices), values=list(vector.values))
