"""The output of a file run, assembled in input order: windows of batches become
checkpoint windows and output row groups; rejects go to the rejects file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .batches import BatchResult
from .checkpoint import Checkpoint, Part
from .fingerprint import decode_prints, encode_prints
from .items import Reject
from .providers import Provider
from .tables import batch_table, output_schema, public_table
from .writers import OutputWriter, RejectsWriter

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["OutputAssembly", "OutputShape", "WindowBuilder", "batch_part"]


class OutputShape:
    """The output schema of a run. A provider that states no dimension before its first
    reply (FG-CLIP) gets it from the first rows: written or finished earlier ones."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider

    def schema(self) -> pa.Schema:
        p = self.provider
        return output_schema(
            dimension=p.dimension or p.fallback_dimension,
            dense=p.dense,
            sparse=p.sparse,
            boxes=p.boxes,
        )

    def learn(self, part: Part) -> None:
        p = self.provider
        if p.dense and p.dimension is None and part.table.num_rows:
            p.dimension = part.table.schema.field("dense").type.list_size


def batch_part(result: BatchResult, shape: OutputShape) -> Part:
    """A finished batch as a checkpoint part (rows with ``index``, rejects, counters)."""
    meta: dict[str, Any] = {
        "start": result.start,
        "size": result.size,
        "billed_tokens": result.billed_tokens,
    }
    if result.fingerprints is not None:
        meta["prints"] = encode_prints(result.fingerprints)
    return Part(batch_table(result, shape.schema()), result.rejects, meta)


class WindowBuilder:
    """The batches of window ``number``, in order, until it is committed."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.tables: list[pa.Table] = []
        self.rejects: list[Reject] = []
        self.starts: list[int] = []
        self.prints: list[str] = []
        self.billed = 0
        self.size = 0

    def add(self, start: int, part: Part) -> None:
        self.tables.append(part.table)
        self.rejects.extend(part.rejects)
        self.starts.append(start)
        self.prints.append(str(part.meta.get("prints", "")))
        self.billed += int(part.meta.get("billed_tokens", 0))
        self.size += int(part.meta["size"])

    def part(self, window_items: int, shape: OutputShape) -> Part:
        """The window as one part; every table gets the final schema (a batch with no
        rows may predate the first reply, which FG-CLIP learns the dimension from)."""
        import pyarrow as pa

        tables = [t for t in self.tables if t.num_rows]
        table = (
            pa.concat_tables(tables) if tables else batch_table(BatchResult(0, 0), shape.schema())
        )
        prints = np.concatenate([decode_prints(p) for p in self.prints] or [np.zeros(0, np.uint64)])
        meta = {
            "start": self.number * window_items,
            "size": self.size,
            "billed_tokens": self.billed,
            "prints": encode_prints(prints),
        }
        return Part(table, self.rejects, meta)


class OutputAssembly:
    """The output and rejects files being built (in the checkpoint directory), and the
    totals of what they hold."""

    def __init__(
        self, checkpoint: Checkpoint, output: Path, rejects: Path, fmt: str, shape: OutputShape
    ) -> None:
        self.checkpoint, self.output, self.format, self.shape = checkpoint, output, fmt, shape
        self.rejects = RejectsWriter(checkpoint.scratch_path("rejects"), rejects)
        self.writer: OutputWriter | None = None
        self.items = self.embedded = self.rejected = self.rows = self.tokens = 0

    @property
    def row_groups(self) -> int:
        return self.writer.row_groups if self.writer is not None else 0

    def emit(self, part: Part) -> None:
        """Append a committed window (a row group) and its rejects."""
        if part.table.num_rows:
            writer = self._writer()
            writer.write(public_table(part.table, writer.schema))
        self.rejects.write(part.rejects)
        size = int(part.meta["size"])
        self.items += size
        self.rejected += len(part.rejects)
        self.embedded += size - len(part.rejects)
        self.rows += part.table.num_rows
        self.tokens += int(part.meta.get("billed_tokens", 0))

    def commit(self) -> None:
        """Move both files into place (no rows at all: an empty file with the schema)."""
        self._writer().commit()
        self.rejects.commit()

    def discard(self) -> None:
        """Remove both scratch files (a resume rebuilds them from the windows)."""
        if self.writer is not None:
            self.writer.discard()
        self.rejects.discard()

    def _writer(self) -> OutputWriter:
        if self.writer is None:
            self.writer = OutputWriter(
                self.checkpoint.scratch_path("output"),
                self.output,
                self.shape.schema(),
                self.format,
            )
        return self.writer
