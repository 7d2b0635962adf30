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

__all__ = ["ReplyContext", "dense_matrix", "dumps", "raise_status", "read_json_object"]


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


def dense_matrix(
    raw: object,
    *,
    name: str,
    rows: int,
    reply: ReplyContext,
    dimension: int | None = None,
    dtype: npt.DTypeLike = np.float32,
    body: bytes = b"",
) -> npt.NDArray[Any]:
    """Read one reply matrix strictly: ``rows`` rows of numbers, each of ``dimension``
    values (when given) and at least one; no booleans, strings or nulls.

    ``body`` (the raw reply) lets the common case skip the per-value scan: JSON booleans
    can only hide among the numbers when ``true`` or ``false`` occur in the body.
    """
    if not isinstance(raw, list):
        raise reply.format_error(f"{name} is not a list of vectors")
    if len(raw) != rows:
        raise reply.format_error(f"{name} has {len(raw)} rows, expected {rows}")
    if rows == 0:
        return np.zeros((0, dimension or 0), dtype)
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
    if matrix.dtype.kind == "b" or (b"true" in body or b"false" in body):
        bad = _first_bad_row(raw, lambda v: isinstance(v, bool))
        if bad >= 0:
            raise reply.format_error(f"{name}[{bad}] holds a boolean, not a number")
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
