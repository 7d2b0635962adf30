"""A text query's three rankings (dense, sparse, fused) with the reason for each hit,
and search by an image's vector.

The query is embedded once and the three lists are read from the same vectors with
:meth:`~mm_embed.hybrid.HybridStore.search_vectors`, instead of three provider calls
through :meth:`~mm_embed.hybrid.HybridStore.search`. The fused list is the one
``search(mode="hybrid")`` returns (same candidates, same RRF ``k``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from .. import SparseVector, sparse_index
from ..hybrid import Hit, SearchMode, doc_uuid
from ..hybrid.qdrant import QdrantHybrid

__all__ = [
    "MODES",
    "RankedText",
    "TextRankings",
    "explain_text_query",
    "search_image_vector",
]

#: The three rankings, in the order the pages show them.
MODES: tuple[SearchMode, ...] = ("dense", "sparse", "hybrid")
#: The RRF constant of ``HybridStore.search``'s default fusion.
RRF_K = 60
#: Query words looked up to name numeric sparse tokens (bge-m3 returns token ids).
MAX_QUERY_WORDS = 32


@dataclass(frozen=True)
class RankedText:
    """One text hit with its 1-based rank and score in each ranking that holds it, and
    the query terms its sparse vector shares with the query's (largest share first)."""

    id: str
    text: str
    ranks: Mapping[str, int]
    scores: Mapping[str, float]
    matched_terms: tuple[str, ...] = ()


@dataclass(frozen=True)
class TextRankings:
    """The rankings of one text query, each ``top_k`` long at most."""

    query: str
    top_k: int
    lists: Mapping[str, list[RankedText]] = field(default_factory=dict)

    @property
    def modes(self) -> tuple[str, ...]:
        return tuple(self.lists)

    def cards(self) -> list[RankedText]:
        """Every hit shown in some ranking, once: by fused rank, then by best rank."""
        seen = {hit.id: hit for hits in self.lists.values() for hit in hits}
        last = len(seen) + 10**6

        def order(hit: RankedText) -> tuple[int, int, str]:
            return (hit.ranks.get("hybrid", last), min(hit.ranks.values()), hit.id)

        return sorted(seen.values(), key=order)


def _depth(top_k: int) -> int:
    # HybridStore.search's default candidates: the fused list below is its list.
    return max(4 * top_k, 40)


def explain_text_query(store: QdrantHybrid, query: str, *, top_k: int = 10) -> TextRankings:
    """Embed ``query`` once and rank ``store``'s texts dense, sparse and fused (RRF),
    recording each hit's rank in every list and the sparse terms it matched. A store
    without sparse vectors gives the dense ranking only."""
    depth = _depth(top_k)
    encoded = store.encoder.encode_queries([query])
    dense = encoded.dense[0]
    sparse = encoded.sparse[0] if encoded.sparse else None
    hits: dict[str, list[Hit]] = {"dense": store.search_vectors(dense, top_k=depth, mode="dense")}
    if sparse is not None and store.has_sparse:
        hits["sparse"] = store.search_vectors(dense, sparse, top_k=depth, mode="sparse")
        hits["hybrid"] = store.search_vectors(
            dense, sparse, top_k=depth, candidates=depth, mode="hybrid", fusion="rrf", k=RRF_K
        )
    ranks: dict[str, dict[str, int]] = {}
    scores: dict[str, dict[str, float]] = {}
    texts: dict[str, str] = {}
    for mode, found in hits.items():
        for rank, hit in enumerate(found, 1):
            ranks.setdefault(hit.id, {})[mode] = rank
            scores.setdefault(hit.id, {})[mode] = round(hit.score, 4)
            texts.setdefault(hit.id, hit.text or "")
    shown = list(dict.fromkeys(h.id for found in hits.values() for h in found[:top_k]))
    matched = _matched_terms(store, query, sparse, shown) if sparse is not None else {}
    lists = {
        mode: [
            RankedText(h.id, texts[h.id], ranks[h.id], scores[h.id], matched.get(h.id, ()))
            for h in found[:top_k]
        ]
        for mode, found in hits.items()
    }
    return TextRankings(query, top_k, lists)


def search_image_vector(
    store: QdrantHybrid, vector: npt.NDArray[Any], *, top_k: int = 10
) -> list[Hit]:
    """The whole images nearest to ``vector`` (an FG-CLIP image embedding)."""
    return store.search_vectors(
        np.asarray(vector, dtype=np.float32), top_k=top_k, mode="dense", kind="image"
    )


# --------------------------------------------------------------------------- sparse terms


def _term_labels(store: QdrantHybrid, query: str, sparse: SparseVector) -> dict[int, str]:
    """Sparse index -> a readable query term. Token-keyed models name their tokens;
    id-keyed ones (bge-m3) are named by embedding the query's words in one request."""
    if not all(key.isdigit() for key in sparse.weights):
        return {sparse_index(token): token for token in sparse.weights}
    words = list(dict.fromkeys(w.lower() for w in re.findall(r"\w+", query)))
    words = words[:MAX_QUERY_WORDS]
    if not words:
        return {}
    labels: dict[int, str] = {}
    by_word = store.encoder.encode_documents(words).sparse or []
    for word, vector in zip(words, by_word, strict=True):
        for index in vector.indices:
            labels.setdefault(index, word)
    return labels


def _matched_terms(
    store: QdrantHybrid, query: str, sparse: SparseVector, doc_ids: Sequence[str]
) -> dict[str, tuple[str, ...]]:
    if not doc_ids or not len(sparse):
        return {}
    labels = _term_labels(store, query, sparse)
    weights = dict(zip(sparse.indices, sparse.values, strict=True))
    records = store.client.retrieve(
        store.collection_name,
        ids=[doc_uuid(i) for i in doc_ids],
        with_payload=["doc_id"],
        with_vectors=[store.sparse_name],
    )
    matched: dict[str, tuple[str, ...]] = {}
    for record in records:
        vectors = record.vector if isinstance(record.vector, dict) else {}
        stored = vectors.get(store.sparse_name)
        if stored is None or isinstance(stored, list) or record.payload is None:
            continue
        share: dict[str, float] = {}
        for index, value in zip(stored.indices, stored.values, strict=True):
            if index in weights:
                term = labels.get(index, f"#{index}")
                share[term] = share.get(term, 0.0) + weights[index] * value
        ordered = sorted(share.items(), key=lambda item: (-item[1], item[0]))
        matched[str(record.payload["doc_id"])] = tuple(term for term, _ in ordered)
    return matched
