"""LangChain retrievers on :mod:`mm_embed.hybrid`: weighted fusion with a top-k, sync and
async, over any retrievers; a sparse-index retriever; and a retriever over the core
Qdrant / Milvus hybrid stores.

* :class:`HybridRetriever` fuses any retrievers with :func:`mm_embed.hybrid.fuse`
  (``"rrf"``, ``"relative_score"``, ``"dbsf"``; ``weights`` honoured by every method;
  ``top_k`` results; ties broken by document key). Unlike ``EnsembleRetriever`` it needs
  no legacy package and returns at most ``top_k`` documents.
* :class:`ScoredVectorStoreRetriever` queries a vector store with relevance scores (the
  store's, or ``relevance_score_fn`` such as
  :func:`~langchain_mm_embed.fgclip_relevance_score`) and puts each score in the
  document's metadata, so score-based fusion can use it.
* :class:`SparseIndexRetriever` searches an in-memory :class:`~mm_embed.hybrid.SparseIndex`
  with any sparse embeddings (``embed_query`` returning ``indices`` / ``values``, e.g.
  :class:`~langchain_mm_embed.VikingSparseEmbeddings`).
* :class:`HybridStoreRetriever` wraps a :class:`~mm_embed.hybrid.QdrantHybrid` or
  :class:`~mm_embed.hybrid.MilvusHybrid` (database-side or client-side fusion, one
  provider request per query for both vector kinds).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal, Self

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from langchain_core.vectorstores import VectorStore
from pydantic import (
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from mm_embed.errors import InputError
from mm_embed.hybrid import FUSION_METHODS, FusionMethod, Hit, HybridStore, SparseIndex, fuse
from mm_embed.hybrid.store import SearchMode, StoreFusion

__all__ = [
    "HybridRetriever",
    "HybridStoreRetriever",
    "ScoredVectorStoreRetriever",
    "SparseIndexRetriever",
]

_FUSE_OVERRIDES = frozenset({"method", "k", "weights", "top_k"})
#: What a vector store's scored search returns.
Scored = list[tuple[Document, float]]


class HybridRetriever(BaseRetriever):
    """Fuse the rankings of several retrievers (e.g. dense and sparse) into one.

    Args:
        retrievers: the retrievers to fuse, e.g. ``[dense, sparse]``.
        method: ``"rrf"`` (default), ``"relative_score"`` or ``"dbsf"``.
        k: the RRF rank constant (default 60).
        weights: one weight per retriever (default all 1), used by every method.
        top_k: how many documents to return (``None``: all fused).
        id_key: metadata key identifying a document across retrievers; by default
            ``Document.id``, else the page content.
        score_key: metadata key holding a retriever's own score. ``"rrf"`` uses only the
            retrievers' order; the score-based methods use this score, or the rank
            (``-position``) for a retriever whose documents lack it.
        fused_score_key: metadata key for the fused score on returned documents
            (``None``: leave metadata untouched).

    ``invoke(query, top_k=3, weights=[...], method=..., k=...)`` overrides per call.
    Async (``ainvoke``) queries all retrievers concurrently; with paired Viking
    embeddings (``VikingSparseEmbeddings.from_dense``) their concurrent asks for a new
    query text share one provider request, as with ``invoke``.

    Example:
        .. code-block:: python

            hybrid = HybridRetriever(retrievers=[dense, sparse], weights=[0.4, 0.6], top_k=5)
            docs = hybrid.invoke("kubectl rollout undo")
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    retrievers: list[BaseRetriever] = Field(min_length=1)
    method: FusionMethod = "rrf"
    k: float = Field(default=60, ge=0)
    weights: list[float] | None = None
    top_k: int | None = Field(default=10, ge=0)
    id_key: str | None = None
    score_key: str = "score"
    fused_score_key: str | None = "fused_score"

    @classmethod
    def from_texts(
        cls,
        texts: Sequence[str],
        embeddings: Embeddings,
        sparse_embeddings: Any,
        *,
        metadatas: Sequence[dict[str, Any]] | None = None,
        ids: Sequence[str] | None = None,
        candidates: int = 20,
        **kwargs: Any,
    ) -> HybridRetriever:
        """An in-memory hybrid retriever: ``InMemoryVectorStore`` (cosine) for dense and
        :class:`SparseIndexRetriever` for sparse, each giving ``candidates`` documents.

        With ``sparse_embeddings = VikingSparseEmbeddings.from_dense(embeddings)`` each
        text and each query costs one provider request for both vectors.
        ``kwargs`` are :class:`HybridRetriever` fields (``method``, ``weights``, ...).
        """
        from langchain_core.vectorstores import InMemoryVectorStore

        store = InMemoryVectorStore(embeddings)
        doc_ids = list(ids) if ids is not None else [str(i) for i in range(len(texts))]
        store.add_texts(list(texts), metadatas=list(metadatas) if metadatas else None, ids=doc_ids)
        sparse = SparseIndexRetriever.from_texts(
            texts, sparse_embeddings, metadatas=metadatas, ids=doc_ids, top_k=candidates
        )
        dense = ScoredVectorStoreRetriever(vectorstore=store, scores="raw", top_k=candidates)
        return cls(retrievers=[dense, sparse], **kwargs)

    @field_validator("weights")
    @classmethod
    def _check_weights(cls, value: list[float] | None, info: ValidationInfo) -> list[float] | None:
        retrievers = info.data.get("retrievers")
        if value is not None and retrievers is not None and len(value) != len(retrievers):
            raise ValueError(f"weights has {len(value)} entries for {len(retrievers)} retrievers")
        if value is not None and any(not math.isfinite(w) or w < 0 for w in value):
            raise ValueError("weights must be finite numbers >= 0")
        return value

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        options = self._options(kwargs)
        lists = [
            r.invoke(query, config={"callbacks": run_manager.get_child(tag=f"retriever_{i + 1}")})
            for i, r in enumerate(self.retrievers)
        ]
        return self._fuse(lists, **options)

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        options = self._options(kwargs)
        lists = await asyncio.gather(
            *(
                r.ainvoke(
                    query, config={"callbacks": run_manager.get_child(tag=f"retriever_{i + 1}")}
                )
                for i, r in enumerate(self.retrievers)
            )
        )
        return self._fuse(list(lists), **options)

    def _options(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        unknown = set(kwargs) - _FUSE_OVERRIDES
        if unknown:
            raise InputError(
                f"unknown argument(s) {', '.join(sorted(unknown))}",
                field="kwargs",
                limit=", ".join(sorted(_FUSE_OVERRIDES)),
            )
        return {
            "method": kwargs.get("method", self.method),
            "k": kwargs.get("k", self.k),
            "weights": kwargs.get("weights", self.weights),
            "top_k": kwargs.get("top_k", self.top_k),
        }

    def _key(self, doc: Document) -> str:
        if self.id_key is not None and doc.metadata.get(self.id_key) is not None:
            return str(doc.metadata[self.id_key])
        return doc.id if doc.id else doc.page_content

    def _ranked(self, docs: Sequence[Document], method: str) -> list[tuple[str, float]]:
        if method != "rrf":
            scores = [doc.metadata.get(self.score_key) for doc in docs]
            if docs and all(_is_number(s) for s in scores):
                return [(self._key(d), float(s)) for d, s in zip(docs, scores, strict=True)]  # type: ignore[arg-type]
        # The retriever's own order: position 0 is its best.
        return [(self._key(d), -float(i)) for i, d in enumerate(docs)]

    def _fuse(
        self,
        lists: Sequence[Sequence[Document]],
        *,
        method: FusionMethod,
        k: float,
        weights: Sequence[float] | None,
        top_k: int | None,
    ) -> list[Document]:
        if method not in FUSION_METHODS:
            raise InputError(
                f"unknown fusion method {method!r}", field="method", limit=", ".join(FUSION_METHODS)
            )
        first: dict[str, Document] = {}
        for docs in lists:
            for doc in docs:
                first.setdefault(self._key(doc), doc)
        fused = fuse(
            [self._ranked(docs, method) for docs in lists],
            method=method,
            k=k,
            weights=weights,
            top_k=top_k,
        )
        return [self._with_score(first[key], score) for key, score in fused]

    def _with_score(self, doc: Document, score: float) -> Document:
        if self.fused_score_key is None:
            return doc
        return Document(
            page_content=doc.page_content,
            metadata={**doc.metadata, self.fused_score_key: score},
            id=doc.id,
        )


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class ScoredVectorStoreRetriever(BaseRetriever):
    """A vector store search that keeps the score: each document comes back with
    ``metadata[score_key]``, ready for score-based fusion.

    ``scores="relevance"`` (default) uses ``similarity_search_with_relevance_scores``
    (0..1, higher is better; the store must define its relevance function);
    ``scores="raw"`` uses ``similarity_search_with_score``, the store's own score (for
    ``InMemoryVectorStore`` and Qdrant with cosine, a similarity: higher is better;
    do not use it with stores that return distances).

    ``relevance_score_fn`` turns the store's raw score into the relevance instead of the
    store's own function, e.g. :func:`~langchain_mm_embed.fgclip_relevance_score` for
    FG-CLIP cosines (a text-image match probability); it goes with
    ``scores="relevance"`` and a store whose raw score is a cosine similarity.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    vectorstore: VectorStore
    top_k: int = Field(default=20, ge=0)
    scores: Literal["relevance", "raw"] = "relevance"
    score_key: str = "score"
    search_kwargs: dict[str, Any] = Field(default_factory=dict)
    relevance_score_fn: Callable[[float], float] | None = None

    @model_validator(mode="after")
    def _relevance_needs_relevance_scores(self) -> Self:
        if self.relevance_score_fn is not None and self.scores != "relevance":
            raise ValueError("relevance_score_fn goes with scores='relevance'")
        return self

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        search, _ = self._searches()
        with _relevance_needed(self.vectorstore):
            pairs = search(query, **self._search_kwargs(kwargs))
        return self._documents(pairs)

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        _, asearch = self._searches()
        with _relevance_needed(self.vectorstore):
            pairs = await asearch(query, **self._search_kwargs(kwargs))
        return self._documents(pairs)

    def _searches(self) -> tuple[Callable[..., Scored], Callable[..., Awaitable[Scored]]]:
        """The store's search and its async twin: raw scores or relevance scores."""
        store = self.vectorstore
        if self._raw_scores():
            return store.similarity_search_with_score, store.asimilarity_search_with_score
        return (
            store.similarity_search_with_relevance_scores,
            store.asimilarity_search_with_relevance_scores,
        )

    def _search_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The store search's keyword arguments: ``k`` (a call's ``top_k``, else the
        retriever's), then ``search_kwargs``, then the call's own."""
        top_k = kwargs.pop("top_k", self.top_k)
        return {"k": top_k, **self.search_kwargs, **kwargs}

    def _raw_scores(self) -> bool:
        """Whether to ask the store for its raw scores (then converted, or kept)."""
        return self.scores == "raw" or self.relevance_score_fn is not None

    def _documents(self, pairs: Sequence[tuple[Document, float]]) -> list[Document]:
        convert = self.relevance_score_fn
        return [
            _scored(doc, convert(score) if convert is not None else score, self.score_key)
            for doc, score in pairs
        ]


@contextmanager
def _relevance_needed(store: VectorStore) -> Iterator[None]:
    """Turn the store's ``NotImplementedError`` (no relevance-score function) into an
    :class:`~mm_embed.InputError` that says what to pass instead."""
    try:
        yield
    except NotImplementedError:
        raise InputError(
            f"{type(store).__name__} has no relevance-score function: pass scores='raw' when "
            "its raw score is a similarity (higher is better), or a relevance_score_fn",
            field="scores",
        ) from None


def _scored(doc: Document, score: float, key: str) -> Document:
    return Document(page_content=doc.page_content, metadata={**doc.metadata, key: score}, id=doc.id)


class SparseIndexRetriever(BaseRetriever):
    """Exact sparse (lexical) retrieval over an in-memory :class:`SparseIndex`.

    ``sparse_embeddings`` is any object with ``embed_documents(texts)`` and
    ``embed_query(text)`` returning sparse vectors with ``indices`` and ``values`` (the
    ``langchain_qdrant.SparseEmbeddings`` interface; async twins are used when present).
    Returned documents carry their dot-product score in ``metadata[score_key]``.
    Documents without an ``id`` get their position in the index as id.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    sparse_embeddings: Any
    top_k: int = Field(default=20, ge=0)
    score_key: str = "score"
    _index: SparseIndex = PrivateAttr(default_factory=SparseIndex)
    _docs: dict[str, Document] = PrivateAttr(default_factory=dict)

    @classmethod
    def from_texts(
        cls,
        texts: Sequence[str],
        sparse_embeddings: Any,
        *,
        metadatas: Sequence[dict[str, Any]] | None = None,
        ids: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> SparseIndexRetriever:
        """Index ``texts`` (one ``embed_documents`` call) and return the retriever."""
        metas = list(metadatas) if metadatas is not None else [{} for _ in texts]
        doc_ids: list[str | None] = list(ids) if ids is not None else [None] * len(texts)
        if len(metas) != len(texts) or len(doc_ids) != len(texts):
            raise InputError("metadatas and ids need one entry per text", field="texts")
        retriever = cls(sparse_embeddings=sparse_embeddings, **kwargs)
        retriever.add_documents(
            [
                Document(page_content=t, metadata=dict(m), id=i)
                for t, m, i in zip(texts, metas, doc_ids, strict=True)
            ]
        )
        return retriever

    def add_documents(self, documents: Sequence[Document]) -> list[str]:
        """Embed and index documents (an existing id is replaced). Returns their ids."""
        vectors = self.sparse_embeddings.embed_documents([d.page_content for d in documents])
        return self._add(documents, vectors)

    async def aadd_documents(self, documents: Sequence[Document]) -> list[str]:
        """Async twin of :meth:`add_documents`."""
        texts = [d.page_content for d in documents]
        if hasattr(self.sparse_embeddings, "aembed_documents"):
            vectors = await self.sparse_embeddings.aembed_documents(texts)
        else:
            vectors = await asyncio.to_thread(self.sparse_embeddings.embed_documents, texts)
        return self._add(documents, vectors)

    def _add(self, documents: Sequence[Document], vectors: Sequence[Any]) -> list[str]:
        ids = [d.id or str(len(self._docs) + i) for i, d in enumerate(documents)]
        self._index.add(ids, list(vectors))
        for doc_id, doc in zip(ids, documents, strict=True):
            self._docs[doc_id] = Document(
                page_content=doc.page_content, metadata=dict(doc.metadata), id=doc_id
            )
        return ids

    def __len__(self) -> int:
        return len(self._index)

    def _hits(self, vector: Any, top_k: int) -> list[Document]:
        return [
            _scored(self._docs[doc_id], score, self.score_key)
            for doc_id, score in self._index.search(vector, top_k)
        ]

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        return self._hits(
            self.sparse_embeddings.embed_query(query), kwargs.get("top_k", self.top_k)
        )

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        if hasattr(self.sparse_embeddings, "aembed_query"):
            vector = await self.sparse_embeddings.aembed_query(query)
        else:
            vector = await asyncio.to_thread(self.sparse_embeddings.embed_query, query)
        return self._hits(vector, kwargs.get("top_k", self.top_k))


class HybridStoreRetriever(BaseRetriever):
    """A retriever over a core hybrid store (:class:`~mm_embed.hybrid.QdrantHybrid`,
    :class:`~mm_embed.hybrid.MilvusHybrid`).

    Each query costs one provider request for both vector kinds; fusion runs in the
    database (``client_side=False``: Qdrant RRF / DBSF, Milvus RRF / weighted) or with
    :func:`~mm_embed.hybrid.fuse`. Documents carry ``id``, the stored metadata and the
    score in ``metadata[score_key]``; image and box hits add ``kind``, ``image``,
    ``box_index`` and ``box``. The store's client is blocking, so ``ainvoke`` runs the
    search in a worker thread.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    store: HybridStore
    top_k: int = Field(default=10, ge=0)
    mode: SearchMode = "hybrid"
    fusion: StoreFusion = "rrf"
    k: float = Field(default=60, ge=0)
    weights: list[float] | None = None
    client_side: bool = False
    candidates: int | None = Field(default=None, ge=0)
    score_key: str = "score"

    def _search(self, query: str, kwargs: dict[str, Any]) -> list[Document]:
        options: dict[str, Any] = {
            "top_k": self.top_k,
            "mode": self.mode,
            "fusion": self.fusion,
            "k": self.k,
            "weights": self.weights,
            "client_side": self.client_side,
            "candidates": self.candidates,
        }
        unknown = set(kwargs) - set(options)
        if unknown:
            raise InputError(
                f"unknown argument(s) {', '.join(sorted(unknown))}",
                field="kwargs",
                limit=", ".join(sorted(options)),
            )
        options.update(kwargs)
        return [self._document(hit) for hit in self.store.search(query, **options)]

    def _document(self, hit: Hit) -> Document:
        metadata: dict[str, Any] = {**hit.metadata, self.score_key: hit.score}
        if hit.kind != "text":
            metadata.update(kind=hit.kind, image=hit.image, box_index=hit.box_index, box=hit.box)
        return Document(page_content=hit.text or "", metadata=metadata, id=hit.id)

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        return self._search(query, kwargs)

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        return await asyncio.to_thread(self._search, query, kwargs)
