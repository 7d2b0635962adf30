"""``POST /api/data/embedding/version/2`` and ``GET /api/viking_db/data/ping``: the
VikingDB embedding v2 route, validated on its own (it shares only the model catalogue
and the signer with the client).

Decisions where the provider's page is silent:

- unknown model, unknown ``model_version``, a ``data_type`` the model does not take,
  and ``return_sparse: true`` on a dense-only model ("其他模型开启了会报错") are
  ``1000025`` (HTTP 404, ``failed to calcTextEmbedding, ...``): the model service
  cannot serve them;
- every other bad field, an over-size body (> 4 MB), media that cannot be read
  (bad base64, unreachable URL, missing TOS object, not an image) are ``1000003``
  (HTTP 400, ``invalid request:...``);
- texts beyond a model's context are truncated, as the page says for bge models;
- emulator token counts: text tokens from :mod:`mm_embed.emulator.tokens`; an image
  costs ``clamp(ceil(W/28) * ceil(H/28), 1, 1024)`` tokens; a video
  ``max(16, ceil(16 * fps)) * 64``; ``prompt_tokens`` includes image tokens and
  ``image_tokens`` appears when the request had images or videos;
- ``model_token_usage`` comes only with ``return_model_token_usage: true`` (the page's
  example asks for it with that flag, beside ``return_token_usage`` for
  ``token_usage``), and only for the ``-and-m3`` hybrids: one entry per underlying model
  (dense model, then ``bge-m3``), each counting the request's tokens;
- an inline or TOS video must be an MP4/MOV (``ftyp`` box at byte 4) or AVI
  (``RIFF....AVI ``) container, the formats the page lists; anything else is
  ``1000003`` naming the field;
- a media URL that cannot be fetched for any reason (not on the allow-list, closed
  port, timeout, HTTP error, not an image or video) gets one message, ``<field> could
  not be downloaded``, so replies do not reveal what listens where;
- the ping answers without checking credentials (the official SDK pings from its
  constructor and turns a failure into a misleading "host or region is incorrect").
"""

from __future__ import annotations

import base64
import binascii
import math
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
from starlette.requests import Request
from starlette.responses import Response

from ..providers.viking.catalogue import (
    FPS_RANGE,
    MAX_BODY_BYTES,
    MAX_ITEMS,
    MODELS,
    ModelSpec,
    ModelVersion,
)
from . import encoders, wire
from .body import BodyTimeout, BodyTooLarge
from .media import MAX_FETCH_BYTES, MediaError, decode_image, is_video_container
from .signature import AuthFailure, HeaderAuth, check_body, check_headers
from .state import EmulatorState, item_hash
from .tokens import count_tokens, truncate_tokens

__all__ = ["ROUTE", "VikingError", "VikingRoute", "endpoint", "new_request_id", "ping"]

INVALID, UNAUTHORIZED, CALC_FAILED, QUOTA, INTERNAL = 1000003, 1000001, 1000025, 1000029, 1000028
DATA_TYPES = ("text", "image", "text-image", "full_modal_seq")
MAX_VIDEO_BYTES = 50 * 1024 * 1024
_BOOL_PARAMS = ("return_token_usage", "return_model_token_usage", "return_dense", "return_sparse")


class VikingError(wire.Refusal):
    """A refusal in the provider's shape ``{"code", "message", "request_id"}``."""


def invalid(detail: str) -> VikingError:
    return VikingError(INVALID, 400, f"invalid request:{detail}")


def calc_failed(detail: str) -> VikingError:
    return VikingError(CALC_FAILED, 404, f"failed to calcTextEmbedding, {detail}")


def new_request_id() -> str:
    """A request id shaped like the provider's (54 characters, digits and hex)."""
    return "02" + str(int(time.time() * 1000)) + secrets.token_hex(20)[:39]


def error_body(code: int, message: str, request_id: str) -> dict[str, Any]:
    return {"code": code, "message": message, "request_id": request_id}


@dataclass
class _Usage:
    text_tokens: int = 0
    image_tokens: int = 0
    images: int = 0
    media: int = 0


@dataclass
class _Plan:
    spec: ModelSpec
    version_name: str
    version: ModelVersion
    dimension: int
    return_dense: bool
    return_sparse: bool
    usage_wanted: bool
    model_usage_wanted: bool
    items: list[dict[str, Any]] = field(default_factory=list)


def _params(spec: ModelSpec, raw: object) -> _Plan:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise invalid("model.params must be an object")
    for name in _BOOL_PARAMS:
        if name in raw and raw[name] is not None and not isinstance(raw[name], bool):
            raise invalid(f"model.params.{name} must be a boolean")
    version_name = raw.get("model_version")
    if version_name is not None and not isinstance(version_name, str):
        raise invalid("model.params.model_version must be a string")
    key = version_name or spec.default_version
    if key not in spec.versions:
        raise calc_failed(
            f"ModelNotFoundException: Model not found: {spec.name} version {version_name}"
        )
    version = spec.versions[key]
    dim = raw.get("embedding_dimension")
    if dim is None:
        dim = version.dimension
    elif isinstance(dim, bool) or not isinstance(dim, int):
        raise invalid("model.params.embedding_dimension must be an integer")
    elif dim not in version.dimensions:
        allowed = ", ".join(str(d) for d in sorted(version.dimensions))
        raise invalid(
            f"model.params.embedding_dimension {dim} is not supported by {spec.name}; use {allowed}"
        )
    sparse = raw.get("return_sparse")
    if sparse and not spec.sparse:
        raise calc_failed(f"model {spec.name} does not support sparse embedding (return_sparse)")
    return _Plan(
        spec=spec,
        version_name=key,
        version=version,
        dimension=dim,
        return_dense=raw.get("return_dense") is not False,
        return_sparse=spec.sparse if sparse is None else bool(sparse),
        usage_wanted=raw.get("return_token_usage") is True,
        model_usage_wanted=raw.get("return_model_token_usage") is True,
    )


def parse_body(body: object) -> _Plan:
    """Check the model, the params and the shape of every item (no media read yet)."""
    if not isinstance(body, dict):
        raise invalid("body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, dict):
        raise invalid("model is required and must be an object")
    name = model.get("model_name")
    if name is None or name == "":
        raise invalid("model.model_name is required")
    if not isinstance(name, str):
        raise invalid("model.model_name must be a string")
    spec = MODELS.get(name)
    if spec is None:
        raise calc_failed(f"ModelNotFoundException: Model not found: {name}")
    plan = _params(spec, model.get("params"))
    data = body.get("data")
    if data is None:
        raise invalid("data is required")
    if not isinstance(data, list):
        raise invalid("data must be a list")
    if not data:
        raise invalid("data is empty")
    if len(data) > MAX_ITEMS:
        raise invalid(f"data has {len(data)} items, at most {MAX_ITEMS} are allowed")
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            raise invalid(f"data[{i}] must be an object")
        data_type = item.get("data_type")
        if data_type is None:
            raise invalid(f"data[{i}].data_type is required")
        if data_type not in DATA_TYPES:
            raise invalid(f"data[{i}].data_type must be one of {', '.join(DATA_TYPES)}")
    types = [item["data_type"] for item in data]
    if "full_modal_seq" in types and len(data) != 1:
        raise invalid(
            "a full_modal_seq request carries exactly 1 item and cannot be mixed with other data types"
        )
    for i, item in enumerate(data):
        _check_item(plan, item, i)
    plan.items = data
    return plan


def _need_str(item: dict[str, Any], key: str, where: str) -> str:
    value = item.get(key)
    if value is None:
        raise invalid(f"{where}.{key} is required")
    if not isinstance(value, str):
        raise invalid(f"{where}.{key} must be a string")
    if not value.strip():
        raise invalid(f"{where}.{key} is empty")
    return value


def _check_item(plan: _Plan, item: dict[str, Any], i: int) -> None:
    data_type = item["data_type"]
    where = f"data[{i}]"
    if data_type not in plan.version.data_types:
        if data_type == "full_modal_seq":
            detail = "full_modal_seq is only supported by doubao-embedding-vision 250615"
        else:
            detail = f"model {plan.spec.name} version {plan.version_name} does not support data_type {data_type}"
        raise calc_failed(detail)
    if data_type in ("text", "text-image"):
        _need_str(item, "text", where)
    if data_type in ("image", "text-image"):
        _need_str(item, "image", where)
    if data_type != "full_modal_seq":
        return
    seq = item.get("full_modal_seq")
    if not isinstance(seq, list) or not seq:
        raise invalid(f"{where}.full_modal_seq must be a non-empty list")
    for j, part in enumerate(seq):
        at = f"{where}.full_modal_seq[{j}]"
        if not isinstance(part, dict):
            raise invalid(f"{at} must be an object")
        kinds = [k for k in ("text", "image", "video") if part.get(k) is not None]
        if len(kinds) != 1:
            raise invalid(f"{at} needs exactly one of text, image, video")
        _need_str(part, kinds[0], at)
        fps = part.get("fps")
        if fps is not None:
            if kinds[0] != "video":
                raise invalid(f"{at}.fps is only allowed with video")
            if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not math.isfinite(fps):
                raise invalid(f"{at}.fps must be a number")
            if not FPS_RANGE[0] <= fps <= FPS_RANGE[1]:
                raise invalid(f"{at}.fps {fps} is out of range {FPS_RANGE[0]}-{FPS_RANGE[1]}")


def _not_downloaded(where: str) -> VikingError:
    return invalid(f"{where} could not be downloaded")


async def _media_bytes(
    state: EmulatorState, plan: _Plan, ref: str, where: str, max_bytes: int
) -> tuple[bytes, bool]:
    """(bytes, whether they were fetched from a URL) of a MediaData reference."""
    if ref.startswith("base64://"):
        try:
            return base64.b64decode(ref[len("base64://") :], validate=True), False
        except (binascii.Error, ValueError):
            raise invalid(f"{where} is not valid base64") from None
    if ref.startswith("tos://"):
        try:
            return state.fetcher.read_tos(ref), False
        except MediaError as exc:
            raise invalid(f"{where}: {exc.message}") from None
    if ref.startswith(("http://", "https://")):
        if not plan.spec.http_media:
            raise invalid(f"{where}: http(s) media is only supported by doubao-embedding-vision")
        try:
            return await state.fetcher.fetch_url(ref, max_bytes), True
        except MediaError:
            raise _not_downloaded(where) from None
    raise invalid(f"{where} must start with tos://, http://, https:// or base64://")


async def _image_feature(
    state: EmulatorState, plan: _Plan, ref: str, where: str, usage: _Usage
) -> Any:
    data, fetched = await _media_bytes(state, plan, ref, where, MAX_FETCH_BYTES)
    try:
        image = decode_image(data)
    except MediaError as exc:
        raise (_not_downloaded(where) if fetched else invalid(f"{where}: {exc.message}")) from None
    usage.images += 1
    usage.image_tokens += max(
        1, min(1024, math.ceil(image.width / 28) * math.ceil(image.height / 28))
    )
    return encoders.image_features(image.image)


async def _video_feature(
    state: EmulatorState, plan: _Plan, part: dict[str, Any], where: str, usage: _Usage
) -> Any:
    video, fetched = await _media_bytes(state, plan, part["video"], where, MAX_VIDEO_BYTES)
    if not is_video_container(video):
        if fetched:
            raise _not_downloaded(where)
        raise invalid(
            f"{where} is not an MP4, MOV or AVI video (no ftyp box at byte 4, no RIFF/AVI header)"
        )
    if len(video) > MAX_VIDEO_BYTES:
        raise invalid(f"{where} is larger than 50MB")
    fps = float(part.get("fps") or 1.0)
    usage.media += 1
    usage.image_tokens += max(16, math.ceil(16 * fps)) * 64
    return encoders.bytes_features(video)


def _text(plan: _Plan, text: str, usage: _Usage) -> str:
    kept = truncate_tokens(text, plan.version.context_tokens)
    usage.text_tokens += count_tokens(kept)
    return kept


async def _features(state: EmulatorState, plan: _Plan, usage: _Usage) -> tuple[Any, list[str]]:
    feats = []
    texts: list[str] = []
    for i, item in enumerate(plan.items):
        where = f"data[{i}]"
        data_type = item["data_type"]
        if data_type == "text":
            text = _text(plan, item["text"], usage)
            texts.append(text)
            feats.append(encoders.text_features(text))
        elif data_type == "image":
            feats.append(await _image_feature(state, plan, item["image"], f"{where}.image", usage))
            texts.append("")
        elif data_type == "text-image":
            text = _text(plan, item["text"], usage)
            image = await _image_feature(state, plan, item["image"], f"{where}.image", usage)
            feats.append(encoders.combine([encoders.text_features(text), image]))
            texts.append(text)
        else:
            parts = []
            words = []
            for j, part in enumerate(item["full_modal_seq"]):
                at = f"{where}.full_modal_seq[{j}]"
                if part.get("text") is not None:
                    text = _text(plan, part["text"], usage)
                    words.append(text)
                    parts.append(encoders.text_features(text))
                elif part.get("image") is not None:
                    parts.append(
                        await _image_feature(state, plan, part["image"], f"{at}.image", usage)
                    )
                else:
                    parts.append(await _video_feature(state, plan, part, f"{at}.video", usage))
            feats.append(encoders.combine(parts))
            texts.append(" ".join(words))
    return np.stack(feats), texts


def _usage_body(prompt: int, image_tokens: int | None) -> dict[str, int]:
    out = {"prompt_tokens": prompt, "completion_tokens": 0, "total_tokens": prompt}
    if image_tokens is not None:
        out["image_tokens"] = image_tokens
    return out


async def _embed(state: EmulatorState, plan: _Plan, exchange: wire.Exchange) -> Response:
    usage = _Usage()
    feats, texts = await _features(state, plan, usage)
    total = usage.text_tokens + usage.image_tokens
    refusal = state.budgets.admit(plan.spec.name, total, usage.images)
    if refusal:
        raise VikingError(
            QUOTA, 429, f"quota exceeded: {refusal} limit reached for model {plan.spec.name}"
        )
    data: dict[str, Any] = {}
    if plan.return_dense:
        key = plan.spec.component_models[0] if plan.spec.component_models else plan.spec.name
        if len(plan.spec.versions) > 1:
            key = f"{key}@{plan.version_name}"
        data["sentence_dense_embedding"] = encoders.project(feats, key, plan.dimension)
    if plan.return_sparse:
        data["sentence_sparse_embedding"] = [
            encoders.sparse_vector(t, plan.spec.sparse_keys) for t in texts
        ]
    if plan.usage_wanted:
        has_media = usage.images + usage.media > 0
        data["token_usage"] = _usage_body(total, usage.image_tokens if has_media else None)
    if plan.model_usage_wanted and plan.spec.component_models:
        data["model_token_usage"] = {
            m: _usage_body(total, None) for m in plan.spec.component_models
        }
    exchange.status, exchange.code, exchange.message, exchange.embedded = 200, 0, "success", True
    body = {"code": 0, "message": "success", "request_id": exchange.request_id, "data": data}
    return wire.json_response(body, 200, {"x-request-id": exchange.request_id})


def _item_hashes(raw: bytes) -> tuple[tuple[str, ...], str | None]:
    body = wire.json_object(raw)
    if body is None:
        return (), None
    model = body.get("model")
    name = model.get("model_name") if isinstance(model, dict) else None
    data = body.get("data")
    if not isinstance(data, list):
        return (), name if isinstance(name, str) else None
    hashes = tuple(item_hash(orjson.dumps(item, option=orjson.OPT_SORT_KEYS)) for item in data)
    return hashes, name if isinstance(name, str) else None


def _unauthorized(exchange: wire.Exchange, failure: AuthFailure) -> VikingError:
    exchange.message = f"unauthorized ({failure})"
    return VikingError(UNAUTHORIZED, 401, "unauthorized")


class VikingRoute(wire.RouteHandler):
    """The embedding v2 route for :func:`mm_embed.emulator.wire.handle`."""

    name = "viking"
    max_body_bytes = MAX_BODY_BYTES

    def new_request_id(self) -> str:
        return new_request_id()

    def check_headers(
        self, request: Request, state: EmulatorState, exchange: wire.Exchange
    ) -> None:
        try:
            auth = check_headers(request.headers, state.config)
        except AuthFailure as exc:
            raise _unauthorized(exchange, exc) from None
        request.scope[_AUTH_KEY] = auth

    def item_hashes(self, raw: bytes) -> tuple[tuple[str, ...], str | None]:
        return _item_hashes(raw)

    def fault_body(self, exchange: wire.Exchange) -> wire.FaultBody:
        def render(status: int, message: str) -> tuple[int, dict[str, Any]]:
            code = QUOTA if status == 429 else INTERNAL
            text = "quota exceeded: too many requests" if status == 429 else message
            return code, error_body(code, text, exchange.request_id)

        return render

    async def serve(
        self, request: Request, raw: bytes, state: EmulatorState, exchange: wire.Exchange
    ) -> Response:
        auth: HeaderAuth = request.scope[_AUTH_KEY]
        try:
            check_body(
                auth,
                method=request.method,
                path=request.scope["path"],
                query=request.query_params.multi_items(),
                headers=request.headers,
                body=raw,
                secret_key=state.config.secret_key,
            )
        except AuthFailure as exc:
            raise _unauthorized(exchange, exc) from None
        exchange.auth = auth.mode
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise invalid("body is not valid JSON") from None
        return await _embed(state, parse_body(body), exchange)

    def too_large(self, exc: BodyTooLarge) -> wire.Refusal:
        return invalid(str(exc))

    def timed_out(self, exc: BodyTimeout) -> wire.Refusal:
        return VikingError(INVALID, 408, f"invalid request:{exc}")

    def render(
        self, refusal: wire.Refusal, state: EmulatorState, exchange: wire.Exchange
    ) -> Response:
        headers = {"x-request-id": exchange.request_id}
        if refusal.code == QUOTA and state.config.retry_after is not None:
            headers["Retry-After"] = wire.format_seconds(state.config.retry_after)
        body = error_body(refusal.code, refusal.message, exchange.request_id)
        return wire.json_response(body, refusal.status, headers)


ROUTE = VikingRoute()
#: Scope key carrying the header checks' result to the body checks.
_AUTH_KEY = "mm_embed.emulator.viking_auth"


async def endpoint(request: Request) -> Response:
    """Handle one embedding v2 request."""
    return await wire.handle(request, ROUTE)


async def ping(request: Request) -> Response:
    """The SDK's constructor ping: always answers success."""
    state: EmulatorState = request.app.state.emulator
    exchange = wire.Exchange("ping", request.method, request.url.path, new_request_id())
    exchange.status, exchange.code, exchange.message = 200, 0, "success"
    exchange.finish(state)
    body = {"code": 0, "message": "success", "request_id": exchange.request_id, "data": {}}
    return wire.json_response(body, 200, {"x-request-id": exchange.request_id})
