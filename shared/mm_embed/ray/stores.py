"""Embedded rows into the project's hybrid stores: a Qdrant server or cluster, a Milvus
cluster (or their embedded modes), with the collection layout
:class:`~mm_embed.hybrid.QdrantHybrid` and :class:`~mm_embed.hybrid.MilvusHybrid` write
and search.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .. import SparseVector
from ..errors import InputError
from ._internals import HybridStore, Record, image_record, store_records

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["upsert_rows"]


def upsert_rows(
    store: HybridStore,
    rows: pa.Table,
    *,
    kind: Literal["text", "image"] = "text",
    texts: Sequence[str | None] | None = None,
    metadatas: Sequence[Mapping[str, Any] | None] | None = None,
) -> int:
    """Upsert output rows (``id``, ``dense``, and ``sparse_indices`` / ``sparse_values``
    or ``box`` when present) of ``mm-embed embed`` or :func:`~mm_embed.ray.embed_dataset`
    into ``store``, creating its collection on first use; returns the rows written.

    ``kind`` says what the rows embedded: ``"text"`` (searched by
    :meth:`~mm_embed.hybrid.HybridStore.search`; ``texts`` become each hit's text) or
    ``"image"`` (FG-CLIP; searched by ``search_images``; a row of box ``j`` is stored
    as ``"<id>#box<j>"``, as ``add_images`` stores it). ``metadatas`` go with each row.
    Upserting the same id again replaces it, so a batch written twice is written once.
    """
    n = int(rows.num_rows)
    for name, given in (("texts", texts), ("metadatas", metadatas)):
        if given is not None and len(given) != n:
            raise InputError(f"{name} needs one entry per row", field=name, limit=f"{n} entries")
    if n == 0:
        return 0
    ids = rows.column("id").to_pylist()
    dense = rows.column("dense").combine_chunks()
    vectors = dense.values.to_numpy(zero_copy_only=False).reshape(n, -1).astype(np.float32)
    sparse = _sparse(rows) if store.has_sparse else None
    boxes = rows.column("box").to_pylist() if "box" in rows.column_names else [-1] * n
    records = []
    for i in range(n):
        meta = dict(metadatas[i] or {}) if metadatas is not None else {}
        if kind == "image":
            records.append(image_record(ids[i], vectors[i], meta, int(boxes[i]), None))
            continue
        payload = {
            "doc_id": ids[i],
            "kind": "text",
            "page_content": texts[i] if texts is not None else None,
            "metadata": meta,
        }
        records.append(Record(ids[i], vectors[i], sparse[i] if sparse else None, payload))
    store_records(store, records, int(vectors.shape[1]))
    return n


def _sparse(rows: pa.Table) -> list[SparseVector]:
    if "sparse_indices" not in rows.column_names:
        raise InputError(
            "the store keeps sparse vectors and the rows have none: embed with sparse=True "
            "(--sparse), or use a dense-only store",
            field="rows",
        )
    indices = rows.column("sparse_indices").combine_chunks()
    values = rows.column("sparse_values").combine_chunks()
    offsets = indices.offsets.to_numpy()
    flat_i = indices.values.to_numpy(zero_copy_only=False)
    flat_v = values.values.to_numpy(zero_copy_only=False)
    return [_sparse_vector(flat_i[lo:hi], flat_v[lo:hi]) for lo, hi in itertools.pairwise(offsets)]


def _sparse_vector(indices: Any, values: Any) -> SparseVector:
    """A :class:`SparseVector` of stored indices and values. The output keeps those, not
    the provider's tokens, so ``weights`` is empty; stores read only the indices."""
    vector = object.__new__(SparseVector)
    object.__setattr__(vector, "weights", {})
    object.__setattr__(vector, "indices", tuple(int(i) for i in indices))
    object.__setattr__(vector, "values", tuple(float(v) for v in values))
    return vector
