"""The driver's pass over the input's ids, before anything is sent.

Ray reads the id column (and each row's file) in input order. The pass counts the
items (for progress and the final check that every item was embedded or rejected),
finds duplicate ids (the Ray engine refuses them up front: its actors cannot tell
which copy came first), and remembers each id's position, so that the rejects file
names input positions as the local engine's does. It holds about 17 to 34 bytes per
id (:class:`~mm_embed.bulk.dedup.IdSet`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._internals import IdSet

if TYPE_CHECKING:
    import ray.data

__all__ = ["IdScan", "scan_ids"]

#: Duplicates named in a refusal.
_SHOWN = 5


@dataclass
class IdScan:
    """What the pass found: ``total`` rows, each id's position, where each file starts."""

    total: int = 0
    positions: IdSet = field(default_factory=IdSet)
    file_starts: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    examples: list[str] = field(default_factory=list)
    #: How a file is named in messages (the path as the user gave it).
    shown: Callable[[str], str] = str

    def add(self, item_id: object, path: str) -> None:
        if path not in self.file_starts:
            self.file_starts[path] = self.total
        text = None if item_id is None or isinstance(item_id, bool) else str(item_id)
        if text is not None and text.strip():
            first = self.positions.add(text, self.total)
            if first is not None:
                self.duplicates += 1
                if len(self.examples) < _SHOWN:
                    self.examples.append(
                        f"{text!r} at {self.where(first)} and {self.where(self.total)}"
                    )
        self.total += 1

    def position(self, item_id: str | None) -> int | None:
        """The input position of ``item_id`` (``None`` for an id the pass did not see)."""
        if item_id is None:
            return None
        found = self.positions.add(item_id, -1)
        return found if found is not None and found >= 0 else None

    def where(self, position: int) -> str:
        """``file:row`` (1-based row) of an input position."""
        path, start = "?", 0
        for candidate, first in self.file_starts.items():
            if first <= position and first >= start:
                path, start = candidate, first
        return f"{self.shown(path)}:{position - start + 1}"

    def duplicate_message(self, id_column: str) -> str:
        return (
            f"{self.duplicates} rows repeat an earlier {id_column!r} ("
            + "; ".join(self.examples)
            + "): the Ray engine needs unique ids (its actors cannot tell which copy came "
            "first); make them unique, run with --no-duplicate-check to embed every copy, "
            "or use the local engine, which rejects the later copies"
        )


def scan_ids(
    ds: ray.data.Dataset, id_column: str, path_column: str, shown: Callable[[str], str] = str
) -> IdScan:
    """One ordered pass over ``ds``'s ids (``ds`` is changed: its DataContext keeps
    input order)."""
    ids: Any = ds.select_columns([id_column, path_column])
    ids.context.execution_options.preserve_order = True
    scan = IdScan(shown=shown)
    for batch in ids.iter_batches(batch_format="pyarrow", batch_size=8192):
        paths = batch.column(path_column).to_pylist()
        for item_id, path in zip(batch.column(id_column).to_pylist(), paths, strict=True):
            scan.add(item_id, str(path))
    return scan
