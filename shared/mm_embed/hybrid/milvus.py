"""Milvus wiring: one collection with a dense ``FLOAT_VECTOR`` and a ``SPARSE_FLOAT_VECTOR``.

``MilvusClient("file.db")`` runs milvus-lite, the Milvus engine in-process; the same
code targets a Milvus server or cluster with ``MilvusClient(uri="http://host:19530")``.

Schema: ``id`` (VARCHAR primary key, the caller's id), ``kind`` (VARCHAR), the dense
field (``AUTOINDEX``, cosine), the sparse field for sparse models
(``SPARSE_INVERTED_INDEX`` with inner product, the one pairing milvus-lite accepts) and
``payload`` (JSON: text, metadata, image and box).

Server-side fusion (``client_side=False``) uses Milvus's rankers:

* ``"rrf"``: ``RRFRanker(k)``, the same ``1 / (k + rank)`` as
  :func:`~mm_embed.hybrid.fusion.fuse` (integer ``k``, no weights).
* ``"weighted"``: ``WeightedRanker(w_dense, w_sparse)`` with Milvus's score
  normalisation (cosine ``(1 + s) / 2``, inner product ``0.5 + atan(s) / pi``), which is
  neither relative-score nor DBSF; ``weights`` default to ``[1, 1]``.
* ``"relative_score"`` / ``"dbsf"``: not in Milvus, use ``client_side=True``.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from .._extras import missing_extra
from ..errors import InputError
from ..results import SparseVector
from .encoding import TextEncoder
from .store import FusedQuery, Hit, HybridStore, Kind, Record, _hit

try:
    from pymilvus import (
        AnnSearchRequest,
        DataType,
        MilvusClient,
        RRFRanker,
        WeightedRanker,
    )
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise missing_extra(__name__, "pymilvus (and milvus-lite for local files)", "milvus") from exc

__all__ = ["MilvusHybrid"]

# milvus-lite logs a harmless "AllocTimestamp" traceback through grpc on index creation.
logging.getLogger("grpc._server").setLevel(logging.CRITICAL)

_ID_MAX = 512
_PAYLOAD_MAX = 65_536


class MilvusHybrid(HybridStore):
    """A hybrid dense + sparse collection in Milvus (milvus-lite or a cluster).

    Args:
        client: a ``pymilvus.MilvusClient``.
        collection_name: created on the first add when missing.
        encoder: :class:`VikingHybridEncoder` or :class:`FGClipEncoder`.
        dense_field / sparse_field: the vector field names.
        batch_size: texts embedded (one provider call) and inserted per step.
    """

    client: MilvusClient

    def __init__(
        self,
        client: MilvusClient,
        collection_name: str,
        encoder: TextEncoder,
        *,
        dense_field: str = "dense",
        sparse_field: str = "sparse",
        batch_size: int = 64,
    ) -> None:
        self._init_common(client, collection_name, encoder, batch_size)
        self.dense_field = dense_field
        self.sparse_field = sparse_field
        self._loaded = False

    def __repr__(self) -> str:
        return f"MilvusHybrid(collection_name={self.collection_name!r}, encoder={self.encoder!r})"

    # ------------------------------------------------------------------ collection

    def create_collection(self, dimension: int | None = None, *, recreate: bool = False) -> None:
        """Create (or, with ``recreate``, drop and create) the collection and its indexes."""
        size = dimension or self._dimension
        if size is None:
            raise InputError(
                "the dense dimension is not known yet: pass dimension= or add data first",
                field="dimension",
            )
        if self.client.has_collection(self.collection_name):
            if not recreate:
                self._dimension = size
                self._load()
                return
            self.client.drop_collection(self.collection_name)
        schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=_ID_MAX)
        schema.add_field("kind", DataType.VARCHAR, max_length=16)
        schema.add_field(self.dense_field, DataType.FLOAT_VECTOR, dim=size)
        if self.has_sparse:
            schema.add_field(self.sparse_field, DataType.SPARSE_FLOAT_VECTOR)
        schema.add_field("payload", DataType.JSON)
        index = self.client.prepare_index_params()
        index.add_index(self.dense_field, index_type="AUTOINDEX", metric_type="COSINE")
        if self.has_sparse:
            index.add_index(self.sparse_field, index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
        self.client.create_collection(self.collection_name, schema=schema, index_params=index)
        self._dimension = size
        self._load()

    def _load(self) -> None:
        if not self._loaded:
            # A collection reopened from disk must be loaded before it can be searched.
            self.client.load_collection(self.collection_name)
            self._loaded = True

    def _exists(self) -> bool:
        exists = bool(self.client.has_collection(self.collection_name))
        if exists:
            self._load()
        return exists

    def count(self) -> int:
        """How many rows the collection holds (texts, images and boxes)."""
        if not self._exists():
            return 0
        rows = self.client.query(self.collection_name, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    # ------------------------------------------------------------------ storage

    def _upsert(self, records: list[Record]) -> None:
        rows = []
        for r in records:
            if len(r.id.encode("utf-8")) > _ID_MAX:
                raise InputError(
                    f"id {r.id[:40]!r}... is too long for Milvus",
                    field="ids",
                    limit=f"{_ID_MAX} bytes",
                )
            size = len(orjson.dumps(r.payload))
            if size > _PAYLOAD_MAX:
                raise InputError(
                    f"text and metadata of {r.id!r} take {size} bytes as JSON",
                    field="texts",
                    limit=f"{_PAYLOAD_MAX} bytes",
                )
            row: dict[str, Any] = {
                "id": r.id,
                "kind": r.payload["kind"],
                self.dense_field: r.dense.astype(float).tolist(),
                "payload": r.payload,
            }
            if self.has_sparse:
                row[self.sparse_field] = r.sparse.to_dict() if r.sparse is not None else {}
            rows.append(row)
        if rows:
            self.client.upsert(self.collection_name, rows)

    def _hits(self, result: Any) -> list[Hit]:
        hits = []
        for item in result[0] if result else []:
            payload = item["entity"]["payload"]
            hits.append(_hit(str(item["id"]), float(item["distance"]), payload))
        return hits

    def _search_dense(self, vector: npt.NDArray[np.float32], limit: int, kind: Kind) -> list[Hit]:
        result = self.client.search(
            self.collection_name,
            data=[vector.astype(float).tolist()],
            anns_field=self.dense_field,
            filter=f'kind == "{kind}"',
            limit=limit,
            output_fields=["payload"],
            search_params={"metric_type": "COSINE"},
        )
        return self._hits(result)

    def _search_sparse_terms(self, vector: SparseVector, limit: int) -> list[Hit]:
        result = self.client.search(
            self.collection_name,
            data=[vector.to_dict()],
            anns_field=self.sparse_field,
            limit=limit,
            output_fields=["payload"],
            search_params={"metric_type": "IP"},
        )
        return self._hits(result)

    _server_only_fusions = ("weighted",)
    _server_fusions, _unweighted_fusion = ("rrf", "weighted"), "rrf"
    _no_fusion = (
        "Milvus has no {fusion!r} ranker: pass client_side=True, or fusion='rrf' / 'weighted'"
    )
    _no_weights = "Milvus's RRFRanker takes no weights: use fusion='weighted' or client_side=True"

    def _search_fused(self, fused: FusedQuery) -> list[Hit]:
        requests = [
            AnnSearchRequest(
                data=[fused.dense.astype(float).tolist()],
                anns_field=self.dense_field,
                param={"metric_type": "COSINE"},
                limit=fused.candidates,
                expr='kind == "text"',
            )
        ]
        if len(fused.sparse):
            requests.append(
                AnnSearchRequest(
                    data=[fused.sparse.to_dict()],
                    anns_field=self.sparse_field,
                    param={"metric_type": "IP"},
                    limit=fused.candidates,
                )
            )
        ranker: Any
        if fused.fusion == "weighted":
            ranker = WeightedRanker(*fused.weights_or_ones()[: len(requests)])
        else:
            if fused.k != int(fused.k):
                raise InputError(
                    "Milvus's RRFRanker takes an integer k: pass one or client_side=True",
                    field="k",
                )
            ranker = RRFRanker(int(fused.k))
        result = self.client.hybrid_search(
            self.collection_name,
            requests,
            ranker,
            limit=fused.top_k,
            output_fields=["payload"],
        )
        return self._hits(result)
