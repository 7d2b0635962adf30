"""Lazy readers for corpus files: JSONL, CSV/TSV, Parquet, and a directory of images.

Every reader yields, in file order, one :class:`BulkItem` or :class:`BadRecord` per
record, naming the file and line (1-based; for Parquet the 1-based row, for a directory
the file's relative path). Problems with the file as a whole (missing, unknown format,
wrong columns, not UTF-8) raise :class:`InputFileError` before anything is sent;
problems with one record become a :class:`BadRecord` and are rejected.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ..errors import MMEmbedError
from .items import BadRecord, BulkItem, FieldNames, coerce_record

__all__ = [
    "FORMATS",
    "IMAGE_SUFFIXES",
    "InputFileError",
    "InputSource",
    "detect_format",
    "open_input",
]

FORMATS = ("jsonl", "csv", "tsv", "parquet", "images")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
_SUFFIXES = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
}
#: CSV cells may hold long texts or data URIs; the csv module's default cap is 128 KiB.
_CSV_FIELD_LIMIT = 1 << 28


class InputFileError(MMEmbedError, ValueError):
    """The input file as a whole cannot be read (raised before anything is sent).

    ``path``, ``line`` (when one line is to blame) and ``field`` say where.
    """

    def __init__(
        self, message: str, *, path: str, line: int | None = None, field: str | None = None
    ) -> None:
        where = path if line is None else f"{path}:{line}"
        super().__init__(f"{where}: {message}")
        self.path, self.line, self.field = path, line, field

    def __str__(self) -> str:
        return self.message


def detect_format(path: Path) -> str:
    """The input format from the path: a directory is ``images``, else the suffix."""
    if path.is_dir():
        return "images"
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise InputFileError(
            f"cannot tell the format from the suffix {path.suffix!r}; use one of "
            f"{', '.join(sorted(_SUFFIXES))} or pass the format ({', '.join(FORMATS)})",
            path=str(path),
        )
    return fmt


@dataclass
class InputSource:
    """An opened input: iterate it (any number of times) for records in file order.

    ``estimated_total`` is the record count when it is cheap to know (Parquet metadata,
    a line count, a file count) and is used for progress only. ``description`` names the
    input (path, format) in a checkpoint's manifest; what a resume checks is the content
    of every record (:mod:`mm_embed.bulk.fingerprint`).
    """

    path: Path
    format: str
    fields: FieldNames
    image_root: Path | None
    estimated_total: int | None = None
    description: dict[str, Any] = field(default_factory=dict)

    def __iter__(self) -> Iterator[BulkItem | BadRecord]:
        readers = {
            "jsonl": self._jsonl,
            "csv": self._csv,
            "tsv": self._csv,
            "parquet": self._parquet,
            "images": self._images,
        }
        return readers[self.format]()

    # ------------------------------------------------------------------ JSONL
    def _jsonl(self) -> Iterator[BulkItem | BadRecord]:
        source = str(self.path)
        checked_columns = False
        index = 0
        with self.path.open("rb") as handle:
            for line_no, raw in enumerate(handle, start=1):
                if not raw.strip():
                    continue
                try:
                    obj = orjson.loads(raw)
                except orjson.JSONDecodeError as exc:
                    yield BadRecord(
                        f"broken JSON at column {exc.colno}: {exc.msg}",
                        None,
                        source=source,
                        line=line_no,
                    )
                    index += 1
                    continue
                if isinstance(obj, dict) and not checked_columns:
                    checked_columns = True
                    self._check_columns(list(obj), line=line_no)
                yield self._coerce(obj, index, source, line_no)
                index += 1

    # ------------------------------------------------------------------ CSV / TSV
    def _csv(self) -> Iterator[BulkItem | BadRecord]:
        source = str(self.path)
        if csv.field_size_limit() < _CSV_FIELD_LIMIT:
            csv.field_size_limit(_CSV_FIELD_LIMIT)
        delimiter = "\t" if self.format == "tsv" else ","
        # Undecodable bytes are kept as surrogates so the row that holds them is named.
        with self.path.open("r", encoding="utf-8", errors="surrogateescape", newline="") as handle:
            reader = csv.DictReader(handle, delimiter=delimiter)
            try:
                header = reader.fieldnames
            except csv.Error as exc:
                raise InputFileError(
                    f"cannot read the header: {exc}", path=source, line=1
                ) from None
            if not header:
                return
            if any(_undecodable(name) for name in header):
                raise InputFileError("the header is not UTF-8 text", path=source, line=1)
            self._check_columns(list(header), line=1)
            index, last_line = 0, reader.line_num
            while True:
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    yield BadRecord(
                        f"unreadable CSV row: {exc}", None, source=source, line=reader.line_num
                    )
                    index, last_line = index + 1, reader.line_num
                    continue
                line_no = last_line + 1
                last_line = reader.line_num
                broken = [k for k, v in row.items() if isinstance(v, str) and _undecodable(v)]
                if None in row:
                    yield BadRecord(
                        f"row has {len(header) + len(row[None])} fields, the header has {len(header)}",
                        None,
                        source=source,
                        line=line_no,
                    )
                elif broken:
                    yield BadRecord(
                        f"{broken[0]!r} is not UTF-8 text", broken[0], source=source, line=line_no
                    )
                else:
                    # An empty cell is an absent value.
                    values = {k: (v if v != "" else None) for k, v in row.items()}
                    yield self._coerce(values, index, source, line_no)
                index += 1

    # ------------------------------------------------------------------ Parquet
    def _parquet(self) -> Iterator[BulkItem | BadRecord]:
        import pyarrow.parquet as pq

        source = str(self.path)
        parquet = pq.ParquetFile(self.path)
        names = parquet.schema_arrow.names
        self._check_columns(names, line=None)
        wanted = [
            n
            for n in (self.fields.id, self.fields.text, self.fields.image, self.fields.boxes)
            if n in names
        ]
        index = 0
        for batch in parquet.iter_batches(batch_size=1024, columns=wanted):
            for row in batch.to_pylist():
                yield self._coerce(row, index, source, index + 1)
                index += 1

    # ------------------------------------------------------------------ images
    def _images(self) -> Iterator[BulkItem | BadRecord]:
        root = self.path
        for path in _image_files(root):
            rel = path.relative_to(root).as_posix()
            yield BulkItem(rel, image=str(path), source=rel, line=None)

    # ------------------------------------------------------------------ shared
    def _coerce(self, obj: object, index: int, source: str, line: int) -> BulkItem | BadRecord:
        return coerce_record(
            obj,
            index=index,
            source=source,
            line=line,
            fields=self.fields,
            image_root=self.image_root,
        )

    def _check_columns(self, names: list[str], *, line: int | None) -> None:
        f = self.fields
        what = "columns" if self.format != "jsonl" else "keys"
        missing = []
        if f.id not in names:
            missing.append(repr(f.id))
        if f.text not in names and f.image not in names:
            missing.append(f"{f.text!r} or {f.image!r}")
        if missing:
            shown = ", ".join(repr(n) for n in names[:20]) or "none"
            raise InputFileError(
                f"no {' and no '.join(missing)} {what} (found: {shown}); name the fields with "
                "--id-field / --text-field / --image-field",
                path=str(self.path),
                line=line,
                field=f.id if f.id not in names else f.text,
            )


def _undecodable(text: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def _image_files(root: Path) -> Iterator[Path]:
    for directory, subdirs, files in os.walk(root):
        subdirs.sort()
        for name in sorted(files):
            if name.lower().endswith(IMAGE_SUFFIXES) and not name.startswith("."):
                yield Path(directory) / name


def _count_lines(path: Path) -> int:
    count, last = 0, b"\n"
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + (last != b"\n")


def open_input(
    path: str | os.PathLike[str],
    *,
    format: str | None = None,
    fields: FieldNames | None = None,
    image_root: str | os.PathLike[str] | None = None,
    count: bool = True,
) -> InputSource:
    """Open a corpus for reading; checks that it exists and its format is known.

    Relative image paths are taken from ``image_root`` (default: the input file's
    directory). ``count=False`` skips the cheap pre-count used for progress and ETA.
    """
    where = Path(path)
    if not where.exists():
        raise InputFileError("does not exist", path=str(where))
    fmt = format or detect_format(where)
    if fmt not in FORMATS:
        raise InputFileError(
            f"unknown input format {fmt!r}; choose from {', '.join(FORMATS)}", path=str(where)
        )
    if (fmt == "images") != where.is_dir():
        raise InputFileError(
            "a directory of images needs format 'images'"
            if where.is_dir()
            else "format 'images' needs a directory",
            path=str(where),
        )
    root = (
        Path(image_root) if image_root is not None else (where if where.is_dir() else where.parent)
    )
    source = InputSource(where, fmt, fields or FieldNames(), root)
    source.description = {"path": str(where.resolve()), "format": fmt}
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            source.estimated_total = pq.ParquetFile(where).metadata.num_rows
        except Exception as exc:  # pyarrow raises several types for a damaged file
            raise InputFileError(f"not a readable Parquet file ({exc})", path=str(where)) from None
    if fmt == "images":
        source.estimated_total = sum(1 for _ in _image_files(where)) if count else None
    elif fmt != "parquet" and count:
        lines = _count_lines(where)
        source.estimated_total = max(0, lines - (fmt != "jsonl"))
    return source
