"""Qdrant wiring: one collection with a named dense and a named sparse vector.

The same code runs on ``QdrantClient(":memory:")``, ``QdrantClient(path=...)`` (local
mode, in-process) and ``QdrantClient(url=...)`` (a server or cluster): only the client
you pass differs.

Server-side fusion (``client_side=False``):

* ``"rrf"`` becomes ``RrfQuery(Rrf(k=k + 1, weights=...))``. Qdrant scores a document
  ``1 / (k_q + position)`` with positions from 0, so ``k_q = k + 1`` gives exactly
  :func:`~mm_embed.hybrid.fusion.fuse`'s ``1 / (k + rank)`` (Qdrant's own default,
  ``k_q = 2``, is far steeper than the usual 60). Qdrant's *weighted* RRF is
  ``1 / (rank / w + k_q - 1)``, not ``w / (k + rank)``: weighted rankings can differ
  from client-side ones, which is why weights are only sent when you ask for them.
* ``"dbsf"`` becomes ``FusionQuery(Fusion.DBSF)``; Qdrant's DBSF takes no weights, and
  (in qdrant-client's local mode, 1.20) does not clip scores beyond mean +/- 3 std, so
  a far outlier scores above what :func:`fuse` gives it.
* ``"relative_score"`` has no Qdrant equivalent: use ``client_side=True``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from .._extras import missing_extra
from ..errors import InputError
from ..results import SparseVector
from .encoding import TextEncoder
from .store import FusedQuery, Hit, HybridStore, Kind, Record, _hit, doc_uuid

try:
    from qdrant_client import QdrantClient, models
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise missing_extra(__name__, "qdrant-client", "qdrant") from exc

__all__ = ["QdrantHybrid", "create_hybrid_collection"]

Distance = Literal["cosine", "dot", "euclid"]
_DISTANCES = {
    "cosine": models.Distance.COSINE,
    "dot": models.Distance.DOT,
    "euclid": models.Distance.EUCLID,
}


class QdrantHybrid(HybridStore):
    """A hybrid dense + sparse collection in Qdrant.

    Args:
        client: a ``QdrantClient`` (memory, local path or server URL).
        collection_name: the collection to use (created on the first add when missing).
        encoder: :class:`VikingHybridEncoder` (dense + sparse) or :class:`FGClipEncoder`
            (dense texts, images and boxes).
        dense_name / sparse_name: the named vectors (``langchain_qdrant`` reads them too).
        distance: the dense distance; both providers' vectors are compared by cosine.
        batch_size: texts embedded (one provider call) and upserted per step.
    """

    client: QdrantClient

    def __init__(
        self,
        client: QdrantClient,
        collection_name: str,
        encoder: TextEncoder,
        *,
        dense_name: str = "dense",
        sparse_name: str = "sparse",
        distance: Distance = "cosine",
        batch_size: int = 64,
    ) -> None:
        if distance not in _DISTANCES:
            raise InputError(
                f"unknown distance {distance!r}", field="distance", limit=", ".join(_DISTANCES)
            )
        self._init_common(client, collection_name, encoder, batch_size)
        self.dense_name = dense_name
        self.sparse_name = sparse_name
        self.distance = distance

    def __repr__(self) -> str:
        return (
            f"QdrantHybrid(collection_name={self.collection_name!r}, encoder={self.encoder!r}, "
            f"dense_name={self.dense_name!r}, sparse_name={self.sparse_name!r})"
        )

    # ------------------------------------------------------------------ collection

    def create_collection(self, dimension: int | None = None, *, recreate: bool = False) -> None:
        """Create the collection (see :func:`create_hybrid_collection`); an existing one
        is checked, not changed, unless ``recreate``.

        ``dimension`` defaults to the encoder's (FG-CLIP's is only known after the first
        embedding: let :meth:`add_texts` / :meth:`add_images` create it).
        """
        size = dimension or self._dimension
        if size is None:
            raise InputError(
                "the dense dimension is not known yet: pass dimension= or add data first",
                field="dimension",
            )
        create_hybrid_collection(
            self.client,
            self.collection_name,
            dimension=size,
            sparse=self.has_sparse,
            dense_name=self.dense_name,
            sparse_name=self.sparse_name,
            distance=self.distance,
            recreate=recreate,
        )
        self._dimension = size

    def _exists(self) -> bool:
        return bool(self.client.collection_exists(self.collection_name))

    def count(self) -> int:
        """How many points the collection holds (texts, images and boxes)."""
        if not self._exists():
            return 0
        return int(self.client.count(self.collection_name, exact=True).count)

    # ------------------------------------------------------------------ storage

    def _upsert(self, records: list[Record]) -> None:
        points = []
        for r in records:
            vector: dict[str, Any] = {self.dense_name: r.dense.astype(float).tolist()}
            if r.sparse is not None:
                vector[self.sparse_name] = _sparse(r.sparse)
            points.append(models.PointStruct(id=doc_uuid(r.id), vector=vector, payload=r.payload))
        if points:
            self.client.upsert(self.collection_name, points=points, wait=True)

    def _hits(self, points: Sequence[Any]) -> list[Hit]:
        return [_hit(str(p.payload["doc_id"]), p.score, p.payload) for p in points]

    def _kind_filter(self, kind: Kind) -> models.Filter:
        return models.Filter(
            must=[models.FieldCondition(key="kind", match=models.MatchValue(value=kind))]
        )

    def _search_dense(self, vector: npt.NDArray[np.float32], limit: int, kind: Kind) -> list[Hit]:
        response = self.client.query_points(
            self.collection_name,
            query=vector.astype(float).tolist(),
            using=self.dense_name,
            query_filter=self._kind_filter(kind),
            limit=limit,
            with_payload=True,
        )
        return self._hits(response.points)

    def _search_sparse_terms(self, vector: SparseVector, limit: int) -> list[Hit]:
        response = self.client.query_points(
            self.collection_name,
            query=_sparse(vector),
            using=self.sparse_name,
            limit=limit,
            with_payload=True,
        )
        return self._hits(response.points)

    _server_fusions, _unweighted_fusion = ("rrf", "dbsf"), "dbsf"
    _no_fusion = "Qdrant has no relative-score fusion: pass client_side=True"
    _no_weights = "Qdrant's DBSF takes no weights: drop weights or pass client_side=True"

    def _search_fused(self, fused: FusedQuery) -> list[Hit]:
        prefetch = [
            models.Prefetch(
                query=fused.dense.astype(float).tolist(),
                using=self.dense_name,
                filter=self._kind_filter("text"),
                limit=fused.candidates,
            )
        ]
        if len(fused.sparse):
            prefetch.append(
                models.Prefetch(
                    query=_sparse(fused.sparse), using=self.sparse_name, limit=fused.candidates
                )
            )
        query: Any
        if fused.fusion == "rrf":
            # Qdrant counts positions from 0: its k + position equals our k + rank - 1.
            weights = None if fused.weights is None else fused.weights_or_ones()[: len(prefetch)]
            query = models.RrfQuery(rrf=models.Rrf(k=_qdrant_k(fused.k), weights=weights))
        else:
            query = models.FusionQuery(fusion=models.Fusion.DBSF)
        response = self.client.query_points(
            self.collection_name,
            prefetch=prefetch,
            query=query,
            limit=fused.top_k,
            with_payload=True,
        )
        return self._hits(response.points)


def create_hybrid_collection(
    client: QdrantClient,
    collection_name: str,
    *,
    dimension: int,
    sparse: bool = True,
    dense_name: str = "dense",
    sparse_name: str = "sparse",
    distance: Distance = "cosine",
    recreate: bool = False,
) -> bool:
    """Create a collection with a named dense vector of ``dimension`` and, with
    ``sparse``, a named sparse vector, plus a keyword index on the ``kind`` payload.

    An existing collection is kept when its dense vector has that size and its sparse
    vector exists (else :class:`~mm_embed.errors.InputError`); ``recreate`` drops it
    first. Returns whether a collection was created.
    """
    if distance not in _DISTANCES:
        raise InputError(
            f"unknown distance {distance!r}", field="distance", limit=", ".join(_DISTANCES)
        )
    if client.collection_exists(collection_name):
        if not recreate:
            _check_existing(client, collection_name, dimension, dense_name, sparse and sparse_name)
            return False
        client.delete_collection(collection_name)
    client.create_collection(
        collection_name,
        vectors_config={
            dense_name: models.VectorParams(size=dimension, distance=_DISTANCES[distance])
        },
        sparse_vectors_config=(
            {sparse_name: models.SparseVectorParams(index=models.SparseIndexParams())}
            if sparse
            else None
        ),
    )
    with warnings.catch_warnings():
        # Local mode warns that payload indexes do nothing there; servers need them.
        warnings.filterwarnings("ignore", message="Payload indexes have no effect")
        client.create_payload_index(
            collection_name, "kind", field_schema=models.PayloadSchemaType.KEYWORD
        )
    return True


def _check_existing(
    client: QdrantClient, name: str, size: int, dense_name: str, sparse_name: str | bool
) -> None:
    params = client.get_collection(name).config.params
    vectors = params.vectors if isinstance(params.vectors, dict) else {}
    dense = vectors.get(dense_name)
    if dense is None or dense.size != size:
        found = "missing" if dense is None else f"{dense.size}-d"
        raise InputError(
            f"collection {name!r} has dense vector {dense_name!r} {found}, the model "
            f"needs {size}-d (pass recreate=True to rebuild it)",
            field="collection_name",
        )
    if sparse_name and sparse_name not in (params.sparse_vectors or {}):
        raise InputError(
            f"collection {name!r} has no sparse vector {sparse_name!r}",
            field="collection_name",
        )


def _qdrant_k(k: float) -> int:
    if k != int(k):
        raise InputError(
            "Qdrant's RRF takes an integer k: pass an integer or client_side=True", field="k"
        )
    return int(k) + 1


def _sparse(vector: SparseVector) -> models.SparseVector:
    return models.SparseVector(indices=list(vector.indices), values=list(vector.values))
