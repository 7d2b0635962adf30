"""What flows through a bulk run: input items, records that cannot become items, rejects,
and the per-item results the streaming API yields.

A *record* is one input unit (a JSONL line, a CSV row, a Parquet row, an image file, or an
element of a Python iterable). It becomes a :class:`BulkItem` or, when it is broken, a
:class:`BadRecord`; both keep where they came from (``source`` and ``line``) so every
report can name the line and the field.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from .. import SparseVector
from ._core import ImageSource

__all__ = [
    "BadRecord",
    "BulkItem",
    "FieldNames",
    "ItemResult",
    "Reject",
    "RejectCode",
    "coerce_record",
    "format_location",
    "is_local_path",
]


class RejectCode:
    """Local reject codes (provider rejects carry the provider's own code instead)."""

    #: The record is malformed: broken JSON, missing or empty id, wrong field types.
    BAD_RECORD = "bad_record"
    #: The id was already used by an earlier record.
    DUPLICATE_ID = "duplicate_id"
    #: The image path does not exist.
    MISSING_IMAGE = "missing_image"
    #: The client refused the item before sending it (unreadable image, box outside it...).
    INVALID_INPUT = "invalid_input"
    #: The chosen provider cannot embed this kind of item (e.g. boxes with Viking).
    UNSUPPORTED = "unsupported"
    #: The image has more pixels than ``max_image_pixels`` (it is not decoded).
    IMAGE_TOO_LARGE = "image_too_large"


@dataclass(frozen=True)
class BulkItem:
    """One item to embed: an ``id`` and a ``text`` and/or an ``image`` (path, URL, data
    URI, bytes...), with optional ``boxes`` (``[x, y, w, h]`` each, FG-CLIP only).

    ``source`` and ``line`` say where the item was read (for reports); they do not take
    part in equality.
    """

    id: str
    text: str | None = None
    image: ImageSource | None = None
    boxes: Sequence[Sequence[float]] | None = None
    source: str | None = field(default=None, compare=False, repr=False)
    line: int | None = field(default=None, compare=False, repr=False)

    @property
    def location(self) -> str:
        return format_location(self.source, self.line)


@dataclass(frozen=True)
class BadRecord:
    """A record that cannot become an item; it is rejected, never sent."""

    message: str
    field: str | None = None
    id: str | None = None
    code: str = RejectCode.BAD_RECORD
    source: str | None = None
    line: int | None = None

    @property
    def location(self) -> str:
        return format_location(self.source, self.line)

    def reject(self, index: int) -> Reject:
        """This record, at input position ``index``, as a reject."""
        return Reject(index, self.id, self.location, self.field, self.code, self.message)


def format_location(source: str | None, line: int | None) -> str:
    if source and line is not None:
        return f"{source}:{line}"
    if line is not None:
        return f"item {line}"
    return source or "?"


@dataclass(frozen=True)
class Reject:
    """An input item with no result, and why.

    ``index`` is the 0-based position in the input, ``location`` where it was read
    (``corpus.jsonl:17``), ``field`` the offending field when known. ``code`` is the
    provider's code (HTTP status on the wire when it gave none) for provider refusals,
    or one of :class:`RejectCode` for local ones; ``status`` the HTTP status if any.
    """

    index: int
    id: str | None
    location: str
    field: str | None
    code: str | int | None
    message: str
    status: int | None = None
    request_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "id": self.id,
            "location": self.location,
            "field": self.field,
            "code": self.code,
            "status": self.status,
            "message": self.message,
            "request_id": self.request_id,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Reject:
        return cls(
            index=int(raw["index"]),
            id=raw.get("id"),
            location=str(raw.get("location", "?")),
            field=raw.get("field"),
            code=raw.get("code"),
            message=str(raw.get("message", "")),
            status=raw.get("status"),
            request_id=raw.get("request_id"),
        )


@dataclass(frozen=True)
class ItemResult:
    """The outcome of one input item, yielded in input order by the streaming API.

    ``dense`` is ``float32[rows, dim]``: one row, or one per box for an FG-CLIP image
    with boxes (``boxes`` then gives each row's box position; ``-1`` is a whole-image
    row). ``sparse`` has one vector per row when sparse vectors were asked for.
    ``tokens`` is the item's share of the billed tokens (see the bulk docs). A rejected
    item has ``reject`` set and no vectors.
    """

    index: int
    id: str | None
    dense: npt.NDArray[np.float32] | None = None
    sparse: tuple[SparseVector, ...] | None = None
    boxes: npt.NDArray[np.int32] | None = None
    tokens: int = 0
    reject: Reject | None = None

    @property
    def ok(self) -> bool:
        return self.reject is None

    @property
    def vector(self) -> npt.NDArray[np.float32]:
        """The dense vector of a one-row item."""
        if self.dense is None or len(self.dense) != 1:
            raise ValueError(
                f"item {self.index} has {0 if self.dense is None else len(self.dense)} rows"
            )
        row: npt.NDArray[np.float32] = self.dense[0]
        return row


@dataclass(frozen=True)
class FieldNames:
    """Which record keys hold the id, text, image and boxes."""

    id: str = "id"
    text: str = "text"
    image: str = "image"
    boxes: str = "boxes"


_DEFAULT_FIELDS = FieldNames()


def coerce_record(
    record: object,
    *,
    index: int,
    source: str | None = None,
    line: int | None = None,
    fields: FieldNames = _DEFAULT_FIELDS,
    image_root: str | os.PathLike[str] | None = None,
    check_paths: bool = True,
) -> BulkItem | BadRecord:
    """Turn one record (a :class:`BulkItem`, a mapping, or a plain ``str`` text whose id
    is its index) into a :class:`BulkItem`, or a :class:`BadRecord` saying what is wrong.

    Rules: the id is a non-empty ``str`` (an ``int`` is turned into one); text and image
    are strings (empty means absent; at least one is needed); a relative image path is
    taken from ``image_root``; a local image path must exist; ``boxes`` is a list of
    ``[x, y, w, h]`` (or that list as a JSON string, as CSV and Parquet cells hold it)
    and needs an image.
    """
    if line is None and source is None:
        line = index  # a Python iterable: "item <index>"
    if isinstance(record, BadRecord):
        return record
    if isinstance(record, BulkItem):
        if record.source is None and record.line is None:
            record = BulkItem(record.id, record.text, record.image, record.boxes, source, line)
        return _check_item(record, image_root=None, check_paths=check_paths)
    if isinstance(record, str):
        return _check_item(
            BulkItem(str(index), text=record, source=source, line=line),
            image_root=None,
            check_paths=check_paths,
        )
    if not isinstance(record, Mapping):
        return BadRecord(
            f"a record must be an object with {fields.id!r} and {fields.text!r} and/or "
            f"{fields.image!r}, not {type(record).__name__}",
            source=source,
            line=line,
        )

    made = _from_mapping(record, fields, source, line)
    if isinstance(made, BadRecord):
        return made
    return _check_item(
        made, image_root=image_root, check_paths=check_paths, image_field=fields.image
    )


def _from_mapping(
    record: Mapping[Any, Any], fields: FieldNames, source: str | None, line: int | None
) -> BulkItem | BadRecord:
    """The item a mapping describes (its image path not checked yet), or what is wrong."""

    def bad(message: str, field_name: str | None, item_id: str | None = None) -> BadRecord:
        return BadRecord(message, field_name, item_id, source=source, line=line)

    raw_id = record.get(fields.id)
    if raw_id is None:
        return bad(f"missing {fields.id!r}", fields.id)
    if isinstance(raw_id, bool) or not isinstance(raw_id, (str, int)):
        return bad(
            f"{fields.id!r} must be a string or an integer, not {type(raw_id).__name__}", fields.id
        )
    item_id = str(raw_id)
    if not item_id.strip():
        return bad(f"{fields.id!r} is empty", fields.id)
    text = record.get(fields.text)
    if text is not None and not isinstance(text, str):
        return bad(
            f"{fields.text!r} must be a string, not {type(text).__name__}", fields.text, item_id
        )
    image = record.get(fields.image)
    if image is not None and not isinstance(image, str):
        return bad(
            f"{fields.image!r} must be a string (a path or URL), not {type(image).__name__}",
            fields.image,
            item_id,
        )
    text = text or None
    image = image or None
    if text is None and image is None:
        return bad(f"needs {fields.text!r} and/or {fields.image!r}", fields.text, item_id)
    boxes_raw = record.get(fields.boxes)
    boxes: list[list[float]] | None = None
    if boxes_raw is not None and boxes_raw != "":
        parsed = _parse_boxes(boxes_raw)
        if isinstance(parsed, str):
            return bad(parsed, fields.boxes, item_id)
        boxes = parsed
        if boxes and image is None:
            return bad(f"{fields.boxes!r} needs an {fields.image!r}", fields.boxes, item_id)
    return BulkItem(item_id, text, image, boxes or None, source, line)


def _parse_boxes(raw: object) -> list[list[float]] | str:
    """The boxes as a list of 4-number lists, or a message saying what is wrong."""
    if isinstance(raw, (str, bytes)):
        try:
            raw = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return "boxes is not valid JSON (expected [[x, y, w, h], ...])"
    if hasattr(raw, "tolist"):  # numpy / Arrow values from Parquet
        raw = raw.tolist()
    if not isinstance(raw, list):
        return "boxes must be a list of [x, y, w, h]"
    boxes: list[list[float]] = []
    for j, box in enumerate(raw):
        if hasattr(box, "tolist"):
            box = box.tolist()
        if (
            not isinstance(box, list)
            or len(box) != 4
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box)
        ):
            return f"boxes[{j}] must be [x, y, w, h]: 4 numbers"
        if not all(math.isfinite(float(v)) for v in box):
            return f"boxes[{j}] has a value that is not finite"
        boxes.append([float(v) for v in box])
    return boxes


def is_local_path(image: object) -> bool:
    if not isinstance(image, str):
        return isinstance(image, os.PathLike)
    head = image[:16].lower()
    return not (
        head.startswith(("http://", "https://", "data:", "base64://", "tos://"))
        or "://" in image[:12]
    )


def _check_item(
    item: BulkItem,
    *,
    image_root: str | os.PathLike[str] | None,
    check_paths: bool,
    image_field: str = "image",
) -> BulkItem | BadRecord:
    if not isinstance(item.id, str) or not item.id.strip():
        return BadRecord(
            "id must be a non-empty string", "id", None, source=item.source, line=item.line
        )
    image = item.image
    if image is None or not is_local_path(image):
        return item
    path = Path(image)  # type: ignore[arg-type]
    if image_root is not None and not path.is_absolute():
        path = Path(image_root) / path
        item = BulkItem(item.id, item.text, str(path), item.boxes, item.source, item.line)
    if check_paths and not path.is_file():
        what = "is not a file" if path.exists() else "does not exist"
        return BadRecord(
            f"image {str(path)!r} {what}",
            image_field,
            item.id,
            code=RejectCode.MISSING_IMAGE,
            source=item.source,
            line=item.line,
        )
    return item
