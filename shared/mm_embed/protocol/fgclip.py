"""360 FG-CLIP embedding API, sans-I/O: limits, request bodies, response parsing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson

from ..errors import InputError, ResponseFormatError, status_error_class
from ..results import DTYPES, EmbeddingResult, ImageInfo, Usage

__all__ = [
    "DEFAULT_BASE_URL",
    "EMBEDDING_TYPES",
    "MAX_ITEMS",
    "MAX_TEXT_TOKENS",
    "MODEL",
    "PATH",
    "TRUNCATE_MODES",
    "build_image_body",
    "build_text_body",
    "parse_response",
    "probability",
    "validate_embedding_types",
    "validate_truncate",
]

DEFAULT_BASE_URL = "https://api.research.360.cn"
PATH = "/models/interface"
MODEL = "fg-clip"
MAX_ITEMS = 32
MAX_TEXT_TOKENS = 196
#: Not stated by the provider; we keep bodies under 4 MB like Viking (configurable).
MAX_BODY_BYTES = 4 * 1024 * 1024
EMBEDDING_TYPES = ("float", "int8", "uint8")
TRUNCATE_MODES = ("none", "start")
#: The provider's published text-image logit scale and bias.
LOGIT_SCALE = 115.5843
LOGIT_BIAS = -16.75


def validate_embedding_types(embedding_types: object) -> list[str]:
    """A non-empty list of distinct names among ``float``, ``int8``, ``uint8``."""
    if isinstance(embedding_types, str):
        embedding_types = [embedding_types]
    if not isinstance(embedding_types, Sequence) or not embedding_types:
        raise InputError(
            "at least one embedding type is needed",
            field="embedding_types",
            limit=", ".join(EMBEDDING_TYPES),
        )
    checked: list[str] = []
    for i, name in enumerate(embedding_types):
        if name not in EMBEDDING_TYPES:
            raise InputError(
                f"unknown embedding type {name!r}",
                field="embedding_types",
                index=i,
                limit=", ".join(EMBEDDING_TYPES),
            )
        if name not in checked:
            checked.append(name)
    return checked


def validate_truncate(truncate: object) -> str:
    if truncate not in TRUNCATE_MODES:
        raise InputError(
            f"unknown truncate mode {truncate!r}", field="truncate", limit="none, start"
        )
    return str(truncate)


def build_text_body(
    texts: Sequence[str], *, embedding_types: Sequence[str], truncate: str, text_box_flag: bool
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": MODEL,
        "input_type": "text",
        "embedding_types": list(embedding_types),
        "texts": list(texts),
        "truncate": truncate,
    }
    if text_box_flag:
        body["text_box_flag"] = True
    return body


def build_image_body(
    images: Sequence[str],
    *,
    embedding_types: Sequence[str],
    boxes: Sequence[Sequence[Sequence[float]]] | None = None,
) -> dict[str, Any]:
    """Images as wire strings; ``boxes`` (3-D, one list per image) asks for box features."""
    body: dict[str, Any] = {
        "model": MODEL,
        "input_type": "image",
        "embedding_types": list(embedding_types),
        "images": list(images),
    }
    if boxes is not None:
        if len(boxes) != len(images):
            raise ValueError("image_boxes needs one entry per image")
        body["image_boxes"] = [[list(b) for b in per_image] for per_image in boxes]
    return body


def probability(cosine: np.ndarray | float) -> np.ndarray | float:
    """Text-image match probability: ``sigmoid(115.5843 * cos - 16.75)``."""
    return 1.0 / (1.0 + np.exp(-(LOGIT_SCALE * np.asarray(cosine) + LOGIT_BIAS)))


def parse_response(
    status_code: int,
    content: bytes,
    *,
    expected_rows: int,
    embedding_types: Sequence[str],
    retry_after: float | None = None,
) -> EmbeddingResult:
    """Parse one reply; a non-zero ``context.code`` raises even on HTTP 200."""
    try:
        payload = orjson.loads(content)
    except orjson.JSONDecodeError:
        payload = None
    if not isinstance(payload, dict):
        if status_code >= 300:  # an unexpected redirect is not a garbled body: not retried
            cls = status_error_class(status_code)
            raise cls(
                f"HTTP {status_code} with an unreadable body",
                status_code=status_code,
                retry_after=retry_after,
            )
        raise ResponseFormatError("reply is not a JSON object", status_code=status_code)
    context = payload.get("context")
    data = payload.get("data")
    request_id = (
        data.get("id") if isinstance(data, dict) and isinstance(data.get("id"), str) else None
    )
    code = context.get("code") if isinstance(context, dict) else None
    if (
        status_code >= 300
        or code not in (0, None)
        or (status_code == 200 and not isinstance(context, dict))
    ):
        message = context.get("message") if isinstance(context, dict) else None
        if not isinstance(context, dict) and status_code < 300:
            raise ResponseFormatError(
                "reply has no 'context' object", status_code=status_code, request_id=request_id
            )
        error_code = code if isinstance(code, (int, str)) and not isinstance(code, bool) else None
        cls = status_error_class(status_code, error_code if isinstance(error_code, int) else None)
        raise cls(
            str(message) if message else f"HTTP {status_code}",
            status_code=status_code,
            code=error_code,
            request_id=request_id,
            retry_after=retry_after,
        )
    if not isinstance(data, dict) or not isinstance(data.get("embeddings"), dict):
        raise ResponseFormatError(
            "reply has no 'data.embeddings' object", status_code=status_code, request_id=request_id
        )
    dense: dict[str, np.ndarray] = {}
    for name in embedding_types:
        raw = data["embeddings"].get(name)
        try:
            matrix = np.asarray(raw, dtype=np.float32 if name == "float" else np.int64)
        except (TypeError, ValueError, OverflowError):  # overflow: past int64 in int8/uint8
            raise ResponseFormatError(
                f"embeddings.{name} is not a numeric matrix",
                status_code=status_code,
                request_id=request_id,
            ) from None
        if matrix.ndim != 2 or matrix.shape[0] != expected_rows:
            raise ResponseFormatError(
                f"embeddings.{name} has shape {matrix.shape}, expected {expected_rows} rows",
                status_code=status_code,
                request_id=request_id,
            )
        if name == "float" and not np.isfinite(matrix).all():
            # JSON has no NaN: a non-finite value can only be a null inside a vector.
            raise ResponseFormatError(
                f"embeddings.{name} holds null or non-finite values",
                status_code=status_code,
                request_id=request_id,
            )
        if name != "float":
            info = np.iinfo(DTYPES[name])
            if matrix.size and (matrix.min() < info.min or matrix.max() > info.max):
                raise ResponseFormatError(
                    f"embeddings.{name} values out of range",
                    status_code=status_code,
                    request_id=request_id,
                )
            matrix = matrix.astype(DTYPES[name])
        dense[name] = matrix
    meta: dict[str, Any] = data["meta"] if isinstance(data.get("meta"), dict) else {}
    billed: dict[str, Any] = (
        meta["billed_units"] if isinstance(meta.get("billed_units"), dict) else {}
    )

    def num(key: str) -> int:
        value = billed.get(key)
        return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0

    usage = Usage(
        prompt_tokens=num("input_tokens"),
        total_tokens=num("input_tokens") + num("output_tokens"),
        images=num("images"),
    )
    images: list[ImageInfo | None] | None = None
    if isinstance(data.get("images"), list):
        images = []
        for entry in data["images"]:
            try:
                images.append(
                    ImageInfo(
                        int(entry["width"]),
                        int(entry["height"]),
                        str(entry.get("format", "")),
                        entry.get("bit_depth"),
                    )
                )
            except (KeyError, TypeError, ValueError):
                images.append(None)
    text_lengths: list[int] | None = None
    if isinstance(data.get("texts"), list):
        try:
            text_lengths = [int(t) for t in data["texts"]]
        except (TypeError, ValueError):
            text_lengths = None
    return EmbeddingResult(
        dense=dense,
        input_indices=np.arange(expected_rows, dtype=np.int64),
        usage=usage,
        request_ids=[request_id] if request_id else [],
        images=images,
        text_lengths=text_lengths,
        model=MODEL,
    )
