"""One provider call per text when dense and sparse vectors come from one Viking model.

A hybrid index needs both vectors of every text, and LlamaIndex asks for them at
different moments (the embed model for dense, the vector store's sparse function for
sparse), sometimes at the same moment (the retrievers of an async
``QueryFusionRetriever``). :class:`DenseSparsePair` joins the two sides through the
core's :class:`~mm_embed.pairing.DenseSparseCache`: whichever side asks first requests
both vectors in one call, a side asking while that call is in flight waits for it, and
both vectors stay for ``ttl_seconds`` (at most ``max_entries`` texts, least recently
used dropped first), so a repeated text or query costs nothing.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from mm_embed import AsyncVikingClient, EmbeddingResult, VikingClient
from mm_embed.pairing import DenseSparseCache, PairEntry

if TYPE_CHECKING:
    from .viking import VikingEmbedding

__all__ = ["DenseSparsePair"]

Kind = Literal["dense", "sparse"]


class DenseSparsePair(DenseSparseCache):
    """The shared cache of a dense model paired with a sparse model.

    The request parameters (model, version, dimension) are read from ``dense`` at each
    call, and every held vector is keyed by them and the text, so a vector is only ever
    reused for the exact request that produced it. Thread- and task-safe. Counters
    ``reused``, ``coalesced`` and ``fetched`` are those of
    :class:`~mm_embed.pairing.DenseSparseCache`. A deep copy is the same pair (a copied
    model stays paired); a pickle is an empty pair.
    """

    def __init__(
        self,
        dense: VikingEmbedding,
        *,
        ttl_seconds: float = 600.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(ttl_seconds=ttl_seconds, max_entries=max_entries, clock=clock)
        self._dense = dense

    def request_options(self) -> dict[str, Any]:
        """``model``, ``model_version`` and ``dimension`` of the combined call."""
        dense = self._dense
        return {
            "model": dense.model_name,
            "model_version": dense.model_version,
            "dimension": dense.dimension,
        }

    def __deepcopy__(self, memo: dict[int, Any]) -> DenseSparsePair:
        return self

    def __getstate__(self) -> dict[str, Any]:
        return {**super().__getstate__(), "dense": self._dense}

    def __setstate__(self, state: dict[str, Any]) -> None:
        DenseSparsePair.__init__(
            self,
            state["dense"],
            ttl_seconds=state["ttl_seconds"],
            max_entries=state["max_entries"],
        )

    # ------------------------------------------------------------------ resolving

    def resolve(
        self, kind: Kind, texts: Sequence[str], fetch: Callable[[list[str]], EmbeddingResult]
    ) -> list[Any]:
        """``kind`` vectors of ``texts`` (``list[float]`` or ``{index: weight}``): held,
        awaited from a call in flight, or fetched together with the other kind by
        ``fetch(missing_texts)`` (which must return both)."""
        return _halves(kind, self.get_or_fetch(texts, fetch, **self.request_options()))

    async def aresolve(
        self,
        kind: Kind,
        texts: Sequence[str],
        fetch: Callable[[list[str]], Awaitable[EmbeddingResult]],
    ) -> list[Any]:
        """Async twin of :meth:`resolve`."""
        return _halves(kind, await self.aget_or_fetch(texts, fetch, **self.request_options()))

    def texts(self, kind: Kind, client: VikingClient, texts: Sequence[str]) -> list[Any]:
        """:meth:`resolve` with ``client`` asking for both vectors."""
        options = self.request_options()

        def both(missing: list[str]) -> EmbeddingResult:
            return client.embed(missing, **options, return_dense=True, return_sparse=True)

        return _halves(kind, self.get_or_fetch(texts, both, **options))

    async def atexts(
        self, kind: Kind, client: AsyncVikingClient, texts: Sequence[str]
    ) -> list[Any]:
        """Async twin of :meth:`texts`."""
        options = self.request_options()

        async def both(missing: list[str]) -> EmbeddingResult:
            return await client.embed(missing, **options, return_dense=True, return_sparse=True)

        return _halves(kind, await self.aget_or_fetch(texts, both, **options))


def _halves(kind: Kind, entries: list[PairEntry]) -> list[Any]:
    if kind == "dense":
        return [entry.dense_list() for entry in entries]
    return [entry.sparse.to_dict() for entry in entries]
