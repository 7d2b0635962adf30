"""360 FG-CLIP embedding API, sans-I/O: request bodies in, results or errors out.

Nothing here opens a socket or decodes an image: the client hands in images already
loaded and checked by :mod:`mm_embed.inputs`, and this module only turns them into the
wire's strings, builds bodies and reads replies.
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import numpy.typing as npt

from ...errors import InputError
from ...inputs import PreparedImage
from ...results import DTYPES, EmbeddingResult, ImageInfo, ReplyMeta, ResultMeta, Usage
from .._wire import ReplyContext, dense_matrix, plain_numbers, raise_status, read_json_object
from .catalogue import (
    DEFAULT_MODEL,
    EMBEDDING_TYPES,
    IMAGE_FORMATS,
    LOGIT_BIAS,
    LOGIT_SCALE,
    TRUNCATE_MODES,
    URL_SUFFIXES,
)

__all__ = [
    "build_image_body",
    "build_text_body",
    "check_image_url",
    "image_wire",
    "parse_response",
    "probability",
    "validate_embedding_types",
    "validate_truncate",
]


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
    """``"none"`` or ``"start"``."""
    if truncate not in TRUNCATE_MODES:
        raise InputError(
            f"unknown truncate mode {truncate!r}", field="truncate", limit=", ".join(TRUNCATE_MODES)
        )
    return str(truncate)


def check_image_url(url: str, *, field: str, index: int) -> None:
    """FG-CLIP's URL rule: http(s), a domain-name host (not an IP address), and the whole
    URL ending in jpg, jpeg, png or bmp (so no query string or fragment after it)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise InputError(f"unsupported URL scheme {parts.scheme!r}", field=field, index=index)
    host = parts.hostname or ""
    if not host:
        raise InputError("URL has no host", field=field, index=index)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        raise InputError(
            f"URL host {host!r} is an IP address; FG-CLIP takes domain names only",
            field=field,
            index=index,
        )
    if parts.query or parts.fragment or not parts.path.lower().endswith(URL_SUFFIXES):
        after = (
            " with nothing after it (no query string or fragment)"
            if (parts.query or parts.fragment)
            else ""
        )
        raise InputError(
            f"image URL must end in jpg, jpeg, png or bmp{after}; download the image and "
            "pass the file, bytes or a data URI (data:image/png;base64,...) instead",
            field=field,
            index=index,
            limit="|".join(s.lstrip(".") for s in URL_SUFFIXES),
        )


def image_wire(image: PreparedImage, *, field: str, index: int) -> str:
    """The string FG-CLIP takes for an image: its URL, or ``data:image/<fmt>;base64,...``."""
    if image.kind == "url":
        assert image.url is not None
        check_image_url(image.url, field=field, index=index)
        return image.url
    if image.kind == "tos":
        raise InputError(
            "FG-CLIP does not read tos:// objects; pass a URL, a file or bytes",
            field=field,
            index=index,
        )
    assert image.data is not None and image.format in IMAGE_FORMATS
    payload = base64.b64encode(image.data).decode("ascii")
    return f"data:image/{IMAGE_FORMATS[image.format]};base64,{payload}"


def _body(
    model: str, input_type: str, embedding_types: Sequence[str], **inputs: Any
) -> dict[str, Any]:
    """The fields every request starts with, then ``inputs`` in their order."""
    return {
        "model": model,
        "input_type": input_type,
        "embedding_types": list(embedding_types),
        **inputs,
    }


def build_text_body(
    texts: Sequence[str],
    *,
    model: str = DEFAULT_MODEL,
    embedding_types: Sequence[str],
    truncate: str,
    text_box_flag: bool,
) -> dict[str, Any]:
    """The body of one text request."""
    body = _body(model, "text", embedding_types, texts=list(texts), truncate=truncate)
    if text_box_flag:
        body["text_box_flag"] = True
    return body


def build_image_body(
    images: Sequence[str],
    *,
    model: str = DEFAULT_MODEL,
    embedding_types: Sequence[str],
    boxes: Sequence[Sequence[Sequence[float]]] | None = None,
) -> dict[str, Any]:
    """Images as wire strings; ``boxes`` (3-D, one list per image) asks for box features."""
    body = _body(model, "image", embedding_types, images=list(images))
    if boxes is not None:
        if len(boxes) != len(images):
            raise ValueError("image_boxes needs one entry per image")
        body["image_boxes"] = [[list(b) for b in per_image] for per_image in boxes]
    return body


def probability(cosine: npt.ArrayLike) -> Any:
    """Text-image match probability from a cosine: ``sigmoid(115.5843 * cos - 16.75)``.

    Takes a number or an array; returns a ``float`` for a number, an array otherwise.
    """
    values = np.asarray(cosine, dtype=np.float64)
    result = 1.0 / (1.0 + np.exp(-(LOGIT_SCALE * values + LOGIT_BIAS)))
    return float(result) if result.ndim == 0 else result


def _check_envelope(reply: ReplyContext, payload: dict[str, Any]) -> None:
    """Raise for an error reply: non-2xx, or a non-zero ``context.code`` even on 200."""
    context = payload.get("context")
    if not isinstance(context, dict):
        if reply.status_code >= 300:
            raise_status(reply, None)
        raise reply.format_error("reply has no 'context' object")
    code = context.get("code")
    if reply.status_code >= 300 or code not in (0, None):
        error_code = code if isinstance(code, (int, str)) and not isinstance(code, bool) else None
        raise_status(reply, context.get("message"), error_code)


def _usage(meta: dict[str, Any]) -> Usage:
    billed = meta.get("billed_units")
    billed = billed if isinstance(billed, dict) else {}

    def num(key: str) -> int:
        value = billed.get(key)
        return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0

    return Usage(
        prompt_tokens=num("input_tokens"),
        total_tokens=num("input_tokens") + num("output_tokens"),
        images=num("images"),
    )


def _image_infos(raw: object) -> list[ImageInfo | None] | None:
    if not isinstance(raw, list):
        return None
    infos: list[ImageInfo | None] = []
    for entry in raw:
        try:
            infos.append(
                ImageInfo(
                    int(entry["width"]),
                    int(entry["height"]),
                    str(entry.get("format", "")),
                    entry.get("bit_depth"),
                )
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            infos.append(None)
    return infos


def _reply_meta(payload: dict[str, Any], data: dict[str, Any], request_id: str | None) -> ReplyMeta:
    meta = data.get("meta") if isinstance(data.get("meta"), dict) else {}
    assert isinstance(meta, dict)
    version = meta.get("api_version")
    timestamp = payload["context"].get("timestamp")
    created = data.get("created")
    return ReplyMeta(
        request_id=request_id,
        created=created if isinstance(created, str) else None,
        api_version=str(version["version"])
        if isinstance(version, dict) and "version" in version
        else (version if isinstance(version, str) else None),
        latencys=meta.get("latencys"),
        timestamp=timestamp
        if isinstance(timestamp, (int, float)) and not isinstance(timestamp, bool)
        else None,
    )


def parse_response(
    status_code: int,
    content: bytes,
    *,
    expected_rows: int,
    embedding_types: Sequence[str],
    model: str = DEFAULT_MODEL,
    retry_after: float | None = None,
    dimension: int | None = None,
) -> EmbeddingResult:
    """Parse one reply; a non-zero ``context.code`` raises even on HTTP 200.

    ``dimension``: the width every vector must have, when already known (from an
    earlier request of the same call); the first reply sets it otherwise.
    """
    reply = ReplyContext(status_code, retry_after=retry_after)
    payload = read_json_object(reply, content)
    data = payload.get("data")
    if isinstance(data, dict) and isinstance(data.get("id"), str):
        reply.request_id = data["id"]
    _check_envelope(reply, payload)
    if not isinstance(data, dict) or not isinstance(data.get("embeddings"), dict):
        raise reply.format_error("reply has no 'data.embeddings' object")
    dense = {
        name: dense_matrix(
            data["embeddings"].get(name),
            name=f"embeddings.{name}",
            rows=expected_rows,
            reply=reply,
            dimension=dimension,
            dtype=DTYPES[name],
            plain=plain_numbers(content, f'"{name}"'.encode()),
        )
        for name in embedding_types
    }
    text_lengths: list[int] | None = None
    if isinstance(data.get("texts"), list):
        try:
            text_lengths = [int(t) for t in data["texts"]]
        except (TypeError, ValueError):
            text_lengths = None
    meta = data.get("meta") if isinstance(data.get("meta"), dict) else {}
    return EmbeddingResult(
        dense=dense,
        input_indices=np.arange(expected_rows, dtype=np.int64),
        usage=_usage(meta if isinstance(meta, dict) else {}),
        request_ids=[reply.request_id] if reply.request_id else [],
        images=_image_infos(data.get("images")),
        text_lengths=text_lengths,
        model=model,
        meta=ResultMeta((_reply_meta(payload, data, reply.request_id),)),
    )
