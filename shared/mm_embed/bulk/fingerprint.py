"""Content fingerprints of input records, so that a resume can prove it reads the same
input the earlier run embedded.

A record's fingerprint is a 64-bit BLAKE2b digest of what decides its output row: the
id, the text, the image *content* (a local file's bytes, the bytes given, a data URI;
for a remote URL its address) and the boxes; for a record that cannot become an item,
its reject (code, field, id, message). A batch or window keeps the fingerprints of its
records in input order (8 bytes per record), so a check names the first record that
differs. Two different records share a fingerprint with probability 2**-64.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt
import orjson
from PIL import Image

from ._core import ImageSource
from .items import BadRecord, BulkItem, is_local_path

__all__ = ["Prints", "decode_prints", "encode_prints", "first_difference", "record_print"]

#: Fingerprints of consecutive records, in input order.
Prints = npt.NDArray[np.uint64]

_PERSON = b"mm-embed-rec-v1"
_CHUNK = 1 << 20


def record_print(record: BulkItem | BadRecord) -> int:
    """The fingerprint of one record (as read, before any duplicate-id check)."""
    digest = hashlib.blake2b(digest_size=8, person=_PERSON)
    if isinstance(record, BadRecord):
        head = ["bad", record.code, record.field, record.id, record.message]
        digest.update(orjson.dumps(head))
    else:
        boxes = [list(map(float, box)) for box in record.boxes or ()]
        digest.update(orjson.dumps(["item", record.id, record.text, boxes]))
        _image_content(digest, record.image)
    return int.from_bytes(digest.digest(), "little")


def _image_content(digest: hashlib.blake2b, image: ImageSource | None) -> None:
    digest.update(b"\0image:")
    if image is None:
        digest.update(b"none")
    elif isinstance(image, (bytes, bytearray)):
        digest.update(b"bytes\0" + bytes(image))
    elif isinstance(image, Image.Image):
        digest.update(f"pil\0{image.mode}\0{image.size}\0".encode() + image.tobytes())
    elif isinstance(image, (str, os.PathLike)) and is_local_path(image):
        _file_content(digest, os.fspath(image))
    elif isinstance(image, str):  # a URL or data URI: its text is its content
        digest.update(b"ref\0" + image.encode("utf-8", "surrogatepass"))
    else:  # streams were read into bytes by the engine: nothing else is an image
        digest.update(f"other\0{type(image).__name__}".encode())


def _file_content(digest: hashlib.blake2b, path: str) -> None:
    digest.update(b"file\0")
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    except OSError as exc:  # the item is rejected when sent; its fingerprint says so
        digest.update(f"unreadable\0{path}\0{type(exc).__name__}".encode())


def encode_prints(prints: Iterable[int] | Prints) -> str:
    """Fingerprints as text (for JSON metadata)."""
    array = np.asarray(list(prints) if not isinstance(prints, np.ndarray) else prints, "<u8")
    return base64.b64encode(array.tobytes()).decode("ascii")


def decode_prints(text: str) -> Prints:
    return np.frombuffer(base64.b64decode(text), "<u8").astype(np.uint64)


def first_difference(expected: Prints, found: Prints) -> int | None:
    """Position of the first differing fingerprint (a shorter side differs where it
    ends), or ``None`` when both are equal."""
    common = min(len(expected), len(found))
    differ = np.flatnonzero(expected[:common] != found[:common])
    if len(differ):
        return int(differ[0])
    return None if len(expected) == len(found) else common
