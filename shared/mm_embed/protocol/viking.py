"""VikingDB embedding v2, sans-I/O: the model catalogue, request bodies, response parsing.

Nothing here opens a socket. ``build_item`` turns one caller input into a wire item
(validating it against the model), ``build_body`` wraps items into a request body, and
``parse_response`` turns status + body bytes into an :class:`EmbeddingResult` or raises
the matching :class:`APIStatusError`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from ..errors import InputError, ResponseFormatError, status_error_class
from ..inputs import (
    FullModalItem,
    ImageItem,
    TextImageItem,
    TextItem,
    VideoItem,
    check_text,
    prepare_image,
    prepare_video,
)
from ..results import EmbeddingResult, SparseVector, Usage

__all__ = [
    "DEFAULT_BASE_URL",
    "MAX_BODY_BYTES",
    "MAX_ITEMS",
    "MODELS",
    "PATH",
    "PING_PATH",
    "RATE_LIMITED_CODE",
    "SERVICE",
    "ModelSpec",
    "ModelVersion",
    "WireItem",
    "build_body",
    "build_item",
    "estimate_tokens",
    "get_model",
    "parse_response",
    "resolve_request",
]

DEFAULT_BASE_URL = "https://api-vikingdb.volces.com"
PATH = "/api/data/embedding/version/2"
PING_PATH = "/api/viking_db/data/ping"
SERVICE = "air"
DEFAULT_REGION = "cn-north-1"
MAX_ITEMS = 100
MAX_FULL_MODAL_ITEMS = 1
#: The page gives 8 MB for the body and 4 MB for embedding v2; we keep under 4 MB.
MAX_BODY_BYTES = 4 * 1024 * 1024
RATE_LIMITED_CODE = 1000029
FPS_RANGE = (0.2, 5.0)
DEFAULT_TOKENS_PER_MINUTE = 120_000
DEFAULT_IMAGES_PER_SECOND = 15

TEXT, IMAGE, TEXT_IMAGE, FULL_MODAL = "text", "image", "text-image", "full_modal_seq"
VIDEO = "video"


@dataclass(frozen=True)
class ModelVersion:
    """What one version of a model can do."""

    dimension: int
    dimensions: frozenset[int]
    data_types: frozenset[str]
    video: bool
    context_tokens: int


@dataclass(frozen=True)
class ModelSpec:
    """A Viking embedding model as the provider's table describes it.

    ``default_version`` is the version the provider documents as its default; the
    client validates an omitted ``model_version`` against it but never sends it.
    """

    name: str
    versions: Mapping[str, ModelVersion]
    default_version: str
    sparse: bool
    http_media: bool = False
    #: ``*-and-m3`` hybrids report usage per underlying model.
    component_models: tuple[str, ...] = ()
    #: Sparse keys: ``"id"`` (token ids as strings) or ``"token"`` (token strings).
    sparse_keys: str = "id"

    def version(self, model_version: str | None) -> ModelVersion:
        key = model_version or self.default_version
        try:
            return self.versions[key]
        except KeyError:
            raise InputError(
                f"model {self.name!r} has no version {model_version!r}",
                field="model_version",
                limit=", ".join(sorted(self.versions)),
            ) from None


def _single(
    dim: int, extra: Sequence[int], types: Sequence[str], ctx: int, video: bool = False
) -> ModelVersion:
    return ModelVersion(dim, frozenset([dim, *extra]), frozenset(types), video, ctx)


_TXT = (TEXT,)
MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in [
        ModelSpec(
            name="doubao-embedding-vision",
            versions={
                "241215": _single(3072, (), (TEXT, IMAGE, TEXT_IMAGE), 8_192),
                "250328": _single(2048, (1024,), (TEXT, IMAGE, TEXT_IMAGE), 8_192),
                "250615": _single(
                    2048, (1024,), (TEXT, IMAGE, TEXT_IMAGE, FULL_MODAL), 131_072, video=True
                ),
            },
            default_version="241215",
            sparse=False,
            http_media=True,
        ),
        ModelSpec(
            name="doubao-embedding",
            versions={v: _single(2048, (512, 1024), _TXT, 4_096) for v in ("240515", "240715")},
            default_version="240515",
            sparse=False,
        ),
        ModelSpec(
            name="doubao-embedding-and-m3",
            versions={"default": _single(2048, (512, 1024), _TXT, 4_096)},
            default_version="default",
            sparse=True,
            component_models=("doubao-embedding", "bge-m3"),
            sparse_keys="token",
        ),
        ModelSpec(
            name="doubao-embedding-large",
            versions={"default": _single(4096, (2048, 1024, 512), _TXT, 4_096)},
            default_version="default",
            sparse=False,
        ),
        ModelSpec(
            name="doubao-embedding-large-and-m3",
            versions={"default": _single(4096, (2048, 1024, 512), _TXT, 4_096)},
            default_version="default",
            sparse=True,
            component_models=("doubao-embedding-large", "bge-m3"),
            sparse_keys="token",
        ),
        ModelSpec(
            name="bge-large-zh",
            versions={"default": _single(1024, (), _TXT, 512)},
            default_version="default",
            sparse=False,
        ),
        ModelSpec(
            name="bge-m3",
            versions={"default": _single(1024, (), _TXT, 8_192)},
            default_version="default",
            sparse=True,
        ),
        ModelSpec(
            name="bge-large-zh-and-m3",
            versions={"default": _single(1024, (), _TXT, 512)},
            default_version="default",
            sparse=True,
            component_models=("bge-large-zh", "bge-m3"),
        ),
        ModelSpec(
            name="bge-visualized-m3",
            versions={"default": _single(1024, (), (TEXT, IMAGE, TEXT_IMAGE), 8_192)},
            default_version="default",
            sparse=False,
        ),
    ]
}


def get_model(name: str) -> ModelSpec:
    """The catalogue entry for ``name`` or an :class:`InputError` listing the known models."""
    try:
        return MODELS[name]
    except KeyError:
        raise InputError(
            f"unknown model {name!r}", field="model", limit=", ".join(sorted(MODELS))
        ) from None


@dataclass(frozen=True)
class ResolvedRequest:
    """The model parameters of a call, validated once for all its batches."""

    spec: ModelSpec
    version: ModelVersion
    model_version: str | None
    params: dict[str, Any]
    return_dense: bool
    return_sparse: bool


def resolve_request(
    *,
    model: str,
    model_version: str | None = None,
    dimension: int | None = None,
    return_dense: bool = True,
    return_sparse: bool | None = None,
    return_token_usage: bool = False,
) -> ResolvedRequest:
    """Validate the model parameters against the catalogue and build ``model.params``.

    ``return_sparse=None`` means "what the model does by default" (on for sparse models).
    """
    spec = get_model(model)
    if model_version is not None and model_version not in spec.versions:
        raise InputError(
            f"model {model!r} has no version {model_version!r}",
            field="model_version",
            limit=", ".join(v for v in sorted(spec.versions) if v != "default") or "no versions",
        )
    version = spec.version(model_version)
    sparse = spec.sparse if return_sparse is None else return_sparse
    if sparse and not spec.sparse:
        raise InputError(
            f"model {model!r} has no sparse vectors",
            field="return_sparse",
            limit=", ".join(n for n, s in MODELS.items() if s.sparse),
        )
    if dimension is not None and (
        isinstance(dimension, bool)
        or not isinstance(dimension, int)
        or dimension not in version.dimensions
    ):
        shown = (
            f" version {model_version or spec.default_version}" if len(spec.versions) > 1 else ""
        )
        raise InputError(
            f"model {model!r}{shown} cannot return {dimension!r} dimensions",
            field="dimension",
            limit=", ".join(str(d) for d in sorted(version.dimensions)),
        )
    if not return_dense and not sparse:
        raise InputError(
            "nothing to return: return_dense and return_sparse are both off", field="return_dense"
        )
    params: dict[str, Any] = {"return_dense": return_dense, "return_sparse": sparse}
    if return_token_usage:
        params["return_token_usage"] = True
    if dimension is not None:
        params["embedding_dimension"] = dimension
    if model_version is not None:
        params["model_version"] = model_version
    return ResolvedRequest(spec, version, model_version, params, return_dense, sparse)


@dataclass(frozen=True)
class WireItem:
    """One ``data`` element ready for the body, with what the rate limiter needs."""

    body: dict[str, Any]
    data_type: str
    est_tokens: int
    images: int
    encoded_size: int


def estimate_tokens(text: str) -> int:
    """An upper-leaning token estimate for rate limiting (corrected with the reply's usage).

    CJK characters count one each; other text about one per three characters.
    """
    cjk = sum(1 for ch in text if ord(ch) >= 0x2E80)
    return cjk + math.ceil((len(text) - cjk) / 3) + 1


#: Estimated tokens per image or video, before the reply's usage corrects it.
IMAGE_TOKEN_ESTIMATE = 256


def build_item(
    item: object,
    index: int,
    request: ResolvedRequest,
    *,
    max_media_bytes: int = MAX_BODY_BYTES - 4096,
) -> WireItem:
    """Validate one caller input against the model and make its wire form."""
    from ..inputs import downscale_to_fit

    spec, version = request.spec, request.version
    field = "inputs"

    def need(data_type: str) -> None:
        if data_type not in version.data_types:
            shown = (
                f" version {request.model_version or spec.default_version}"
                if len(spec.versions) > 1
                else ""
            )
            raise InputError(
                f"model {spec.name!r}{shown} does not take {data_type!r} inputs",
                field=field,
                index=index,
                limit=", ".join(sorted(version.data_types)),
            )

    def image_wire(source: object) -> tuple[str, int]:
        prepared = prepare_image(source, field=field, index=index)  # type: ignore[arg-type]
        if prepared.kind == "inline":
            prepared = downscale_to_fit(prepared, max_media_bytes, field=field, index=index)
        wire = prepared.viking_wire(
            field=field, index=index, allow_http=spec.http_media, model=spec.name
        )
        return wire, len(wire)

    if isinstance(item, (str, TextItem)):
        text = check_text(
            item.text if isinstance(item, TextItem) else item, field=field, index=index
        )
        need(TEXT)
        body = {"data_type": TEXT, "text": text}
        return WireItem(body, TEXT, estimate_tokens(text), 0, _encoded_size(body))
    if isinstance(item, ImageItem):
        need(IMAGE)
        wire, _ = image_wire(item.image)
        body = {"data_type": IMAGE, "image": wire}
        return WireItem(body, IMAGE, IMAGE_TOKEN_ESTIMATE, 1, _encoded_size(body))
    if isinstance(item, TextImageItem):
        need(TEXT_IMAGE)
        text = check_text(item.text, field=field, index=index)
        wire, _ = image_wire(item.image)
        body = {"data_type": TEXT_IMAGE, "text": text, "image": wire}
        return WireItem(
            body,
            TEXT_IMAGE,
            estimate_tokens(text) + IMAGE_TOKEN_ESTIMATE,
            1,
            _encoded_size(body),
        )
    if isinstance(item, FullModalItem):
        need(FULL_MODAL)
        return _full_modal(item, index, request, image_wire)
    raise InputError(
        f"unsupported input type {type(item).__name__}; expected str, TextItem, ImageItem, "
        "TextImageItem or FullModalItem",
        field=field,
        index=index,
    )


def _full_modal(
    item: FullModalItem, index: int, request: ResolvedRequest, image_wire: Any
) -> WireItem:
    field = "inputs"
    if (
        isinstance(item.parts, (str, bytes))
        or not isinstance(item.parts, Sequence)
        or not item.parts
    ):
        raise InputError("a full-modal sequence needs at least one part", field=field, index=index)
    try:
        return _full_modal_parts(item, index, request, image_wire)
    except InputError as error:
        # Parts report their own position in the message; the caller's item is ``index``.
        error.index = index
        error.input_indices = error.failed_indices = (index,)
        raise


def _full_modal_parts(
    item: FullModalItem, index: int, request: ResolvedRequest, image_wire: Any
) -> WireItem:
    field = "inputs"
    parts: list[dict[str, Any]] = []
    tokens, images = 0, 0
    for j, part in enumerate(item.parts):
        where = f"{field}[{index}].parts"
        if isinstance(part, (str, TextItem)):
            text = check_text(
                part.text if isinstance(part, TextItem) else part, field=where, index=j
            )
            parts.append({"text": text})
            tokens += estimate_tokens(text)
        elif isinstance(part, ImageItem):
            wire, _ = image_wire(part.image)
            parts.append({"image": wire})
            tokens, images = tokens + IMAGE_TOKEN_ESTIMATE, images + 1
        elif isinstance(part, VideoItem):
            if not request.version.video:
                raise InputError(
                    f"model {request.spec.name!r} version {request.model_version or request.spec.default_version} "
                    "does not take video",
                    field=where,
                    index=j,
                    limit="doubao-embedding-vision 250615",
                )
            media = prepare_video(part.video, field=where, index=j)
            if media.kind == "url" and not request.spec.http_media:
                raise InputError(
                    "only doubao-embedding-vision takes http(s) media", field=where, index=j
                )
            wire = media.viking_wire()
            entry: dict[str, Any] = {"video": wire}
            if part.fps is not None:
                fps = part.fps
                if (
                    isinstance(fps, bool)
                    or not isinstance(fps, (int, float))
                    or not (math.isfinite(fps) and FPS_RANGE[0] <= fps <= FPS_RANGE[1])
                ):
                    raise InputError(
                        f"fps {fps!r} is out of range", field=f"{where}[{j}].fps", limit="0.2..5.0"
                    )
                entry["fps"] = float(fps)
            parts.append(entry)
            tokens += 16 * IMAGE_TOKEN_ESTIMATE
        else:
            raise InputError(
                f"a full-modal part is a str, TextItem, ImageItem or VideoItem, not {type(part).__name__}",
                field=where,
                index=j,
            )
    body = {"data_type": FULL_MODAL, "full_modal_seq": parts}
    return WireItem(body, FULL_MODAL, tokens, images, _encoded_size(body))


def _encoded_size(body: dict[str, Any]) -> int:
    # The whole data element, not just its text or media: the wrapper keys of 100 short
    # items add kilobytes a batch plan must count against the body limit.
    return len(orjson.dumps(body))


def build_body(request: ResolvedRequest, items: Sequence[WireItem]) -> dict[str, Any]:
    """The request body for one wire call."""
    return {
        "model": {"model_name": request.spec.name, "params": request.params},
        "data": [item.body for item in items],
    }


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


def parse_response(
    status_code: int,
    content: bytes,
    *,
    expected_rows: int,
    return_dense: bool,
    return_sparse: bool,
    retry_after: float | None = None,
    model: str | None = None,
) -> EmbeddingResult:
    """Parse one reply. Raises the matching :class:`APIStatusError` for any error reply
    (non-zero ``code`` or non-2xx status), :class:`ResponseFormatError` when the body
    cannot be read or its shapes do not match the request."""
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
    code = payload.get("code")
    message = payload.get("message")
    request_id = payload.get("request_id") if isinstance(payload.get("request_id"), str) else None
    if status_code >= 300 or (code not in (0, None)):
        error_code = code if isinstance(code, int) and not isinstance(code, bool) else None
        cls = status_error_class(status_code, error_code)
        raise cls(
            str(message) if message else f"HTTP {status_code}",
            status_code=status_code,
            code=error_code,
            request_id=request_id,
            retry_after=retry_after,
        )
    data = payload.get("data")
    if not isinstance(data, dict):
        raise ResponseFormatError(
            "reply has no 'data' object", status_code=status_code, request_id=request_id
        )
    dense: dict[str, np.ndarray] = {}
    if return_dense:
        dense_raw = data.get("sentence_dense_embedding")
        try:
            matrix = np.asarray(dense_raw, dtype=np.float32)
        except (TypeError, ValueError):
            raise ResponseFormatError(
                "sentence_dense_embedding is not a numeric matrix",
                status_code=status_code,
                request_id=request_id,
            ) from None
        if matrix.ndim != 2 or matrix.shape[0] != expected_rows:
            raise ResponseFormatError(
                f"sentence_dense_embedding has shape {matrix.shape}, expected {expected_rows} rows",
                status_code=status_code,
                request_id=request_id,
            )
        if not np.isfinite(matrix).all():
            # JSON has no NaN: a non-finite value can only be a null inside a vector.
            raise ResponseFormatError(
                "sentence_dense_embedding holds null or non-finite values",
                status_code=status_code,
                request_id=request_id,
            )
        dense["float"] = matrix
    sparse: list[SparseVector] | None = None
    if return_sparse:
        sparse_raw = data.get("sentence_sparse_embedding")
        if not isinstance(sparse_raw, list) or len(sparse_raw) != expected_rows:
            raise ResponseFormatError(
                f"sentence_sparse_embedding should hold {expected_rows} maps",
                status_code=status_code,
                request_id=request_id,
            )
        sparse = []
        for entry in sparse_raw:
            if not isinstance(entry, dict) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in entry.values()
            ):
                raise ResponseFormatError(
                    "a sparse vector is not a {token: weight} map",
                    status_code=status_code,
                    request_id=request_id,
                )
            sparse.append(SparseVector({str(k): float(v) for k, v in entry.items()}))
    usage = _usage(data.get("token_usage"))
    by_model = data.get("model_token_usage")
    if isinstance(by_model, dict):
        usage.by_model = {str(k): _usage(v) for k, v in by_model.items()}
    return EmbeddingResult(
        dense=dense,
        sparse=sparse,
        input_indices=np.arange(expected_rows, dtype=np.int64),
        usage=usage,
        request_ids=[request_id] if request_id else [],
        model=model,
    )
