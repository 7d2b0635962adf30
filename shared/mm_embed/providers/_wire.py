"""What both wire protocols share, sans-I/O: JSON bodies, the error-envelope preamble
of a reply, and strict reading of vector matrices.

The bytes that are signed are the bytes that are sent, so bodies are encoded once
(:func:`dumps`). Replies are read strictly: a vector that is empty, of the wrong
dimension, or holds strings, booleans or nulls is a :class:`ResponseFormatError` naming
the request id and the offending row, never a silently converted number.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

import numpy as np
import numpy.typing as npt
import orjson

from ..errors import ResponseFormatError, status_error_class

__all__ = [
    "ReplyContext",
    "dense_matrix",
    "dumps",
    "plain_numbers",
    "raise_status",
    "read_json_object",
]


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON (orjson)."""
    return orjson.dumps(value)


class ReplyContext:
    """The status, request id and ``Retry-After`` of one reply, for error messages."""

    __slots__ = ("request_id", "retry_after", "status_code")

    def __init__(
        self, status_code: int, request_id: str | None = None, retry_after: float | None = None
    ) -> None:
        self.status_code = status_code
        self.request_id = request_id
        self.retry_after = retry_after

    def format_error(self, message: str) -> ResponseFormatError:
        """A :class:`ResponseFormatError` carrying this reply's status and request id."""
        where = f" (request id {self.request_id})" if self.request_id else ""
        return ResponseFormatError(
            message + where, status_code=self.status_code, request_id=self.request_id
        )


def raise_status(reply: ReplyContext, message: object, code: int | str | None = None) -> NoReturn:
    """Raise the :class:`~mm_embed.errors.APIStatusError` subclass that fits the reply."""
    cls = status_error_class(reply.status_code, code if isinstance(code, int) else None)
    raise cls(
        str(message) if message else f"HTTP {reply.status_code}",
        status_code=reply.status_code,
        code=code,
        request_id=reply.request_id,
        retry_after=reply.retry_after,
    )


def read_json_object(reply: ReplyContext, content: bytes) -> dict[str, Any]:
    """The reply body as a JSON object.

    A body that is not a JSON object is an :class:`APIStatusError` when the status says
    error (an unexpected redirect or a proxy's HTML page: not retried as garbled), else a
    :class:`ResponseFormatError` (a garbled body: retried).
    """
    try:
        payload = orjson.loads(content)
    except orjson.JSONDecodeError:
        payload = None
    if isinstance(payload, dict):
        return payload
    if reply.status_code >= 300:
        raise_status(reply, f"HTTP {reply.status_code} with an unreadable body")
    raise reply.format_error("reply is not a JSON object")


def _first_bad_row(raw: list[Any], is_bad: Callable[[object], bool]) -> int:
    for row_number, row in enumerate(raw):
        if not isinstance(row, list) or any(is_bad(v) for v in row):
            return row_number
    return -1


def _is_not_number(value: object) -> bool:
    return isinstance(value, bool) or not isinstance(value, (int, float))


def _matrix_end(body: bytes, start: int) -> int:
    """The offset of the ``]]`` closing the matrix that opens at ``start`` (-1: none).
    Single-byte scans, one per row: far faster than a two-byte search."""
    position = start
    while (close := body.find(b"]", position)) >= 0:
        if body[close + 1 : close + 2] == b"]":
            return close
        position = close + 1
    return -1


#: The highest byte of plain JSON numbers and list punctuation (``e``); the letters of
#: ``true``, ``false`` and ``null`` all lie above it.
_HIGHEST_NUMBER_BYTE = ord("e")


def plain_numbers(body: bytes, key: bytes) -> bool:
    """Whether the JSON value of ``key`` (``b'"name"'``), found once in ``body``, is text
    that can only hold numbers: no quote (a string) and no byte above ``e`` (the
    letters of a boolean or a null) up to its closing ``]]``. A few C-speed scans, so
    the common reply skips the per-value check; ``False`` only means "check each
    value"."""
    at = body.find(key)
    start = body.find(b"[", at + len(key)) if at >= 0 else -1
    end = _matrix_end(body, start) if start >= 0 else -1
    if end < 0:
        return False
    # The region holds no quote, so the key cannot recur inside it; after it, it would
    # be a duplicate key (the parser keeps the last one). ``at`` is its first place.
    if body.find(key, end) >= 0:
        return False
    if body.find(b'"', start, end) >= 0:
        return False
    region = np.frombuffer(body, dtype=np.uint8, count=end - start, offset=start)
    return int(region.max()) <= _HIGHEST_NUMBER_BYTE


def _numeric(raw: list[Any], name: str, reply: ReplyContext, plain: bool) -> npt.NDArray[Any]:
    """The matrix of ``raw`` when every value is an ``int`` or a ``float``, else the
    :class:`ResponseFormatError` naming the first bad row (the exact, slower path).
    ``plain`` (see :func:`plain_numbers`): the text held no boolean, so none is looked for."""
    try:
        # No dtype: numpy then keeps strings and nulls visible (kinds U / O) instead of
        # converting them, and a ragged matrix fails.
        matrix = np.asarray(raw)
    except ValueError:
        matrix = np.asarray([], dtype=object)
    if matrix.ndim != 2 or matrix.dtype.kind not in "fiub":
        bad = _first_bad_row(raw, _is_not_number)
        if bad >= 0:
            raise reply.format_error(f"{name}[{bad}] holds a value that is not a number")
        lengths = sorted({len(r) for r in raw})
        if len(lengths) > 1:
            raise reply.format_error(f"{name} rows differ in length ({lengths})")
        raise reply.format_error(f"{name} holds a number out of range")
    bad = -1 if plain else _first_bad_row(raw, lambda v: isinstance(v, bool))
    if bad >= 0:
        raise reply.format_error(f"{name}[{bad}] holds a boolean, not a number")
    return matrix


def dense_matrix(
    raw: object,
    *,
    name: str,
    rows: int,
    reply: ReplyContext,
    dimension: int | None = None,
    dtype: npt.DTypeLike = np.float32,
    plain: bool = False,
) -> npt.NDArray[Any]:
    """Read one reply matrix strictly: ``rows`` rows of numbers, each of ``dimension``
    values (when given) and at least one; no booleans, strings or nulls.

    ``plain``: :func:`plain_numbers` proved the value's text holds numbers only, so
    numpy converts it straight to ``dtype`` (the common, fast case).
    """
    if not isinstance(raw, list):
        raise reply.format_error(f"{name} is not a list of vectors")
    if len(raw) != rows:
        raise reply.format_error(f"{name} has {len(raw)} rows, expected {rows}")
    if rows == 0:
        return np.zeros((0, dimension or 0), dtype)
    matrix: npt.NDArray[Any] | None = None
    if plain and np.dtype(dtype).kind == "f":
        try:
            with np.errstate(over="ignore"):
                matrix = np.asarray(raw, dtype=dtype)
        except (ValueError, TypeError, OverflowError):
            matrix = None
        if matrix is not None and matrix.ndim != 2:
            matrix = None
    if matrix is None:
        matrix = _numeric(raw, name, reply, plain)
    width = matrix.shape[1]
    if width == 0:
        raise reply.format_error(f"{name}[0] is an empty vector")
    if dimension is not None and width != dimension:
        raise reply.format_error(
            f"{name}[0] has {width} dimensions, expected {dimension} for this request"
        )
    if np.dtype(dtype).kind in "iu":
        info = np.iinfo(np.dtype(dtype))
        if matrix.dtype.kind == "f" and not np.array_equal(matrix, np.round(matrix)):
            raise reply.format_error(f"{name} holds fractions where integers are expected")
        if matrix.min() < info.min or matrix.max() > info.max:
            raise reply.format_error(f"{name} values out of range {info.min}..{info.max}")
        return matrix.astype(dtype, copy=False)
    with np.errstate(over="ignore"):
        converted = matrix.astype(dtype, copy=False)
    finite = np.isfinite(converted).all(axis=1)
    if not finite.all():
        # JSON has no NaN or infinity: only a number past the float range gets here.
        bad = int(np.flatnonzero(~finite)[0])
        raise reply.format_error(f"{name}[{bad}] holds a value out of the float32 range")
    return converted
