"""What the Qdrant and Milvus helpers share: embedding, batching, records and fusion.

A :class:`HybridStore` owns one collection with a named dense vector and (for sparse
models) a named sparse vector. It embeds each batch once (both kinds in one provider
request), upserts, and searches dense, sparse, or both fused, either by the database's
own fusion or client-side with :func:`~mm_embed.hybrid.fusion.fuse`. Backends implement
the few storage primitives at the bottom.

Records carry a payload: ``doc_id`` (the caller's id), ``kind`` (``"text"``,
``"image"`` or ``"box"``), ``page_content`` (the text, as ``langchain_qdrant`` reads it)
and ``metadata``; image and box records add ``image`` (the caller's image id),
``box_index`` (``-1`` for the whole image) and ``box`` (``[x, y, w, h]``).
"""

from __future__ import annotations

import math
import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Self, TypeAlias

import numpy as np
import numpy.typing as npt

from ..errors import InputError
from ..inputs import ImageSource
from ..providers.fgclip import FGClipClient
from ..providers.viking import VikingClient
from ..results import SparseVector
from .encoding import Encoded, FGClipEncoder, TextEncoder, VikingHybridEncoder
from .fusion import FUSION_METHODS, FusionMethod, fuse

__all__ = ["Hit", "HybridStore", "Record", "SearchMode", "StoreFusion", "doc_uuid"]

SearchMode: TypeAlias = Literal["hybrid", "dense", "sparse"]
#: :func:`fuse`'s methods, plus ``"weighted"`` (Milvus's own ``WeightedRanker``).
StoreFusion: TypeAlias = Literal["rrf", "relative_score", "dbsf", "weighted"]
Kind: TypeAlias = Literal["text", "image", "box"]
_UUID_NAMESPACE = uuid.UUID("6f1d3c1e-5b7a-4c84-9a43-1f0c6d0e9b2a")


def doc_uuid(doc_id: str) -> str:
    """The stable UUID a store uses for ``doc_id`` when it needs UUID keys (Qdrant)."""
    return str(uuid.uuid5(_UUID_NAMESPACE, doc_id))


@dataclass(frozen=True)
class Hit:
    """One search result: the caller's id, the score of the search that found it (a
    fused score for hybrid searches), and the stored payload."""

    id: str
    score: float
    text: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    kind: str = "text"
    image: str | None = None
    box_index: int | None = None
    box: list[float] | None = None


@dataclass
class Record:
    """One row to upsert."""

    id: str
    dense: npt.NDArray[np.float32]
    sparse: SparseVector | None
    payload: dict[str, Any]


def _hit(doc_id: str, score: float, payload: Mapping[str, Any]) -> Hit:
    box = payload.get("box")
    box_index = payload.get("box_index")
    return Hit(
        id=doc_id,
        score=float(score),
        text=payload.get("page_content"),
        metadata=dict(payload.get("metadata") or {}),
        kind=str(payload.get("kind", "text")),
        image=payload.get("image"),
        box_index=None if box_index is None else int(box_index),
        box=None if box is None else [float(x) for x in box],
    )


class HybridStore(ABC):
    """Shared logic of :class:`QdrantHybrid` and :class:`MilvusHybrid`."""

    client: Any
    collection_name: str
    encoder: TextEncoder
    batch_size: int
    _dimension: int | None
    #: Fusions only the database runs (not in :func:`fuse`).
    _server_only_fusions: tuple[str, ...] = ()
    #: The fusions the database runs; the one of them that takes no weights.
    _server_fusions: tuple[str, ...]
    _unweighted_fusion: str
    #: Why another fusion (``{fusion!r}``), or weights with the unweighted one, is refused.
    _no_fusion: str
    _no_weights: str

    @abstractmethod
    def __init__(
        self, client: Any, collection_name: str, encoder: TextEncoder, **kwargs: Any
    ) -> None: ...

    @classmethod
    def from_viking(
        cls,
        client: Any,
        collection_name: str,
        viking: VikingClient,
        model: str = "bge-m3",
        *,
        model_version: str | None = None,
        dimension: int | None = None,
        **kwargs: Any,
    ) -> Self:
        """A store over a :class:`~mm_embed.VikingClient` model (dense + sparse from one
        request per batch); ``kwargs`` go to the store's constructor."""
        encoder = VikingHybridEncoder(
            viking, model, model_version=model_version, dimension=dimension
        )
        return cls(client, collection_name, encoder, **kwargs)

    @classmethod
    def from_fgclip(
        cls, client: Any, collection_name: str, fgclip: FGClipClient, **kwargs: Any
    ) -> Self:
        """A store over an :class:`~mm_embed.FGClipClient` (texts, images, boxes)."""
        return cls(client, collection_name, FGClipEncoder(fgclip), **kwargs)

    def _init_common(
        self, client: Any, collection_name: str, encoder: TextEncoder, batch_size: int
    ) -> None:
        if not collection_name:
            raise InputError("collection_name must be a non-empty str", field="collection_name")
        if not isinstance(encoder, TextEncoder):
            raise InputError(
                "encoder must be a VikingHybridEncoder, an FGClipEncoder or another TextEncoder",
                field="encoder",
            )
        if not isinstance(batch_size, int) or batch_size < 1:
            raise InputError("batch_size must be an int >= 1", field="batch_size")
        self.client = client
        self.collection_name = collection_name
        self.encoder = encoder
        self.batch_size = batch_size
        self._dimension = encoder.dimension

    @property
    def has_sparse(self) -> bool:
        return self.encoder.has_sparse

    # ------------------------------------------------------------------ writing

    def add_texts(
        self,
        texts: Sequence[str],
        *,
        ids: Sequence[str] | None = None,
        metadatas: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> list[str]:
        """Embed (one provider request per batch for both vector kinds) and upsert texts.

        ``ids`` default to fresh UUID4 strings; an existing id is overwritten. Returns the ids.
        """
        if isinstance(texts, str) or not isinstance(texts, Sequence):
            raise InputError("texts must be a list of str", field="texts")
        ids = _check_ids(ids, len(texts))
        metas = _check_metadatas(metadatas, len(texts))
        for start in range(0, len(texts), self.batch_size):
            stop = start + self.batch_size
            batch = self.encoder.encode_documents(texts[start:stop])
            self._ensure_collection(int(batch.dense.shape[1]))
            self._upsert(
                [
                    Record(
                        id=ids[start + j],
                        dense=batch.dense[j],
                        sparse=batch.sparse[j] if batch.sparse is not None else None,
                        payload={
                            "doc_id": ids[start + j],
                            "kind": "text",
                            "page_content": texts[start + j],
                            "metadata": dict(metas[start + j] or {}),
                        },
                    )
                    for j in range(len(batch))
                ]
            )
        return ids

    def add_images(
        self,
        images: Sequence[ImageSource],
        *,
        ids: Sequence[str] | None = None,
        boxes: Sequence[Sequence[Sequence[float]] | None] | None = None,
        metadatas: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> list[str]:
        """FG-CLIP only: store each image's global vector and one vector per box.

        The image record's id is the image id; box ``j`` of image ``id`` is stored as
        ``f"{id}#box{j}"`` with payload ``image``, ``box_index`` and ``box``. Returns the
        image ids. Search them with :meth:`search_images`.
        """
        encoder = self.encoder
        if not isinstance(encoder, FGClipEncoder):
            raise InputError("add_images needs an FGClipEncoder store", field="encoder")
        if isinstance(images, (str, bytes)) or not isinstance(images, Sequence):
            raise InputError("images must be a list", field="images")
        ids = _check_ids(ids, len(images))
        metas = _check_metadatas(metadatas, len(images))
        if boxes is not None and len(boxes) != len(images):
            raise InputError(
                "boxes needs one entry per image", field="boxes", limit=f"{len(images)} entries"
            )
        for start in range(0, len(images), self.batch_size):
            stop = min(start + self.batch_size, len(images))
            part = list(images[start:stop])
            records: list[Record] = []
            whole = encoder.encode_images(part)
            self._ensure_collection(int(whole.embeddings.shape[1]))
            for j in range(len(part)):
                records.append(
                    self._image_record(
                        ids[start + j], whole.embeddings[j], metas[start + j], -1, None
                    )
                )
            part_boxes = list(boxes[start:stop]) if boxes is not None else []
            # Only the images that have boxes go to the box call: the others already
            # have their whole-image vector, and sending them again would pay twice.
            boxed_js = [j for j, b in enumerate(part_boxes) if b]
            if boxed_js:
                boxed = encoder.encode_images(
                    [part[j] for j in boxed_js], boxes=[part_boxes[j] for j in boxed_js]
                )
                assert boxed.box_indices is not None
                for row in range(len(boxed)):
                    j = boxed_js[int(boxed.input_indices[row])]
                    b = int(boxed.box_indices[row])
                    coords = [float(x) for x in part_boxes[j][b]]  # type: ignore[index]
                    records.append(
                        self._image_record(
                            ids[start + j], boxed.embeddings[row], metas[start + j], b, coords
                        )
                    )
            self._upsert(records)
        return ids

    @staticmethod
    def _image_record(
        image_id: str,
        vector: npt.NDArray[Any],
        metadata: Mapping[str, Any] | None,
        box_index: int,
        box: list[float] | None,
    ) -> Record:
        rid = image_id if box_index < 0 else f"{image_id}#box{box_index}"
        return Record(
            id=rid,
            dense=np.asarray(vector, dtype=np.float32),
            sparse=None,
            payload={
                "doc_id": rid,
                "kind": "image" if box_index < 0 else "box",
                "page_content": None,
                "metadata": dict(metadata or {}),
                "image": image_id,
                "box_index": box_index,
                "box": box,
            },
        )

    # ------------------------------------------------------------------ searching

    def search(
        self,
        query: str,
        *,
        top_k: int = 10,
        mode: SearchMode = "hybrid",
        fusion: StoreFusion = "rrf",
        k: float = 60,
        weights: Sequence[float] | None = None,
        client_side: bool = False,
        candidates: int | None = None,
    ) -> list[Hit]:
        """Search the texts: ``"dense"``, ``"sparse"`` or ``"hybrid"`` (both, fused).

        The query is embedded once (both kinds in one request), then searched as
        :meth:`search_vectors` does. Hybrid search takes ``candidates`` (default
        ``max(4 * top_k, 40)``) from each side and fuses them with ``fusion`` (``k`` and
        ``weights`` as in :func:`fuse`; ``weights`` is ``[dense, sparse]``), in the
        database when ``client_side`` is false and the database has that fusion, else
        with :func:`fuse`. Each backend documents which fusions it runs itself and how
        they differ from :func:`fuse`.
        """
        self._check_search(top_k, mode, fusion, k, client_side)
        if top_k == 0 or not self._exists():
            return []
        dense, sparse = self._query_vectors(self.encoder.encode_queries([query]))
        return self._search_checked(
            dense, sparse, top_k, mode, fusion, k, weights, client_side, candidates, "text"
        )

    def search_vectors(
        self,
        dense: npt.NDArray[np.float32],
        sparse: SparseVector | None = None,
        *,
        top_k: int = 10,
        mode: SearchMode = "hybrid",
        fusion: StoreFusion = "rrf",
        k: float = 60,
        weights: Sequence[float] | None = None,
        client_side: bool = False,
        candidates: int | None = None,
        kind: Kind = "text",
    ) -> list[Hit]:
        """Search with one query's vectors already embedded (so several rankings of one
        query cost one provider request). ``kind`` picks the records a dense search
        ranks: ``"text"``, ``"image"`` or ``"box"`` (FG-CLIP stores); sparse and hybrid
        search rank texts. Other arguments as in :meth:`search`."""
        self._check_search(top_k, mode, fusion, k, client_side)
        if top_k == 0 or not self._exists():
            return []
        return self._search_checked(
            dense, sparse, top_k, mode, fusion, k, weights, client_side, candidates, kind
        )

    def _search_checked(
        self,
        dense: npt.NDArray[np.float32],
        sparse: SparseVector | None,
        top_k: int,
        mode: SearchMode,
        fusion: StoreFusion,
        k: float,
        weights: Sequence[float] | None,
        client_side: bool,
        candidates: int | None,
        kind: Kind,
    ) -> list[Hit]:
        """:meth:`search_vectors` once its arguments are checked and the collection is
        known to exist (:meth:`search` checks once, not twice)."""
        if mode == "dense":
            return self._search_dense(np.asarray(dense, dtype=np.float32), top_k, kind)
        if sparse is None:
            raise InputError(f"mode {mode!r} needs the query's sparse vector", field="sparse")
        if mode == "sparse":
            return self._search_sparse(sparse, top_k)
        limit = candidates if candidates is not None else max(4 * top_k, 40)
        _check_top_k(limit, "candidates")
        if weights is not None and len(weights) != 2:
            raise InputError(
                "weights must be [dense_weight, sparse_weight]", field="weights", limit="2 entries"
            )
        if not client_side:
            fused = FusedQuery(dense, sparse, top_k, limit, fusion, k, weights)
            self._check_server_fusion(fused)
            return self._search_fused(fused)
        hits_d = self._search_dense(dense, limit, "text")
        hits_s = self._search_sparse(sparse, limit)
        return _fuse_hits([hits_d, hits_s], fusion, k, weights, top_k)  # type: ignore[arg-type]

    def _check_search(
        self, top_k: int, mode: str, fusion: str, k: float, client_side: bool
    ) -> None:
        _check_top_k(top_k)
        if mode not in ("hybrid", "dense", "sparse"):
            raise InputError(
                f"unknown search mode {mode!r}", field="mode", limit="hybrid, dense, sparse"
            )
        allowed = (*FUSION_METHODS, *self._server_only_fusions)
        if fusion not in allowed:
            raise InputError(
                f"unknown fusion method {fusion!r}", field="fusion", limit=", ".join(allowed)
            )
        if client_side and fusion in self._server_only_fusions:
            raise InputError(
                f"{fusion!r} is the database's own fusion: use client_side=False, or "
                f"one of {', '.join(FUSION_METHODS)} client-side",
                field="fusion",
            )
        if mode != "dense" and not self.has_sparse:
            raise InputError(
                f"{self.encoder.name} has no sparse vectors: use mode='dense'", field="mode"
            )
        if isinstance(k, bool) or not isinstance(k, (int, float)) or not 0 <= k < math.inf:
            raise InputError(f"k must be a finite number >= 0, got {k!r}", field="k")

    def search_images(
        self,
        query: str,
        *,
        top_k: int = 10,
        regions: Literal["images", "boxes", "both"] = "images",
        fusion: FusionMethod = "rrf",
        k: float = 60,
        weights: Sequence[float] | None = None,
    ) -> list[Hit]:
        """FG-CLIP only: find images for a text.

        ``"images"`` compares the text's global feature with whole-image vectors;
        ``"boxes"`` compares its local feature (``text_box``) with box vectors, one hit
        per box; ``"both"`` fuses the two rankings by image (an image counts once, at
        its best box) with :func:`fuse` and returns one hit per image.
        """
        encoder = self.encoder
        if not isinstance(encoder, FGClipEncoder):
            raise InputError("search_images needs an FGClipEncoder store", field="encoder")
        _check_top_k(top_k)
        if regions not in ("images", "boxes", "both"):
            raise InputError(
                f"unknown regions {regions!r}", field="regions", limit="images, boxes, both"
            )
        if top_k == 0 or not self._exists():
            return []
        image_hits: list[Hit] = []
        box_hits: list[Hit] = []
        depth = top_k if regions != "both" else max(4 * top_k, 40)
        if regions in ("images", "both"):
            vec = encoder.encode_queries([query]).dense[0]
            image_hits = self._search_dense(vec, depth, "image")
        if regions in ("boxes", "both"):
            vec = encoder.encode_queries([query], box_queries=True).dense[0]
            box_hits = self._search_dense(vec, depth, "box")
        if regions == "images":
            return image_hits
        if regions == "boxes":
            return box_hits
        by_image = {h.image or h.id: h for h in image_hits}
        for h in box_hits:
            by_image.setdefault(h.image or h.id, h)
        fused = fuse(
            [
                [(h.image or h.id, h.score) for h in image_hits],
                [(h.image or h.id, h.score) for h in box_hits],
            ],
            method=fusion,
            k=k,
            weights=weights,
            top_k=top_k,
        )
        return [_replace_score(by_image[i], s) for i, s in fused]

    def _query_vectors(
        self, encoded: Encoded
    ) -> tuple[npt.NDArray[np.float32], SparseVector | None]:
        return encoded.dense[0], encoded.sparse[0] if encoded.sparse else None

    # ------------------------------------------------------------------ backend

    @abstractmethod
    def create_collection(self, dimension: int | None = None, *, recreate: bool = False) -> None:
        """Create the collection (dense size from ``dimension`` or the encoder)."""

    def _ensure_collection(self, dimension: int) -> None:
        if self._dimension is not None and self._dimension != dimension:
            raise InputError(
                f"the encoder returned {dimension}-d vectors, the collection holds "
                f"{self._dimension}-d ones",
                field="dimension",
            )
        self._dimension = dimension
        if not self._exists():
            self.create_collection(dimension)

    @abstractmethod
    def _exists(self) -> bool: ...

    @abstractmethod
    def _upsert(self, records: list[Record]) -> None: ...

    @abstractmethod
    def _search_dense(
        self, vector: npt.NDArray[np.float32], limit: int, kind: Kind
    ) -> list[Hit]: ...

    def _search_sparse(self, vector: SparseVector, limit: int) -> list[Hit]:
        """The ``limit`` best texts for a sparse vector (none for an empty one)."""
        return self._search_sparse_terms(vector, limit) if len(vector) else []

    @abstractmethod
    def _search_sparse_terms(self, vector: SparseVector, limit: int) -> list[Hit]:
        """:meth:`_search_sparse` of a vector with at least one term."""

    def _check_server_fusion(self, query: FusedQuery) -> None:
        """Raise :class:`InputError` when the database cannot run ``query``'s fusion."""
        if query.fusion not in self._server_fusions:
            raise InputError(
                self._no_fusion.format(fusion=query.fusion),
                field="fusion",
                limit=", ".join(self._server_fusions),
            )
        if query.fusion == self._unweighted_fusion and query.weights is not None:
            raise InputError(self._no_weights, field="weights")

    @abstractmethod
    def _search_fused(self, query: FusedQuery) -> list[Hit]:
        """Both rankings of ``query``, fused in the database."""


@dataclass(frozen=True)
class FusedQuery:
    """A hybrid search fused in the database: ``candidates`` from each side, ``top_k``
    fused hits, ``fusion`` with ``k`` and ``weights`` (``[dense, sparse]``)."""

    dense: npt.NDArray[np.float32]
    sparse: SparseVector
    top_k: int
    candidates: int
    fusion: str
    k: float
    weights: Sequence[float] | None

    def weights_or_ones(self) -> list[float]:
        return [1.0, 1.0] if self.weights is None else [float(w) for w in self.weights]


def _replace_score(hit: Hit, score: float) -> Hit:
    return Hit(
        id=hit.id,
        score=score,
        text=hit.text,
        metadata=hit.metadata,
        kind=hit.kind,
        image=hit.image,
        box_index=hit.box_index,
        box=hit.box,
    )


def _fuse_hits(
    lists: Sequence[Sequence[Hit]],
    method: FusionMethod,
    k: float,
    weights: Sequence[float] | None,
    top_k: int,
) -> list[Hit]:
    by_id = {h.id: h for hits in lists for h in hits}
    fused = fuse(
        [[(h.id, h.score) for h in hits] for hits in lists],
        method=method,
        k=k,
        weights=weights,
        top_k=top_k,
    )
    return [_replace_score(by_id[i], s) for i, s in fused]


def _check_top_k(value: int, name: str = "top_k") -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InputError(f"{name} must be an int >= 0, got {value!r}", field=name)


def _check_ids(ids: Sequence[str] | None, n: int) -> list[str]:
    if ids is None:
        return [str(uuid.uuid4()) for _ in range(n)]
    if isinstance(ids, str) or len(ids) != n:
        raise InputError("ids needs one str per input", field="ids", limit=f"{n} entries")
    for i, doc_id in enumerate(ids):
        if not isinstance(doc_id, str) or not doc_id:
            raise InputError("ids must be non-empty str", field="ids", index=i)
    if len(set(ids)) != n:
        seen: set[str] = set()
        for i, doc_id in enumerate(ids):
            if doc_id in seen:
                raise InputError(f"duplicate id {doc_id!r}", field="ids", index=i)
            seen.add(doc_id)
    return list(ids)


def _check_metadatas(
    metadatas: Sequence[Mapping[str, Any] | None] | None, n: int
) -> list[Mapping[str, Any] | None]:
    if metadatas is None:
        return [None] * n
    if len(metadatas) != n:
        raise InputError(
            "metadatas needs one entry per input", field="metadatas", limit=f"{n} entries"
        )
    for i, meta in enumerate(metadatas):
        if meta is not None and not isinstance(meta, Mapping):
            raise InputError("each metadata must be a mapping or None", field="metadatas", index=i)
    return list(metadatas)
