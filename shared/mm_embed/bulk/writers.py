"""The final output files: Parquet (one row group per window) or JSONL, and the rejects
file (JSONL). Each is written under a temporary name and moved into place, fsync'd,
only once complete."""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np
import orjson

from .checkpoint import fsync_dir
from .items import Reject

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["OUTPUT_FORMATS", "OutputWriter", "RejectsWriter", "output_format_for"]

OUTPUT_FORMATS = ("parquet", "jsonl")
_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE


def output_format_for(path: Path) -> str:
    """``jsonl`` for ``.jsonl`` / ``.ndjson`` outputs, else ``parquet``."""
    return "jsonl" if path.suffix.lower() in (".jsonl", ".ndjson") else "parquet"


def _finish(tmp: Path, final: Path) -> None:
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, final)
    fsync_dir(final.parent)


class OutputWriter:
    """Writes tables of the output schema; :meth:`commit` moves the file into place."""

    def __init__(self, tmp: Path, final: Path, schema: pa.Schema, fmt: str) -> None:
        self.tmp, self.final, self.schema, self.format = tmp, final, schema, fmt
        self.rows = 0
        self.row_groups = 0
        self._parquet: Any = None
        self._handle: IO[bytes] | None = None
        if fmt == "parquet":
            import pyarrow.parquet as pq

            self._parquet = pq.ParquetWriter(tmp, schema)
        elif fmt == "jsonl":
            self._handle = open(tmp, "wb")  # noqa: SIM115 - closed in close()
        else:
            raise ValueError(
                f"unknown output format {fmt!r}; choose from {', '.join(OUTPUT_FORMATS)}"
            )

    def write(self, table: pa.Table) -> None:
        """Append ``table`` (one Parquet row group; nothing for an empty table)."""
        if table.num_rows == 0:
            return
        if self._parquet is not None:
            self._parquet.write_table(table, row_group_size=table.num_rows)
        else:
            assert self._handle is not None
            self._handle.write(b"".join(_json_lines(table)))
        self.rows += table.num_rows
        self.row_groups += 1

    def close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
            self._parquet = None
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def commit(self) -> None:
        self.close()
        _finish(self.tmp, self.final)

    def discard(self) -> None:
        self.close()
        self.tmp.unlink(missing_ok=True)


def _json_lines(table: pa.Table) -> list[bytes]:
    names = table.schema.names
    n = table.num_rows
    columns: dict[str, Any] = {}
    for name in names:
        column = table.column(name).combine_chunks()
        if name == "dense":
            dim = column.type.list_size
            columns[name] = column.values.to_numpy(zero_copy_only=False).reshape(n, dim)
        elif name in ("sparse_indices", "sparse_values"):
            offsets = column.offsets.to_numpy()
            values = column.values.to_numpy(zero_copy_only=False)
            columns[name] = [values[offsets[i] : offsets[i + 1]] for i in range(n)]
        elif name == "id":
            columns[name] = column.to_pylist()
        else:
            columns[name] = column.to_numpy(zero_copy_only=False).astype(np.int64).tolist()
    return [orjson.dumps({k: columns[k][i] for k in names}, option=_JSON_OPTIONS) for i in range(n)]


class RejectsWriter:
    """The rejects file: one JSON object per rejected item, in input order."""

    def __init__(self, tmp: Path, final: Path) -> None:
        self.tmp, self.final = tmp, final
        self.count = 0
        self._handle: IO[bytes] | None = open(tmp, "wb")  # noqa: SIM115 - closed in close()

    def write(self, rejects: list[Reject]) -> None:
        assert self._handle is not None
        for reject in rejects:
            self._handle.write(orjson.dumps(reject.to_dict(), option=orjson.OPT_APPEND_NEWLINE))
        self.count += len(rejects)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def commit(self) -> None:
        """Move the file into place when there are rejects; remove a stale one when not."""
        self.close()
        if self.count:
            _finish(self.tmp, self.final)
        else:
            self.tmp.unlink(missing_ok=True)
            self.final.unlink(missing_ok=True)

    def discard(self) -> None:
        self.close()
        self.tmp.unlink(missing_ok=True)
