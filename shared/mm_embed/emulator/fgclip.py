"""``POST /models/interface``: the FG-CLIP embedding route, validated on its own.

This is a double of the provider's server: it checks every request rule of the FG-CLIP
contract itself (it shares no validation code with the client). Decisions where the
provider's page is silent:

- an invalid request gets HTTP 200 with ``context.code = 400`` and a message naming the
  field (the page says errors may come with HTTP 200); a missing or wrong key gets
  HTTP 401 with ``context.code = 401``; a quota refusal HTTP 429 with code 429;
- the ``accept`` header and ``embedding_types`` are required, as the page says: a
  missing or non-JSON ``accept`` (JSON-compatible: ``application/json``,
  ``application/*``, ``*/*``) and a missing ``embedding_types`` are refused naming
  them. In lenient mode (``EmulatorConfig.lenient``, ``mm-embed serve --lenient``) a
  missing ``embedding_types`` means ``["float"]`` and a missing ``accept`` means JSON
  (third-party clients such as fgclip-mcp 0.1.2 leave them out); wrong values are
  still refused;
- an image URL must end in ``.jpg``, ``.jpeg``, ``.png`` or ``.bmp`` (any case): the
  whole URL, so ``a.jpg?x=1`` is refused;
- every failure to fetch a URL image, including content that is not an image, is the
  one message ``images[i] could not be downloaded``;
- a body over 16 MiB gets HTTP 413 (``context.code = 413``); a body not received within
  ``body_timeout_s`` HTTP 408 (code 408); both close the connection;
- ``created`` is the time the request arrived, in China Standard Time (UTC+8, the
  provider's zone), ``%Y-%m-%d %H:%M:%S.%f`` cut to milliseconds; ``context.timestamp``
  is the Unix time in whole seconds when the reply is made; ``meta.api_version`` is
  ``{"version": "2.1.0"}`` and ``meta.latencys`` ``null``, as in the spec's example;
- ``image_boxes``, when not empty, needs one entry (a non-empty list of boxes) per
  image; a box is ``[x, y, w, h]`` inside the decoded image;
- ``data.texts`` / ``data.images`` is ``[]`` for the other input type;
- tokens are the emulator's (:mod:`mm_embed.emulator.tokens`); the 196-token limit and
  ``truncate`` apply to them.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hmac
import math
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from starlette.requests import Request
from starlette.responses import Response

from . import encoders, wire
from .accept import accepts_json
from .body import BodyTimeout, BodyTooLarge
from .hosts import is_ip_literal
from .media import DecodedImage, MediaError, decode_image
from .state import EmulatorState, item_hash
from .tokens import count_tokens, truncate_tokens

__all__ = [
    "DIMENSION",
    "MAX_BODY_BYTES",
    "MAX_ITEMS",
    "MAX_TOKENS",
    "MODEL",
    "PATH",
    "ROUTE",
    "FGClipError",
    "FGClipRoute",
    "endpoint",
    "error_body",
    "parse_body",
]

PATH = "/models/interface"
MODEL = "fg-clip"
DIMENSION = 768
MAX_ITEMS = 32
MAX_TOKENS = 196
#: The page states no body limit; the emulator reads at most this much.
MAX_BODY_BYTES = 16 * 1024 * 1024
API_VERSION = "2.1.0"
#: ``created`` is written in China Standard Time, the provider's zone.
PROVIDER_TZ = dt.timezone(dt.timedelta(hours=8), "CST")
EMBEDDING_TYPES = ("float", "int8", "uint8")
_URL_SUFFIX = re.compile(r"\.(jpg|jpeg|png|bmp)$", re.IGNORECASE)
_DATA_URI = re.compile(r"^data:image/([A-Za-z0-9.+-]+);base64,(.*)$", re.DOTALL)
_DATA_URI_TYPES = frozenset({"png", "jpg", "jpeg", "bmp"})
_FORMATS = frozenset({"PNG", "JPEG", "BMP"})


class FGClipError(wire.Refusal):
    """A refusal with the provider's error shape."""

    def __init__(self, message: str, *, code: int = 400, status: int = 200) -> None:
        super().__init__(code, status, message)


def error_body(code: int, message: str) -> dict[str, Any]:
    """``{"context": {code, message, timestamp}, "data": null}``."""
    return {
        "context": {"code": code, "message": message, "timestamp": int(time.time())},
        "data": None,
    }


@dataclass(frozen=True)
class _Request:
    input_type: str
    types: tuple[str, ...]
    texts: list[str]
    images: list[str]
    truncate: str
    text_box_flag: bool
    boxes: list[Any]


def _list_of_str(body: dict[str, Any], name: str) -> list[str]:
    value = body.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise FGClipError(f"{name} must be a list of strings")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise FGClipError(f"{name}[{i}] must be a string")
    return value


def parse_body(body: object, *, lenient: bool = False) -> _Request:
    """Check every field rule that needs no image bytes (``lenient``: a missing
    ``embedding_types`` means ``["float"]``)."""
    if not isinstance(body, dict):
        raise FGClipError("request body must be a JSON object")
    model = body.get("model")
    if model is None:
        raise FGClipError("model is required")
    if model != MODEL:
        raise FGClipError(f"model must be '{MODEL}'")
    input_type = body.get("input_type")
    if input_type is None:
        raise FGClipError("input_type is required")
    if input_type not in ("text", "image"):
        raise FGClipError("input_type must be 'text' or 'image'")
    types = body.get("embedding_types")
    if types is None and lenient:
        types = ["float"]
    if types is None:
        raise FGClipError("embedding_types is required")
    if not isinstance(types, list) or not types:
        raise FGClipError("embedding_types must be a non-empty list")
    for i, name in enumerate(types):
        if name not in EMBEDDING_TYPES:
            raise FGClipError(f"embedding_types[{i}] must be one of float, int8, uint8")
    truncate = body.get("truncate", "none")
    if truncate is None:
        truncate = "none"
    if truncate not in ("none", "start"):
        raise FGClipError("truncate must be 'none' or 'start'")
    flag = body.get("text_box_flag", False)
    if flag is None:
        flag = False
    if not isinstance(flag, bool):
        raise FGClipError("text_box_flag must be a boolean")
    boxes = body.get("image_boxes", [])
    if boxes is None:
        boxes = []
    if not isinstance(boxes, list):
        raise FGClipError("image_boxes must be a list")

    texts = _list_of_str(body, "texts")
    images = _list_of_str(body, "images")
    main, other, main_name, other_name = (
        (texts, images, "texts", "images")
        if input_type == "text"
        else (images, texts, "images", "texts")
    )
    if other:
        raise FGClipError(f"{other_name} must be empty or absent when input_type is '{input_type}'")
    if not main:
        raise FGClipError(
            f"{main_name} is required and must not be empty when input_type is '{input_type}'"
        )
    if len(main) > MAX_ITEMS:
        raise FGClipError(f"{main_name} has {len(main)} items, at most {MAX_ITEMS} are allowed")
    if boxes and input_type != "image":
        raise FGClipError("image_boxes is only allowed when input_type is 'image'")
    if boxes and len(boxes) != len(images):
        raise FGClipError(
            f"image_boxes has {len(boxes)} entries but images has {len(images)}; they must match"
        )
    for i, text in enumerate(texts):
        if not text.strip():
            raise FGClipError(f"texts[{i}] is empty")
        if truncate == "none":
            n = count_tokens(text)
            if n > MAX_TOKENS:
                raise FGClipError(
                    f"texts[{i}] has {n} tokens, more than {MAX_TOKENS}; shorten it or set truncate='start'"
                )
    for i, image in enumerate(images):
        _check_image_reference(image, i)
    deduped = tuple(dict.fromkeys(types))
    return _Request(input_type, deduped, texts, images, truncate, flag, boxes)


def _check_image_reference(image: str, i: int) -> None:
    if image.startswith("data:"):
        match = _DATA_URI.match(image)
        if not match:
            raise FGClipError(
                f"images[{i}] must be a data URI of the form data:image/<fmt>;base64,<data>"
            )
        if match.group(1).lower() not in _DATA_URI_TYPES:
            raise FGClipError(
                f"images[{i}] has unsupported image type {match.group(1)!r}; use jpg, jpeg, png or bmp"
            )
        return
    scheme, sep, rest = image.partition("://")
    if not sep or scheme.lower() not in ("http", "https"):
        raise FGClipError(f"images[{i}] must be an http(s) URL or a data URI")
    authority = rest.split("/", 1)[0].rsplit("@", 1)[-1]
    host = (
        authority[1:].split("]", 1)[0] if authority.startswith("[") else authority.split(":", 1)[0]
    )
    if not host:
        raise FGClipError(f"images[{i}] URL has no host")
    if is_ip_literal(host):
        raise FGClipError(f"images[{i}] URL host must be a domain name, not an IP address")
    # The page: the URL ends in jpg|jpeg|png|bmp. The whole URL, so a query or a
    # fragment after the suffix ("a.jpg?x=1") does not pass.
    if "/" not in rest or not _URL_SUFFIX.search(image):
        raise FGClipError(f"images[{i}] URL must end in .jpg, .jpeg, .png or .bmp")


async def _load_image(state: EmulatorState, image: str, i: int) -> DecodedImage:
    if not image.startswith("data:"):
        # One message for every failure of a URL, so replies say nothing about
        # what listens where (see MediaFetcher).
        try:
            return decode_image(await state.fetcher.fetch_url(image), _FORMATS)
        except MediaError:
            raise FGClipError(f"images[{i}] could not be downloaded") from None
    try:
        data = base64.b64decode(image.split(",", 1)[1], validate=True)
    except (binascii.Error, ValueError):
        raise FGClipError(f"images[{i}] data URI is not valid base64") from None
    try:
        return decode_image(data, _FORMATS)
    except MediaError as exc:
        raise FGClipError(f"images[{i}] is not a valid image: {exc.message}") from None


def _check_boxes(
    boxes: list[Any], images: list[DecodedImage]
) -> list[tuple[int, tuple[float, ...]]]:
    flat: list[tuple[int, tuple[float, ...]]] = []
    for i, (entry, image) in enumerate(zip(boxes, images, strict=True)):
        if not isinstance(entry, list) or not entry:
            raise FGClipError(f"image_boxes[{i}] must be a non-empty list of [x, y, w, h] boxes")
        for j, box in enumerate(entry):
            where = f"image_boxes[{i}][{j}]"
            if not isinstance(box, list) or len(box) != 4:
                raise FGClipError(f"{where} must be a list of 4 numbers [x, y, w, h]")
            if not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                for v in box
            ):
                raise FGClipError(f"{where} must hold 4 finite numbers")
            x, y, w, h = (float(v) for v in box)
            if x < 0 or y < 0 or w <= 0 or h <= 0:
                raise FGClipError(f"{where} needs x >= 0, y >= 0, w > 0 and h > 0")
            if x + w > image.width or y + h > image.height:
                raise FGClipError(
                    f"{where} exceeds the image size {image.width}x{image.height} (x + w <= W and y + h <= H)"
                )
            flat.append((i, (x, y, w, h)))
    return flat


def _crop(image: DecodedImage, box: tuple[float, ...]) -> Any:
    x, y, w, h = box
    left, top = math.floor(x), math.floor(y)
    right = max(left + 1, min(image.width, math.ceil(x + w)))
    bottom = max(top + 1, min(image.height, math.ceil(y + h)))
    return image.image.crop((left, top, right, bottom))


def _embeddings(vectors: np.ndarray[Any, Any], types: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = dict.fromkeys(EMBEDDING_TYPES)
    if "float" in types:
        out["float"] = vectors
    if "int8" in types:
        out["int8"] = encoders.quantize_int8(vectors)
    if "uint8" in types:
        out["uint8"] = encoders.quantize_uint8(vectors)
    return out


def _created(arrived: float) -> str:
    """``%Y-%m-%d %H:%M:%S.%f`` cut to milliseconds, in the provider's time zone."""
    moment = dt.datetime.fromtimestamp(arrived, PROVIDER_TZ)
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


async def _embed(state: EmulatorState, req: _Request, exchange: wire.Exchange) -> Response:
    texts_meta: list[str] = []
    images_meta: list[dict[str, Any]] = []
    input_tokens = 0
    if req.input_type == "text":
        kept = [truncate_tokens(t, MAX_TOKENS) for t in req.texts]
        input_tokens = sum(count_tokens(t) for t in kept)
        refusal = state.budgets.admit(MODEL, input_tokens, 0)
        if refusal:
            return _quota(state, exchange, refusal)
        feats = np.stack([encoders.text_features(t, local=req.text_box_flag) for t in kept])
        texts_meta = [str(len(t)) for t in req.texts]
    else:
        decoded = [await _load_image(state, image, i) for i, image in enumerate(req.images)]
        flat = _check_boxes(req.boxes, decoded) if req.boxes else []
        refusal = state.budgets.admit(MODEL, 0, len(decoded))
        if refusal:
            return _quota(state, exchange, refusal)
        if flat:
            feats = np.stack([encoders.image_features(_crop(decoded[i], box)) for i, box in flat])
        else:
            feats = np.stack([encoders.image_features(d.image) for d in decoded])
        images_meta = [
            {"width": d.width, "height": d.height, "format": d.format, "bit_depth": d.bit_depth}
            for d in decoded
        ]
    vectors = encoders.project(feats, MODEL, DIMENSION)
    body = {
        "context": {"code": 0, "message": "OK", "timestamp": int(time.time())},
        "data": {
            "id": exchange.request_id,
            "embeddings": _embeddings(vectors, req.types),
            "texts": texts_meta,
            "images": images_meta,
            "meta": {
                "api_version": {"version": API_VERSION},
                "billed_units": {
                    "images": len(images_meta),
                    "input_tokens": input_tokens,
                    "output_tokens": 0,
                },
                "latencys": None,
            },
            "created": _created(exchange.arrived),
        },
    }
    exchange.status, exchange.code, exchange.message, exchange.embedded = 200, 0, "OK", True
    return wire.json_response(body, 200, {"x-request-id": exchange.request_id})


def _quota(state: EmulatorState, exchange: wire.Exchange, which: str) -> Response:
    message = f"Too Many Requests: {which} budget exceeded"
    headers = {"x-request-id": exchange.request_id}
    if state.config.retry_after is not None:
        headers["Retry-After"] = wire.format_seconds(state.config.retry_after)
    exchange.status, exchange.code, exchange.message = 429, 429, message
    return wire.json_response(error_body(429, message), 429, headers)


def _item_hashes(raw: bytes) -> tuple[tuple[str, ...], str | None]:
    body = wire.json_object(raw)
    if body is None:
        return (), None
    items = body.get("texts") if body.get("input_type") == "text" else body.get("images")
    model = body.get("model") if isinstance(body.get("model"), str) else None
    if not isinstance(items, list):
        return (), model
    return tuple(item_hash(str(x).encode("utf-8")) for x in items), model


def _authorised(request: Request, api_key: str) -> bool:
    value = request.headers.get("authorization", "")
    scheme, _, key = value.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        key.strip().encode(), api_key.encode()
    )


class FGClipRoute(wire.RouteHandler):
    """The FG-CLIP route for :func:`mm_embed.emulator.wire.handle`."""

    name = "fgclip"
    max_body_bytes = MAX_BODY_BYTES

    def new_request_id(self) -> str:
        return str(uuid.uuid4())

    def check_headers(
        self, request: Request, state: EmulatorState, exchange: wire.Exchange
    ) -> None:
        if not _authorised(request, state.config.api_key):
            raise FGClipError("Unauthorized: invalid or missing API key", code=401, status=401)
        exchange.auth = "bearer"
        content_type = request.headers.get("content-type", "")
        if not content_type.lower().startswith("application/json"):
            raise FGClipError("Content-Type must be application/json")
        accept = request.headers.get("accept")
        if accept is None and state.config.lenient:
            return  # lenient: a missing accept means JSON
        if accept is None or not accepts_json(accept):
            raise FGClipError(
                "accept header is required and must accept application/json "
                "(accept: application/json)"
            )

    def item_hashes(self, raw: bytes) -> tuple[tuple[str, ...], str | None]:
        return _item_hashes(raw)

    def fault_body(self, exchange: wire.Exchange) -> wire.FaultBody:
        return lambda status, message: (status, error_body(status, message))

    async def serve(
        self, request: Request, raw: bytes, state: EmulatorState, exchange: wire.Exchange
    ) -> Response:
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise FGClipError("request body is not valid JSON") from None
        return await _embed(state, parse_body(body, lenient=state.config.lenient), exchange)

    def too_large(self, exc: BodyTooLarge) -> wire.Refusal:
        return FGClipError(f"Request Entity Too Large: {exc}", code=413, status=413)

    def timed_out(self, exc: BodyTimeout) -> wire.Refusal:
        return FGClipError(f"Request Timeout: {exc}", code=408, status=408)

    def render(
        self, refusal: wire.Refusal, state: EmulatorState, exchange: wire.Exchange
    ) -> Response:
        return wire.json_response(
            error_body(refusal.code, refusal.message),
            refusal.status,
            {"x-request-id": exchange.request_id},
        )


ROUTE = FGClipRoute()


async def endpoint(request: Request) -> Response:
    """Handle one FG-CLIP embedding request."""
    return await wire.handle(request, ROUTE)
