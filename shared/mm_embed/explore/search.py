"""What the explorer page asks of the store: a text query over every collection, and an
image query over the collections that hold pictures."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import InputError
from ..hybrid import FGClipEncoder, Hit
from ..hybrid.qdrant import QdrantHybrid
from .collection_info import CollectionInfo
from .html import ImageHitView, image_view_from_uri
from .rankings import TextRankings, explain_text_query, search_image_vector

__all__ = [
    "MAX_QUERY_CHARS",
    "Collection",
    "Explorer",
    "ImageResults",
    "TextResults",
    "image_hit_view",
]

#: Longer text queries are refused before anything is sent.
MAX_QUERY_CHARS = 2000


@dataclass(frozen=True)
class Collection:
    """A collection the explorer searches: its record, its store and the record kinds
    (``text``, ``image``, ``box``) it holds."""

    name: str
    info: CollectionInfo
    store: QdrantHybrid
    kinds: frozenset[str]


@dataclass
class TextResults:
    """A text query's results: per text collection its rankings; picture and box hits
    over every FG-CLIP collection, best first."""

    query: str
    rankings: list[tuple[Collection, TextRankings]] = field(default_factory=list)
    box_hits: list[ImageHitView] = field(default_factory=list)
    image_hits: list[ImageHitView] = field(default_factory=list)


@dataclass
class ImageResults:
    """An image query's results: the nearest pictures, best first."""

    hits: list[ImageHitView] = field(default_factory=list)


def image_hit_view(hit: Hit) -> ImageHitView:
    """An image card's view of a stored image or box hit (thumbnail from the record's
    ``metadata.thumbnail``, label from ``metadata.box_labels``)."""
    meta = hit.metadata
    labels = meta.get("box_labels")
    label = ""
    if isinstance(labels, list) and hit.box_index is not None and 0 <= hit.box_index < len(labels):
        label = str(labels[hit.box_index])
    box = hit.box if hit.box_index is not None and hit.box_index >= 0 else None
    return ImageHitView(
        hit_id=hit.id,
        image_id=hit.image or hit.id,
        score=hit.score,
        view=image_view_from_uri(meta.get("thumbnail")),
        caption=str(meta.get("caption") or ""),
        box_index=hit.box_index if box is not None else None,
        box=box,
        box_label=label,
    )


def _best_first(hits: list[Hit], top_k: int) -> list[ImageHitView]:
    ordered = sorted(hits, key=lambda h: -h.score)[:top_k]
    return [image_hit_view(h) for h in ordered]


class Explorer:
    """Searches a set of collections; safe to call from several threads (one search
    runs at a time: Qdrant's local mode is not thread-safe)."""

    def __init__(self, collections: Sequence[Collection], *, top_k: int = 10) -> None:
        if not collections:
            raise InputError("the explorer needs at least one collection", field="collections")
        self.collections = list(collections)
        self.top_k = top_k
        self._lock = threading.Lock()

    def _with(self, kind: str) -> list[Collection]:
        return [c for c in self.collections if kind in c.kinds]

    @property
    def searches_images(self) -> bool:
        """Whether some collection holds whole pictures (so an image query can run)."""
        return bool(self._with("image"))

    def search_text(self, query: str) -> TextResults:
        """Rank every collection's texts (dense, sparse, fused) and find pictures and
        boxes for ``query`` in the FG-CLIP collections."""
        query = query.strip()
        if not query:
            raise InputError("the query is empty", field="q")
        if len(query) > MAX_QUERY_CHARS:
            raise InputError("the query is too long", field="q", limit=f"{MAX_QUERY_CHARS} chars")
        results = TextResults(query)
        boxes: list[Hit] = []
        images: list[Hit] = []
        with self._lock:
            for c in self._with("text"):
                results.rankings.append((c, explain_text_query(c.store, query, top_k=self.top_k)))
            for c in self._with("box"):
                boxes += c.store.search_images(query, top_k=self.top_k, regions="boxes")
            for c in self._with("image"):
                images += c.store.search_images(query, top_k=self.top_k, regions="images")
        results.box_hits = _best_first(boxes, self.top_k)
        results.image_hits = _best_first(images, self.top_k)
        return results

    def search_image(self, image: bytes) -> ImageResults:
        """The pictures nearest to ``image`` (encoded bytes) by FG-CLIP image vectors."""
        collections = self._with("image")
        if not collections:
            raise InputError("no collection holds pictures to compare with", field="image")
        found: list[Hit] = []
        with self._lock:
            for c in collections:
                encoder: Any = c.store.encoder
                assert isinstance(encoder, FGClipEncoder)
                vector = encoder.encode_images([image]).embeddings[0]
                found += search_image_vector(c.store, vector, top_k=self.top_k)
        return ImageResults(_best_first(found, self.top_k))
