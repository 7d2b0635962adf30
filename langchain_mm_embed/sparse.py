"""Sparse vectors from the Viking ``*-and-m3`` and ``bge-m3`` models, in the shape
``langchain_qdrant`` takes (``SparseEmbeddings`` returning ``SparseVector``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Unpack

from pydantic import Field

from mm_embed import EmbeddingResult
from mm_embed import SparseVector as CoreSparseVector
from mm_embed.adapter_support import check_pairable
from mm_embed.errors import ResponseFormatError
from mm_embed.pairing import DenseSparsePairing

from ._viking_fields import _VikingEmbeddingsArgs, _VikingEmbeddingsFields
from .viking import VikingEmbeddings

try:  # the ``qdrant`` extra; without it the same interface comes from a local stand-in
    from langchain_qdrant import SparseEmbeddings, SparseVector
except ImportError:  # pragma: no cover - covered by a subprocess test that hides it
    from ._sparse_types import SparseEmbeddings, SparseVector  # type: ignore[assignment]

__all__ = ["VikingSparseEmbeddings"]


class VikingSparseEmbeddings(_VikingEmbeddingsFields, SparseEmbeddings):
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
    :class:`VikingEmbeddings` of the same model. The two then hold one
    :class:`~mm_embed.pairing.DenseSparsePairing` (their ``pairing`` field): whichever
    embeds a text first asks for dense and sparse together, the other finds its half
    held, and when both ask at once (``HybridRetriever.ainvoke``) the second waits for
    the first's request. A hybrid index or query costs one request, not two. A
    standalone object asks for sparse vectors only; its ``dimension`` is the dense
    dimension asked for alongside when paired.

    Example:
        .. code-block:: python

            from langchain_mm_embed import VikingEmbeddings, VikingSparseEmbeddings

            dense = VikingEmbeddings(model="doubao-embedding-and-m3")
            sparse = VikingSparseEmbeddings.from_dense(dense)
    """

    model: str = Field(default="bge-m3", description="A Viking model with sparse vectors.")

    _sparse: ClassVar[bool] = True

    if TYPE_CHECKING:

        def __init__(self, **settings: Unpack[_VikingEmbeddingsArgs]) -> None: ...

    @classmethod
    def from_dense(
        cls, dense: VikingEmbeddings, *, pairing: DenseSparsePairing | None = None
    ) -> VikingSparseEmbeddings:
        """The sparse twin of ``dense``: the same model and settings, and one
        :class:`~mm_embed.pairing.DenseSparsePairing` handed to both (``pairing``, else
        the one ``dense`` holds, else a new one with the defaults of
        :data:`mm_embed.config.DEFAULTS`: both vectors of a text reused for 600 s, at
        most 10,000 texts). From then on each text costs one request for both vectors,
        whichever object asks first; errors name indices of the caller's own list.

        ``dense`` keeps the pairing (its ``pairing`` field) and asks for both vectors of
        the texts it embeds (images and other inputs are unaffected). Raises
        ``ConfigurationError`` when ``dense.model`` has no sparse vectors.
        """
        check_pairable(dense.model)
        if pairing is None:  # not ``or``: an empty pairing is falsy (it has a length)
            pairing = dense.pairing if dense.pairing is not None else DenseSparsePairing()
        dense.pairing = pairing
        return cls(**{name: getattr(dense, name) for name in _VikingEmbeddingsFields.model_fields})

    # ------------------------------------------------------------------ core vectors

    def _core_sparse(self, texts: list[str]) -> list[CoreSparseVector]:
        if self.pairing is not None:
            return [entry.sparse for entry in self._pair_entries(texts)]
        return _rows(self.client.embed(texts, **self._request(dense=False), return_dense=False))

    async def _acore_sparse(self, texts: list[str]) -> list[CoreSparseVector]:
        if self.pairing is not None:
            return [entry.sparse for entry in await self._apair_entries(texts)]
        result = await self.async_client.embed(
            texts, **self._request(dense=False), return_dense=False
        )
        return _rows(result)

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
