"""The output directory of a Ray run, and how each file in it is written.

::

    OUTPUT/
      part-<key>.parquet      the rows of one embedded batch (the output schema)
      _batches/<key>.json     that batch's manifest, written last: what it finished
                              (embedded and rejected items), its rejects, its counters
      _manifest.json          the run's settings; rewritten last, atomically, with
                              ``complete: true`` and the totals once the run is done

Every file is written under a temporary name, flushed, fsync'd and renamed into place,
so it is complete or absent. A batch counts as written once its manifest is there; a
part with no manifest (its writer died between the two) is removed when a run
completes. ``key`` is a digest of the batch's records, so a batch that Ray runs again
(its actor died) writes the same files again, never a second copy. Readers of the
Parquet directory (pyarrow, Ray, Spark) skip the ``_`` names.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import orjson

from ._internals import decode_prints, fsync_dir

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "BATCHES",
    "MANIFEST",
    "BatchRecord",
    "DoneSet",
    "part_name",
    "read_batches",
    "remove_orphans",
    "write_atomic",
    "write_part",
]

MANIFEST = "_manifest.json"
BATCHES = "_batches"
_TMP = ".tmp"


def part_name(key: str) -> str:
    return f"part-{key}.parquet"


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}{_TMP}")


def write_atomic(path: Path, data: bytes) -> None:
    """``data`` at ``path``, complete or not at all."""
    tmp = _temporary(path)
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_part(directory: Path, key: str, table: pa.Table) -> str:
    """The rows of batch ``key`` as ``part-<key>.parquet``; returns the file name."""
    import pyarrow.parquet as pq

    path = directory / part_name(key)
    tmp = _temporary(path)
    try:
        pq.write_table(table, tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(directory)
    return path.name


@dataclass
class BatchRecord:
    """One batch's manifest: the items it finished and what became of them.

    ``done`` holds the key of every item it finished (embedded or rejected: the hash of
    its id, or of its content when it has none) and ``prints`` their content
    fingerprints, in the same order; ``rejects`` are reject dicts (``index`` is filled
    in when the run assembles its rejects file).
    """

    key: str
    part: str | None
    rows: int
    embedded: int
    billed_tokens: int
    done: str
    prints: str
    rejects: list[dict[str, Any]] = field(default_factory=list)

    def write(self, directory: Path) -> None:
        batches = directory / BATCHES
        batches.mkdir(exist_ok=True)
        write_atomic(batches / f"{self.key}.json", orjson.dumps(self.__dict__))

    @classmethod
    def read(cls, path: Path) -> BatchRecord:
        return cls(**orjson.loads(path.read_bytes()))


def read_batches(directory: Path) -> Iterator[BatchRecord]:
    """Every batch manifest in ``directory`` (any order)."""
    batches = directory / BATCHES
    if batches.is_dir():
        for path in batches.glob("*.json"):
            yield BatchRecord.read(path)


def remove_orphans(directory: Path, parts: set[str]) -> int:
    """Remove temporary files and parts no manifest names; returns how many parts."""
    removed = 0
    for path in directory.glob(f".*{_TMP}"):
        path.unlink(missing_ok=True)
    for path in (directory / BATCHES).glob(f".*{_TMP}"):
        path.unlink(missing_ok=True)
    for path in directory.glob("part-*.parquet"):
        if path.name not in parts:
            path.unlink(missing_ok=True)
            removed += 1
    return removed


@dataclass(frozen=True)
class DoneSet:
    """The items earlier runs finished: sorted keys and their content fingerprints."""

    keys: npt.NDArray[np.uint64]
    prints: npt.NDArray[np.uint64]

    @classmethod
    def empty(cls) -> DoneSet:
        return cls(np.zeros(0, np.uint64), np.zeros(0, np.uint64))

    @classmethod
    def of(cls, records: list[BatchRecord]) -> DoneSet:
        if not records:
            return cls.empty()
        keys = np.concatenate([decode_prints(r.done) for r in records])
        prints = np.concatenate([decode_prints(r.prints) for r in records])
        order = np.argsort(keys, kind="stable")
        return cls(keys[order], prints[order])

    def __len__(self) -> int:
        return len(self.keys)

    def lookup(self, keys: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
        """For each key, its position in this set, or ``-1``."""
        if not len(self.keys):
            return np.full(len(keys), -1, np.int64)
        at = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
        return np.where(self.keys[at] == keys, at, -1).astype(np.int64)
