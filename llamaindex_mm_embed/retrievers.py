"""LlamaIndex retrievers on :mod:`mm_embed.hybrid`.

* :class:`WeightedFusionRetriever` fuses any retrievers with
  :func:`mm_embed.hybrid.fuse` and honours ``weights`` in every mode (LlamaIndex's own
  ``QueryFusionRetriever`` ignores them in reciprocal-rank mode), sync and async, with
  documented tie-breaking and a ``top_k``.
* :class:`HybridStoreNodeRetriever` wraps a core hybrid store
  (:class:`~mm_embed.hybrid.QdrantHybrid`, :class:`~mm_embed.hybrid.MilvusHybrid`):
  one provider request per query for both vector kinds, fusion in the database or with
  :func:`fuse`.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from typing import Any

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.callbacks import CallbackManager
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from mm_embed.errors import InputError
from mm_embed.hybrid import FUSION_METHODS, FusionMethod, Hit, HybridStore, fuse
from mm_embed.hybrid.store import SearchMode, StoreFusion

__all__ = ["HybridStoreNodeRetriever", "WeightedFusionRetriever"]


class WeightedFusionRetriever(BaseRetriever):
    """Fuse the results of several retrievers (e.g. dense and sparse) into one ranking.

    Args:
        retrievers: the retrievers to fuse.
        method: ``"rrf"`` (default), ``"relative_score"`` or ``"dbsf"``.
        k: the RRF rank constant (default 60).
        weights: one weight per retriever (default all 1), applied by every method;
            unlike ``QueryFusionRetriever`` they are not renormalised to sum to 1 (only
            the order of fused scores matters).
        top_k: how many nodes to return (``None``: all fused).

    Nodes are identified by ``node.node_id``. ``"rrf"`` uses each retriever's order
    only; the score-based methods use ``NodeWithScore.score``, or the rank for a
    retriever that returns nodes without scores. Returned nodes carry the fused score.
    ``aretrieve`` queries all retrievers concurrently.
    """

    def __init__(
        self,
        retrievers: Sequence[BaseRetriever],
        *,
        method: FusionMethod = "rrf",
        k: float = 60,
        weights: Sequence[float] | None = None,
        top_k: int | None = 10,
        callback_manager: CallbackManager | None = None,
        verbose: bool = False,
    ) -> None:
        if isinstance(retrievers, BaseRetriever) or not retrievers:
            raise InputError("retrievers must be a non-empty list", field="retrievers")
        if method not in FUSION_METHODS:
            raise InputError(
                f"unknown fusion method {method!r}", field="method", limit=", ".join(FUSION_METHODS)
            )
        if weights is not None:
            if len(weights) != len(retrievers):
                raise InputError(
                    f"weights has {len(weights)} entries for {len(retrievers)} retrievers",
                    field="weights",
                    limit=f"{len(retrievers)} entries",
                )
            if any(not math.isfinite(w) or w < 0 for w in weights):
                raise InputError("weights must be finite numbers >= 0", field="weights")
        if top_k is not None and (
            isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0
        ):
            raise InputError(f"top_k must be None or an int >= 0, got {top_k!r}", field="top_k")
        super().__init__(callback_manager=callback_manager, verbose=verbose)
        self._retrievers = list(retrievers)
        self.method: FusionMethod = method
        self.k = k
        self.weights = list(weights) if weights is not None else None
        self.top_k = top_k

    @property
    def retrievers(self) -> list[BaseRetriever]:
        return list(self._retrievers)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return self._fuse([r.retrieve(query_bundle) for r in self._retrievers])

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        lists = await asyncio.gather(*(r.aretrieve(query_bundle) for r in self._retrievers))
        return self._fuse(list(lists))

    def _ranked(self, nodes: Sequence[NodeWithScore]) -> list[tuple[str, float]]:
        if self.method != "rrf" and nodes and all(n.score is not None for n in nodes):
            return [(n.node.node_id, float(n.score)) for n in nodes]  # type: ignore[arg-type]
        # The retriever's own order: position 0 is its best.
        return [(n.node.node_id, -float(i)) for i, n in enumerate(nodes)]

    def _fuse(self, lists: Sequence[Sequence[NodeWithScore]]) -> list[NodeWithScore]:
        first: dict[str, NodeWithScore] = {}
        for nodes in lists:
            for n in nodes:
                first.setdefault(n.node.node_id, n)
        fused = fuse(
            [self._ranked(nodes) for nodes in lists],
            method=self.method,
            k=self.k,
            weights=self.weights,
            top_k=self.top_k,
        )
        return [NodeWithScore(node=first[node_id].node, score=score) for node_id, score in fused]


class HybridStoreNodeRetriever(BaseRetriever):
    """A LlamaIndex retriever over a core hybrid store, returning nodes (LangChain's
    twin, returning documents, is ``langchain_mm_embed.HybridStoreRetriever``).

    Search options (``top_k``, ``mode``, ``fusion``, ``k``, ``weights``,
    ``client_side``, ``candidates``) are those of
    :meth:`mm_embed.hybrid.HybridStore.search`. Nodes are ``TextNode`` with the stored id,
    text and metadata; image and box hits add ``kind``, ``image``, ``box_index`` and
    ``box`` to the metadata. The store's client is blocking, so ``aretrieve`` runs the
    search in a worker thread.
    """

    def __init__(
        self,
        store: HybridStore,
        *,
        top_k: int = 10,
        mode: SearchMode = "hybrid",
        fusion: StoreFusion = "rrf",
        k: float = 60,
        weights: Sequence[float] | None = None,
        client_side: bool = False,
        candidates: int | None = None,
        callback_manager: CallbackManager | None = None,
        verbose: bool = False,
    ) -> None:
        if not isinstance(store, HybridStore):
            raise InputError("store must be a QdrantHybrid or MilvusHybrid", field="store")
        super().__init__(callback_manager=callback_manager, verbose=verbose)
        self.store = store
        self.options: dict[str, Any] = {
            "top_k": top_k,
            "mode": mode,
            "fusion": fusion,
            "k": k,
            "weights": list(weights) if weights is not None else None,
            "client_side": client_side,
            "candidates": candidates,
        }

    def _search(self, query: str) -> list[NodeWithScore]:
        return [_node(hit) for hit in self.store.search(query, **self.options)]

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return self._search(query_bundle.query_str)

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return await asyncio.to_thread(self._search, query_bundle.query_str)


def _node(hit: Hit) -> NodeWithScore:
    metadata: dict[str, Any] = dict(hit.metadata)
    if hit.kind != "text":
        metadata.update(kind=hit.kind, image=hit.image, box_index=hit.box_index, box=hit.box)
    return NodeWithScore(
        node=TextNode(id_=hit.id, text=hit.text or "", metadata=metadata), score=hit.score
    )
