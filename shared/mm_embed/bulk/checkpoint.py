"""Durable progress of a file run: the ``<output>.parts/`` directory.

* ``manifest.json``: the run's settings; a resume with different settings is refused.
* ``batch-<start>.arrow``: one finished batch (rows, rejects, billed tokens and the
  content fingerprints of its records), written the moment its calls return, so a kill
  loses only the calls in flight.
* ``window-<n>.arrow``: window ``n`` (``window_items`` consecutive input items, one
  output row group), committed in input order from its batches; its batch files are
  then removed.
* ``*.partial``: the output and rejects files being built (scratch: rebuilt from the
  windows by a resume).

Every file is written to a temporary name unique to the writer, flushed, fsync'd and
renamed into place (and the directory fsync'd), so each one is either complete or absent
after a crash. The output and rejects files are rebuilt from the windows, so they need
no fsync of their own until the end. One process at a time works in the directory (the
output's lock, :mod:`.lock`).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from ..errors import MMEmbedError
from .items import Reject

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["Checkpoint", "CheckpointError", "Part", "fsync_dir", "parts_dir", "read_manifest"]

#: 2: parts carry the fingerprints of their records.
_FORMAT = 2
_META_KEY = b"mm_embed.part"


class CheckpointError(MMEmbedError, ValueError):
    """A checkpoint cannot be used: settings differ, or one exists and ``resume`` was off."""


def parts_dir(output: Path) -> Path:
    return output.with_name(output.name + ".parts")


def fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform lets a directory be opened
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def read_manifest(
    path: Path, version: int, *, unreadable: str, incompatible: str
) -> dict[str, Any]:
    """The JSON object at ``path`` when its ``format`` is ``version``; else a
    :class:`CheckpointError` saying ``unreadable`` (with the cause) or ``incompatible``."""
    try:
        raw = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise CheckpointError(f"{unreadable} ({exc})") from None
    if not isinstance(raw, dict) or raw.get("format") != version:
        raise CheckpointError(incompatible)
    return raw


@dataclass
class Part:
    """A batch or window read back: rows (with ``index``), rejects and counters."""

    table: pa.Table
    rejects: list[Reject]
    meta: dict[str, Any]


class Checkpoint:
    """The parts directory of one output file."""

    def __init__(self, output: Path, *, durable: bool = True) -> None:
        self.output = output
        self.dir = parts_dir(output)
        self.durable = durable
        self.settings: dict[str, Any] = {}

    # ------------------------------------------------------------------ lifecycle
    @property
    def exists(self) -> bool:
        return (self.dir / "manifest.json").is_file()

    def create(self, settings: dict[str, Any]) -> None:
        if self.dir.exists():
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True)
        self.settings = settings
        self._write_atomic(
            self.dir / "manifest.json",
            orjson.dumps({"format": _FORMAT, "settings": settings}, option=orjson.OPT_INDENT_2),
        )

    def load(self) -> dict[str, Any]:
        raw = read_manifest(
            self.dir / "manifest.json",
            _FORMAT,
            unreadable=f"{self.dir}: unreadable checkpoint manifest",
            incompatible=f"{self.dir}: checkpoint from an incompatible version of mm-embed; "
            "start again with --overwrite (overwrite=True)",
        )
        self.settings = dict(raw.get("settings") or {})
        return self.settings

    def remove_scratch(self) -> None:
        """Remove what an earlier process left half-written (it no longer holds the lock)."""
        for pattern in ("*.tmp", "*.partial"):
            for leftover in self.dir.glob(pattern):
                leftover.unlink(missing_ok=True)

    def scratch_path(self, kind: str) -> Path:
        """A new name for a file being built (``output``, ``rejects``)."""
        return self.dir / f"{kind}.{os.getpid()}-{secrets.token_hex(4)}.partial"

    def differences(self, settings: dict[str, Any]) -> list[str]:
        """Settings that differ from the checkpoint's (input details excluded)."""
        keys = sorted(set(settings) | set(self.settings))
        return [
            f"{k}: checkpoint {self.settings.get(k)!r}, now {settings.get(k)!r}"
            for k in keys
            if k != "input" and self.settings.get(k) != settings.get(k)
        ]

    def holds_work(self) -> bool:
        """Whether any window or finished batch is on disk."""
        return any(self.dir.glob("window-*.arrow")) or any(self.dir.glob("batch-*.arrow"))

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    # ------------------------------------------------------------------ windows
    def window_path(self, n: int) -> Path:
        return self.dir / f"window-{n:08d}.arrow"

    def windows(self) -> list[int]:
        """Committed windows ``0..k-1`` (a later one after a gap cannot exist; if it does it
        is removed, with everything after it)."""
        found = sorted(int(p.stem.split("-")[1]) for p in self.dir.glob("window-*.arrow"))
        committed = 0
        for n in found:
            if n != committed:
                break
            committed += 1
        for n in found[committed:]:
            self.window_path(n).unlink(missing_ok=True)
        return list(range(committed))

    def commit_window(self, n: int, part: Part, batch_starts: list[int]) -> None:
        self._write_part(self.window_path(n), part)
        for start in batch_starts:
            self.batch_path(start).unlink(missing_ok=True)

    def read_window(self, n: int) -> Part:
        return self._read_part(self.window_path(n))

    # ------------------------------------------------------------------ batches
    def batch_path(self, start: int) -> Path:
        return self.dir / f"batch-{start:012d}.arrow"

    def batches(self, from_item: int) -> set[int]:
        """Starts of finished batches at or after ``from_item``; older ones are removed."""
        starts = set()
        for path in self.dir.glob("batch-*.arrow"):
            start = int(path.stem.split("-")[1])
            if start < from_item:
                path.unlink(missing_ok=True)
            else:
                starts.add(start)
        return starts

    def write_batch(self, start: int, part: Part) -> None:
        self._write_part(self.batch_path(start), part)

    def read_batch(self, start: int) -> Part:
        return self._read_part(self.batch_path(start))

    # ------------------------------------------------------------------ files
    def _write_part(self, path: Path, part: Part) -> None:
        import pyarrow as pa

        meta = dict(part.meta, rejects=[r.to_dict() for r in part.rejects])
        table = part.table.replace_schema_metadata({_META_KEY: orjson.dumps(meta)})
        sink = pa.BufferOutputStream()
        with pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        self._write_atomic(path, sink.getvalue().to_pybytes())

    def _read_part(self, path: Path) -> Part:
        import pyarrow as pa

        try:
            table = pa.ipc.open_file(pa.py_buffer(path.read_bytes())).read_all()
            meta = orjson.loads((table.schema.metadata or {})[_META_KEY])
        except (OSError, KeyError, pa.ArrowInvalid, orjson.JSONDecodeError) as exc:
            raise CheckpointError(f"{path}: unreadable checkpoint part ({exc})") from None
        rejects = [Reject.from_dict(r) for r in meta.pop("rejects", [])]
        return Part(table.replace_schema_metadata(None), rejects, meta)

    def _write_atomic(self, path: Path, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
        try:
            with open(fd, "wb") as handle:
                handle.write(data)
                if self.durable:
                    handle.flush()
                    os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        if self.durable:
            fsync_dir(path.parent)
