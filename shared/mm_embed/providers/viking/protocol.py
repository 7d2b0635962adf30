"""VikingDB embedding v2, sans-I/O: the model parameters, wire items and bodies, and
response parsing.

Nothing here opens a socket or reads a file: the client loads images and videos with
:mod:`mm_embed.inputs` first and hands in items whose media are already
:class:`~mm_embed.inputs.PreparedImage` / :class:`~mm_embed.inputs.PreparedMedia`.
``resolve_request`` validates the model parameters once per call, ``check_kind`` an
input's type against the model (before anything is loaded), ``build_item`` makes one
wire item, ``build_body`` a request body, and ``parse_response`` turns status + body
bytes into an :class:`EmbeddingResult` or raises the matching error.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from ...errors import InputError
from ...inputs import (
    FullModalItem,
    ImageItem,
    PreparedImage,
    PreparedMedia,
    TextImageItem,
    TextItem,
    VideoItem,
    check_text,
)
from ...results import EmbeddingResult, SparseVector, Usage
from .._wire import ReplyContext, dense_matrix, plain_numbers, raise_status, read_json_object
from .catalogue import (
    FPS_RANGE,
    FULL_MODAL,
    IMAGE,
    MODELS,
    TEXT,
    TEXT_IMAGE,
    ModelSpec,
    ModelVersion,
)

__all__ = [
    "IMAGE_TOKEN_ESTIMATE",
    "ResolvedRequest",
    "WireItem",
    "build_body",
    "build_item",
    "check_kind",
    "estimate_tokens",
    "get_model",
    "parse_response",
    "resolve_request",
]

#: Estimated tokens per image, before the reply's usage corrects it.
IMAGE_TOKEN_ESTIMATE = 256
#: Estimated tokens per video (the server samples at least 16 frames).
VIDEO_TOKEN_ESTIMATE = 16 * IMAGE_TOKEN_ESTIMATE
_ALL_TYPES = frozenset({TEXT, IMAGE, TEXT_IMAGE, FULL_MODAL})


def get_model(name: str) -> ModelSpec:
    """The catalogue entry for ``name``, or an :class:`InputError` listing the known models."""
    try:
        return MODELS[name]
    except KeyError:
        raise InputError(
            f"unknown model {name!r}", field="model", limit=", ".join(sorted(MODELS))
        ) from None


def _uncatalogued(name: str, model_version: str | None, dimension: int | None) -> ModelSpec:
    """A permissive spec for a model the catalogue does not know (``strict=False``)."""
    version = ModelVersion(
        dimension=dimension or 0,
        dimensions=frozenset([dimension] if dimension else []),
        data_types=_ALL_TYPES,
        video=True,
        context_tokens=0,
    )
    key = model_version or "default"
    return ModelSpec(
        name=name, versions={key: version}, default_version=key, sparse=True, http_media=True
    )


@dataclass(frozen=True)
class ResolvedRequest:
    """The model parameters of a call, validated once for all its batches.

    ``notes`` are warnings the client shows once per process (a retiring version, an
    uncatalogued model sent as asked).
    """

    spec: ModelSpec
    version: ModelVersion
    model_version: str | None
    params: dict[str, Any]
    return_dense: bool
    return_sparse: bool
    #: The dense width every reply must have (``None``: not known, uncatalogued model).
    expected_dimension: int | None
    notes: tuple[str, ...] = ()

    @property
    def shown_version(self) -> str:
        """`` version X`` for messages about multi-version models, else ``""``."""
        return (
            f" version {self.model_version or self.spec.default_version}"
            if self.spec.multi_version
            else ""
        )


def _pick_version(
    spec: ModelSpec, model_version: str | None, strict: bool, notes: list[str]
) -> ModelVersion:
    key = model_version or spec.default_version
    if key in spec.versions:
        version = spec.versions[key]
        if version.retiring:
            notes.append(
                f"{spec.name} version {key} is marked as being retired (待下线) on the "
                "provider's page"
                + (
                    "; it is what the server uses when no model_version is sent"
                    if model_version is None
                    else ""
                )
                + f"; pick another: {', '.join(v for v in spec.versions if not spec.versions[v].retiring)}"
            )
        return version
    if strict:
        raise InputError(
            f"model {spec.name!r} has no version {model_version!r}",
            field="model_version",
            limit=", ".join(v for v in sorted(spec.versions) if v != "default") or "no versions",
        )
    notes.append(f"{spec.name} version {model_version!r} is not in the catalogue; sent as asked")
    base = spec.versions[spec.default_version]
    return ModelVersion(0, frozenset(), base.data_types, base.video, base.context_tokens)


def _check_dimension(
    request_model: str,
    shown: str,
    version: ModelVersion,
    dimension: int | None,
    strict: bool,
    notes: list[str],
) -> int | None:
    """The dense width the replies must have, after checking ``dimension``."""
    if dimension is None:
        return version.dimension or None
    is_int = isinstance(dimension, int) and not isinstance(dimension, bool)
    if is_int and dimension in version.dimensions:
        return dimension
    if strict or not is_int or dimension < 1:
        raise InputError(
            f"model {request_model!r}{shown} cannot return {dimension!r} dimensions",
            field="dimension",
            limit=", ".join(str(d) for d in sorted(version.dimensions)) or "unknown",
        )
    if version.dimensions:
        notes.append(
            f"{request_model}{shown}: dimension {dimension} is not in the catalogue; sent as asked"
        )
    return dimension


def resolve_request(
    *,
    model: str,
    model_version: str | None = None,
    dimension: int | None = None,
    return_dense: bool = True,
    return_sparse: bool | None = None,
    return_token_usage: bool = False,
    return_model_token_usage: bool = False,
    strict: bool = True,
) -> ResolvedRequest:
    """Validate the model parameters against the catalogue and build ``model.params``.

    ``return_sparse=None`` means "what the model does by default" (on for sparse
    models). ``strict=False`` lets a model, version or dimension the catalogue does not
    know go to the server (with a note to warn about) instead of refusing it.
    """
    notes: list[str] = []
    if model in MODELS:
        spec = MODELS[model]
    elif strict:
        spec = get_model(model)
    else:
        spec = _uncatalogued(model, model_version, dimension)
        notes.append(f"model {model!r} is not in the catalogue; sent as asked")
    version = _pick_version(spec, model_version, strict, notes)
    shown = f" version {model_version or spec.default_version}" if spec.multi_version else ""
    sparse = (spec.sparse and model in MODELS) if return_sparse is None else bool(return_sparse)
    if sparse and not spec.sparse:
        raise InputError(
            f"model {model!r} has no sparse vectors",
            field="return_sparse",
            limit=", ".join(n for n, s in MODELS.items() if s.sparse),
        )
    expected = _check_dimension(model, shown, version, dimension, strict, notes)
    if not return_dense and not sparse:
        raise InputError(
            "nothing to return: return_dense and return_sparse are both off", field="return_dense"
        )
    params: dict[str, Any] = {"return_dense": return_dense, "return_sparse": sparse}
    if return_token_usage:
        params["return_token_usage"] = True
    if return_model_token_usage:
        params["return_model_token_usage"] = True
    if dimension is not None:
        params["embedding_dimension"] = dimension
    if model_version is not None:
        params["model_version"] = model_version
    return ResolvedRequest(
        spec, version, model_version, params, return_dense, sparse, expected, tuple(notes)
    )


# --------------------------------------------------------------------------- items


@dataclass(frozen=True)
class WireItem:
    """One ``data`` element ready for the body, with what the budget needs."""

    body: dict[str, Any]
    data_type: str
    est_tokens: int
    images: int
    encoded_size: int


def estimate_tokens(text: str) -> int:
    """An upper-leaning token estimate for the quota budget (corrected by the reply).

    CJK characters count one each; other text about one per three characters.
    """
    cjk = 0 if text.isascii() else sum(1 for ch in text if ord(ch) >= 0x2E80)
    return cjk + math.ceil((len(text) - cjk) / 3) + 1


def _data_type(item: object) -> str | None:
    if isinstance(item, (str, TextItem)):
        return TEXT
    if isinstance(item, ImageItem):
        return IMAGE
    if isinstance(item, TextImageItem):
        return TEXT_IMAGE
    if isinstance(item, FullModalItem):
        return FULL_MODAL
    return None


def check_kind(item: object, index: int, request: ResolvedRequest) -> str:
    """The item's ``data_type``, checked against the model (before anything is loaded)."""
    data_type = _data_type(item)
    if data_type is None:
        raise InputError(
            f"unsupported input type {type(item).__name__}; expected str, TextItem, "
            "ImageItem, TextImageItem or FullModalItem",
            field="inputs",
            index=index,
        )
    if data_type not in request.version.data_types:
        raise InputError(
            f"model {request.spec.name!r}{request.shown_version} does not take {data_type!r} inputs",
            field="inputs",
            index=index,
            limit=", ".join(sorted(request.version.data_types)),
        )
    return data_type


def media_wire(media: object, request: ResolvedRequest, *, field: str, index: int) -> str:
    """The MediaData string of loaded media: ``tos://``, ``http(s)://`` or ``base64://``."""
    if not isinstance(media, (PreparedImage, PreparedMedia)):
        raise TypeError(
            f"media must be loaded before building a wire item, got {type(media).__name__}"
        )
    if media.kind == "url":
        if not request.spec.http_media:
            raise InputError(
                f"model {request.spec.name!r} does not take http(s) media links; only "
                "doubao-embedding-vision does. Pass a file, bytes or a tos:// object",
                field=field,
                index=index,
            )
        assert media.url is not None
        return media.url
    if media.kind == "tos":
        assert media.url is not None
        return media.url
    assert media.data is not None
    return "base64://" + base64.b64encode(media.data).decode("ascii")


def _encoded_size(body: dict[str, Any]) -> int:
    # The whole data element, not just its text or media: the wrapper keys of 100 short
    # items add kilobytes a batch plan must count against the body limit.
    return len(orjson.dumps(body))


def build_item(item: object, index: int, request: ResolvedRequest) -> WireItem:
    """One caller input (media already loaded) as a wire item."""
    data_type = check_kind(item, index, request)
    field = "inputs"
    if isinstance(item, (str, TextItem)):
        text = check_text(
            item.text if isinstance(item, TextItem) else item, field=field, index=index
        )
        body: dict[str, Any] = {"data_type": TEXT, "text": text}
        return WireItem(body, data_type, estimate_tokens(text), 0, _encoded_size(body))
    if isinstance(item, ImageItem):
        body = {
            "data_type": IMAGE,
            "image": media_wire(item.image, request, field=field, index=index),
        }
        return WireItem(body, data_type, IMAGE_TOKEN_ESTIMATE, 1, _encoded_size(body))
    if isinstance(item, TextImageItem):
        text = check_text(item.text, field=field, index=index)
        wire = media_wire(item.image, request, field=field, index=index)
        body = {"data_type": TEXT_IMAGE, "text": text, "image": wire}
        tokens = estimate_tokens(text) + IMAGE_TOKEN_ESTIMATE
        return WireItem(body, data_type, tokens, 1, _encoded_size(body))
    assert isinstance(item, FullModalItem)
    return _full_modal(item, index, request)


def _fps(value: object, where: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not (math.isfinite(value) and FPS_RANGE[0] <= value <= FPS_RANGE[1])
    ):
        raise InputError(f"fps {value!r} is out of range", field=where, limit="0.2..5.0")
    return float(value)


def _full_modal_part(
    part: object, j: int, where: str, request: ResolvedRequest
) -> tuple[dict[str, Any], int, int]:
    """One part's wire entry, estimated tokens and image count."""
    if isinstance(part, (str, TextItem)):
        text = check_text(part.text if isinstance(part, TextItem) else part, field=where, index=j)
        return {"text": text}, estimate_tokens(text), 0
    if isinstance(part, ImageItem):
        return (
            {"image": media_wire(part.image, request, field=where, index=j)},
            IMAGE_TOKEN_ESTIMATE,
            1,
        )
    if isinstance(part, VideoItem):
        if not request.version.video:
            raise InputError(
                f"model {request.spec.name!r}{request.shown_version} does not take video",
                field=where,
                index=j,
                limit="doubao-embedding-vision 250615",
            )
        entry: dict[str, Any] = {"video": media_wire(part.video, request, field=where, index=j)}
        if part.fps is not None:
            entry["fps"] = _fps(part.fps, f"{where}[{j}].fps")
        return entry, VIDEO_TOKEN_ESTIMATE, 0
    raise InputError(
        f"a full-modal part is a str, TextItem, ImageItem or VideoItem, not {type(part).__name__}",
        field=where,
        index=j,
    )


def full_modal_parts(item: FullModalItem, index: int) -> Sequence[Any]:
    """The parts of a full-modal item, checked to be a non-empty sequence."""
    parts = item.parts
    if isinstance(parts, (str, bytes)) or not isinstance(parts, Sequence) or not parts:
        raise InputError(
            "a full-modal sequence needs at least one part", field="inputs", index=index
        )
    return parts


def _full_modal(item: FullModalItem, index: int, request: ResolvedRequest) -> WireItem:
    where = f"inputs[{index}].parts"
    entries: list[dict[str, Any]] = []
    tokens = images = 0
    try:
        for j, part in enumerate(full_modal_parts(item, index)):
            entry, part_tokens, part_images = _full_modal_part(part, j, where, request)
            entries.append(entry)
            tokens, images = tokens + part_tokens, images + part_images
    except InputError as error:
        # Parts report their own position in the message; the caller's item is ``index``.
        error.index = index
        error.input_indices = error.failed_indices = (index,)
        raise
    body = {"data_type": FULL_MODAL, "full_modal_seq": entries}
    return WireItem(body, FULL_MODAL, tokens, images, _encoded_size(body))


def build_body(request: ResolvedRequest, items: Sequence[WireItem]) -> dict[str, Any]:
    """The request body for one wire call."""
    return {
        "model": {"model_name": request.spec.name, "params": request.params},
        "data": [item.body for item in items],
    }


# --------------------------------------------------------------------------- replies


def _usage(raw: object) -> Usage:
    if not isinstance(raw, Mapping):
        return Usage()

    def num(key: str) -> int:
        value = raw.get(key, 0)
        return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0

    return Usage(
        prompt_tokens=num("prompt_tokens"),
        completion_tokens=num("completion_tokens"),
        total_tokens=num("total_tokens"),
        image_tokens=num("image_tokens"),
    )


def _sparse_rows(raw: object, rows: int, reply: ReplyContext) -> list[SparseVector]:
    if not isinstance(raw, list) or len(raw) != rows:
        raise reply.format_error(f"sentence_sparse_embedding should hold {rows} maps")
    vectors = []
    for row, entry in enumerate(raw):
        if not isinstance(entry, dict) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            for v in entry.values()
        ):
            raise reply.format_error(
                f"sentence_sparse_embedding[{row}] is not a {{token: weight}} map of numbers"
            )
        vectors.append(SparseVector({str(k): float(v) for k, v in entry.items()}))
    return vectors


def parse_response(
    status_code: int,
    content: bytes,
    *,
    expected_rows: int,
    request: ResolvedRequest,
    retry_after: float | None = None,
) -> EmbeddingResult:
    """Parse one reply. Raises the matching :class:`APIStatusError` for an error reply
    (non-zero ``code`` or non-2xx status), :class:`ResponseFormatError` when the body
    cannot be read or its shapes do not match the request (rows, dimension, values)."""
    reply = ReplyContext(status_code, retry_after=retry_after)
    payload = read_json_object(reply, content)
    if isinstance(payload.get("request_id"), str):
        reply.request_id = payload["request_id"]
    code = payload.get("code")
    if status_code >= 300 or code not in (0, None):
        error_code = code if isinstance(code, int) and not isinstance(code, bool) else None
        raise_status(reply, payload.get("message"), error_code)
    data = payload.get("data")
    if not isinstance(data, dict):
        raise reply.format_error("reply has no 'data' object")
    dense = {}
    if request.return_dense:
        dense["float"] = dense_matrix(
            data.get("sentence_dense_embedding"),
            name="sentence_dense_embedding",
            rows=expected_rows,
            reply=reply,
            dimension=request.expected_dimension,
            plain=plain_numbers(content, b'"sentence_dense_embedding"'),
        )
    sparse = None
    if request.return_sparse:
        sparse = _sparse_rows(data.get("sentence_sparse_embedding"), expected_rows, reply)
    usage = _usage(data.get("token_usage"))
    by_model = data.get("model_token_usage")
    if isinstance(by_model, dict):
        usage.by_model = {str(k): _usage(v) for k, v in by_model.items()}
    return EmbeddingResult(
        dense=dense,
        sparse=sparse,
        input_indices=np.arange(expected_rows, dtype=np.int64),
        usage=usage,
        request_ids=[reply.request_id] if reply.request_id else [],
        model=request.spec.name,
    )
