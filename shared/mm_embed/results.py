"""Result types: what every client call returns.

Dense vectors are numpy matrices, one per embedding type (``float`` -> float32,
``int8`` -> int8, ``uint8`` -> uint8), rows in the caller's order. Sparse vectors keep the
provider's token -> weight map and expose a stable integer mapping for vector stores.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from .errors import ResponseFormatError

__all__ = [
    "EmbeddingResult",
    "EmbeddingType",
    "ImageInfo",
    "ReplyMeta",
    "ResultMeta",
    "SparseVector",
    "Usage",
    "UsageMeter",
    "sparse_index",
]

EmbeddingType = Literal["float", "int8", "uint8"]

DTYPES: dict[str, npt.DTypeLike] = {"float": np.float32, "int8": np.int8, "uint8": np.uint8}

#: Non-numeric tokens map into [2**30, 2**31) so they never collide with a numeric token id
#: below 2**30 (every real vocabulary); the result still fits a signed 32-bit index.
_HASHED_TOKEN_BASE = 1 << 30


def sparse_index(token: str) -> int:
    """Map a sparse token key to a stable non-negative 31-bit integer index.

    The mapping is documented and stable across processes and versions:

    * a key made only of ASCII digits whose value is below 2**30 maps to that integer
      (Viking returns token ids as strings for some models: ``"71277" -> 71277``);
    * any other key maps to ``2**30 + (blake2b-64(utf8(key)) mod 2**30)``.
    """
    if token.isascii() and token.isdigit():
        value = int(token)
        if value < _HASHED_TOKEN_BASE:
            return value
    digest = hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest()
    return _HASHED_TOKEN_BASE + int.from_bytes(digest, "big") % _HASHED_TOKEN_BASE


@dataclass(frozen=True)
class SparseVector:
    """One sparse vector: the provider's ``{token: weight}`` map plus integer indices.

    ``indices``/``values`` are sorted by index and unique; two tokens that hash to one
    index (astronomically rare) have their weights summed.
    """

    weights: Mapping[str, float]
    indices: tuple[int, ...] = field(init=False)
    values: tuple[float, ...] = field(init=False)

    def __post_init__(self) -> None:
        merged: dict[int, float] = {}
        for token, weight in self.weights.items():
            index = sparse_index(token)
            merged[index] = merged.get(index, 0.0) + float(weight)
        ordered = sorted(merged.items())
        object.__setattr__(self, "indices", tuple(i for i, _ in ordered))
        object.__setattr__(self, "values", tuple(v for _, v in ordered))

    def __len__(self) -> int:
        return len(self.indices)

    def dot(self, other: SparseVector) -> float:
        """Dot product with another sparse vector (over the integer indices)."""
        theirs = dict(zip(other.indices, other.values, strict=True))
        return float(
            sum(v * theirs.get(i, 0.0) for i, v in zip(self.indices, self.values, strict=True))
        )

    def to_dict(self) -> dict[int, float]:
        """``{index: value}``, the form Milvus and many stores take."""
        return dict(zip(self.indices, self.values, strict=True))


@dataclass
class Usage:
    """Tokens and images billed, summed over every wire request of a call."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    image_tokens: int = 0
    images: int = 0
    #: Per-model usage for the Viking ``*-and-m3`` hybrids (``model_token_usage``).
    by_model: dict[str, Usage] = field(default_factory=dict)

    def __add__(self, other: Usage) -> Usage:
        by_model = dict(self.by_model)
        for name, usage in other.by_model.items():
            by_model[name] = by_model[name] + usage if name in by_model else usage
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            total_tokens=self.total_tokens + other.total_tokens,
            image_tokens=self.image_tokens + other.image_tokens,
            images=self.images + other.images,
            by_model=by_model,
        )


class UsageMeter:
    """A running total of :class:`Usage`, safe to feed from threads and tasks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._total = Usage()

    def add(self, usage: Usage) -> None:
        with self._lock:
            self._total = self._total + usage

    @property
    def total(self) -> Usage:
        with self._lock:
            return self._total


@dataclass(frozen=True)
class ImageInfo:
    """Image metadata as the provider reports it (FG-CLIP ``data.images``)."""

    width: int
    height: int
    format: str
    bit_depth: int | None = None


@dataclass(frozen=True)
class ReplyMeta:
    """What one wire reply said about itself (FG-CLIP sends these; names as on the wire)."""

    request_id: str | None = None
    #: ``data.created``: when the reply was made, ``%Y-%m-%d %H:%M:%S.%f``.
    created: str | None = None
    #: ``data.meta.api_version.version``.
    api_version: str | None = None
    #: ``data.meta.latencys``, as sent (the provider's spelling; often ``null``).
    latencys: Any = None
    #: ``context.timestamp``: Unix seconds.
    timestamp: float | None = None


@dataclass(frozen=True)
class ResultMeta:
    """Provider metadata of a call, merged over its wire requests.

    ``replies`` holds each request's :class:`ReplyMeta` in request order; the properties
    summarise them: the API version(s) that answered, the earliest ``created`` and
    ``timestamp``, and every reply's ``latencys``.
    """

    replies: tuple[ReplyMeta, ...] = ()

    @property
    def api_version(self) -> str | None:
        """The API version that answered (distinct versions joined by ``", "``)."""
        versions = dict.fromkeys(r.api_version for r in self.replies if r.api_version)
        return ", ".join(versions) or None

    @property
    def created(self) -> str | None:
        """The earliest ``created`` of the replies."""
        return min((r.created for r in self.replies if r.created), default=None)

    @property
    def timestamp(self) -> float | None:
        """The earliest ``context.timestamp`` of the replies."""
        return min((r.timestamp for r in self.replies if r.timestamp is not None), default=None)

    @property
    def latencys(self) -> list[Any]:
        """Each reply's ``latencys``, in request order."""
        return [r.latencys for r in self.replies]

    def __add__(self, other: ResultMeta) -> ResultMeta:
        return ResultMeta(self.replies + other.replies)


@dataclass
class EmbeddingResult:
    """Everything one client call produced, rows in the caller's order.

    * ``dense``: ``{"float": float32[n, d], "int8": int8[n, d], "uint8": uint8[n, d]}``,
      only the types that were asked for.
    * ``sparse``: one :class:`SparseVector` per row, or ``None`` when not asked for.
    * ``input_indices``: for each row, the index of the caller's input it belongs to.
      With FG-CLIP boxes an image yields one row per box, so several rows share an index.
    * ``box_indices``: for each row, the box's position within its image, ``-1`` for a
      whole-image (global) row; ``None`` when no boxes were involved.
    * ``usage``, ``request_ids`` (one per wire request, in order), ``images`` (provider
      image metadata per input image, FG-CLIP), ``text_lengths`` (FG-CLIP ``data.texts``).
    * ``meta``: provider metadata of the replies (:class:`ResultMeta`).
    * ``model_usage``: usage per underlying model (Viking ``model_token_usage``).
    """

    dense: dict[str, npt.NDArray[Any]] = field(default_factory=dict)
    sparse: list[SparseVector] | None = None
    input_indices: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    box_indices: npt.NDArray[np.int64] | None = None
    usage: Usage = field(default_factory=Usage)
    request_ids: list[str] = field(default_factory=list)
    images: list[ImageInfo | None] | None = None
    text_lengths: list[int] | None = None
    model: str | None = None
    meta: ResultMeta = field(default_factory=ResultMeta)

    def __len__(self) -> int:
        return len(self.input_indices)

    @property
    def embeddings(self) -> npt.NDArray[Any]:
        """The dense matrix: ``float`` when present, else the first type returned."""
        if "float" in self.dense:
            return self.dense["float"]
        if self.dense:
            return next(iter(self.dense.values()))
        raise AttributeError("this result has no dense vectors (return_dense was off)")

    @property
    def model_usage(self) -> dict[str, Usage]:
        """Usage per underlying model, summed over the call's requests (Viking's
        ``model_token_usage``; asked for with ``return_model_token_usage=True``)."""
        return self.usage.by_model

    @property
    def dimension(self) -> int | None:
        """The dense dimension read from the response, or ``None``."""
        return int(self.embeddings.shape[1]) if self.dense else None

    def as_float_lists(self, embedding_type: str | None = None) -> list[list[float]]:
        """Rows as ``list[float]`` (int8/uint8 are cast, never dropped) for frameworks."""
        matrix = self.dense[embedding_type] if embedding_type else self.embeddings
        return matrix.astype(np.float64, copy=False).tolist()  # type: ignore[no-any-return]

    def rows_for_input(self, index: int) -> npt.NDArray[np.int64]:
        """Row numbers that belong to caller input ``index`` (several for boxes)."""
        return np.flatnonzero(self.input_indices == index)

    def __iter__(self) -> Iterator[npt.NDArray[Any]]:
        return iter(self.embeddings)

    @classmethod
    def empty(cls, embedding_types: Iterable[str] = ("float",)) -> EmbeddingResult:
        return cls(dense={t: np.zeros((0, 0), DTYPES[t]) for t in embedding_types})

    @classmethod
    def concat(cls, parts: Sequence[EmbeddingResult]) -> EmbeddingResult:
        """Stack results row-wise, in the given order (their ``input_indices`` are kept)."""
        if not parts:
            return cls()
        if len(parts) == 1:
            return parts[0]
        first = parts[0]
        _check_widths(parts)
        dense = {}
        for name in first.dense:
            matrices = [p.dense[name] for p in parts if len(p)]
            dense[name] = np.concatenate(matrices) if matrices else first.dense[name]
        sparse: list[SparseVector] | None = None
        if any(p.sparse is not None for p in parts):
            sparse = [v for p in parts for v in (p.sparse or [])]
        box_indices = None
        if any(p.box_indices is not None for p in parts):
            box_indices = np.concatenate(
                [
                    p.box_indices if p.box_indices is not None else np.full(len(p), -1, np.int64)
                    for p in parts
                ]
            )
        usage = Usage()
        for part in parts:
            usage = usage + part.usage
        return cls(
            dense=dense,
            sparse=sparse,
            input_indices=np.concatenate([p.input_indices for p in parts]),
            box_indices=box_indices,
            usage=usage,
            request_ids=[r for p in parts for r in p.request_ids],
            images=_concat_optional([p.images for p in parts]),
            text_lengths=_concat_optional([p.text_lengths for p in parts]),
            model=first.model,
            meta=ResultMeta(tuple(r for p in parts for r in p.meta.replies)),
        )

    def take(self, rows: npt.NDArray[np.int64] | Sequence[int]) -> EmbeddingResult:
        """A new result holding only ``rows`` (in that order); usage and ids are kept."""
        rows = np.asarray(rows, dtype=np.int64)
        return replace(
            self,
            dense={k: v[rows] for k, v in self.dense.items()},
            sparse=[self.sparse[i] for i in rows] if self.sparse is not None else None,
            input_indices=self.input_indices[rows],
            box_indices=self.box_indices[rows] if self.box_indices is not None else None,
            request_ids=list(self.request_ids),
        )


def _check_widths(parts: Sequence[EmbeddingResult]) -> None:
    """Every request of one call must answer with the same dimension."""
    widths: dict[str, tuple[int, EmbeddingResult]] = {}
    for part in parts:
        if not len(part):
            continue
        for name, matrix in part.dense.items():
            seen = widths.setdefault(name, (matrix.shape[1], part))
            if matrix.shape[1] != seen[0]:
                ids = ", ".join(part.request_ids) or "unknown"
                raise ResponseFormatError(
                    f"{name} vectors of request {ids} have {matrix.shape[1]} dimensions where "
                    f"request {', '.join(seen[1].request_ids) or 'unknown'} had {seen[0]} "
                    f"(first differing row: input {int(part.input_indices[0])})",
                    request_id=part.request_ids[0] if part.request_ids else None,
                )


def _concat_optional(lists: Sequence[list[Any] | None]) -> list[Any] | None:
    if all(item is None for item in lists):
        return None
    return [x for item in lists for x in (item or [])]
