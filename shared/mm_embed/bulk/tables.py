"""The output schema and the conversion of batch results to Arrow tables.

Columns, in order: ``id`` (string), ``box`` (int32, FG-CLIP runs only: the box position,
``-1`` for a text or whole image), ``dense`` (``fixed_size_list<float32>[dim]``),
``sparse_indices`` (``list<int32>``) and ``sparse_values`` (``list<float32>``) when
sparse vectors were asked for, ``tokens`` (int32, the item's share of billed tokens).
Internal tables (checkpoint parts) carry one more column, ``index`` (int64, the input
position), which the final output drops.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .batches import BatchResult

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["INDEX", "batch_table", "output_schema", "public_table"]

INDEX = "index"


def output_schema(*, dimension: int | None, dense: bool, sparse: bool, boxes: bool) -> pa.Schema:
    """The schema of the output file (no ``index`` column)."""
    import pyarrow as pa

    fields: list[Any] = [pa.field("id", pa.string(), nullable=False)]
    if boxes:
        fields.append(pa.field("box", pa.int32(), nullable=False))
    if dense:
        fields.append(
            pa.field("dense", pa.list_(pa.float32(), int(dimension or 0)), nullable=False)
        )
    if sparse:
        fields.append(pa.field("sparse_indices", pa.list_(pa.int32()), nullable=False))
        fields.append(pa.field("sparse_values", pa.list_(pa.float32()), nullable=False))
    fields.append(pa.field("tokens", pa.int32(), nullable=False))
    return pa.schema(fields)


def batch_table(result: BatchResult, schema: pa.Schema) -> pa.Table:
    """``result`` as a table of ``schema`` plus the ``index`` column."""
    import pyarrow as pa

    columns: list[Any] = [pa.array(result.ids, pa.string())]
    names = schema.names
    if "box" in names:
        columns.append(pa.array(result.box, pa.int32()))
    if "dense" in names:
        dim = schema.field("dense").type.list_size
        dense = result.dense if result.dense is not None else np.zeros((0, dim), np.float32)
        if dense.shape[1:] != (dim,) and len(dense):
            raise ValueError(f"vectors have {dense.shape[1]} dimensions, the output has {dim}")
        flat = pa.array(np.ascontiguousarray(dense, np.float32).reshape(-1), pa.float32())
        columns.append(pa.FixedSizeListArray.from_arrays(flat, dim))
    if "sparse_indices" in names:
        vectors = result.sparse or []
        lengths = np.fromiter((len(v) for v in vectors), np.int32, len(vectors))
        offsets = pa.array(np.r_[0, np.cumsum(lengths)].astype(np.int32), pa.int32())
        indices = np.fromiter((i for v in vectors for i in v.indices), np.int32)
        values = np.fromiter((x for v in vectors for x in v.values), np.float32)
        columns.append(pa.ListArray.from_arrays(offsets, pa.array(indices, pa.int32())))
        columns.append(pa.ListArray.from_arrays(offsets, pa.array(values, pa.float32())))
    columns.append(pa.array(result.tokens, pa.int32()))
    full = schema.append(pa.field(INDEX, pa.int64(), nullable=False))
    return pa.Table.from_arrays([*columns, pa.array(result.index, pa.int64())], schema=full)


def public_table(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` restricted to the output columns, one chunk, no metadata."""
    return table.select(schema.names).cast(schema).combine_chunks().replace_schema_metadata(None)
