"""Helpers of the unit tree (``tests/unit``): fake providers behind
``httpx.MockTransport``, images made in memory, a fake clock, a strategy of JSON
documents for property tests. Its fixtures are in
``tests/unit/conftest.py``.

The fakes speak each wire protocol with correctly shaped bodies and deterministic vectors
that *encode the input*: column 0 of every dense row is :func:`fp` of the item's identity
(the text, ``"<W>x<H>"`` of an inline image, or the URL), so an order check compares
real inputs, not positions. No socket is opened anywhere in ``tests/unit`` (its conftest
makes sure of it).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import inspect
import io
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from hypothesis import strategies as st
from PIL import Image

from mm_embed import VIKING_MODELS, AsyncFGClipClient, AsyncVikingClient, FGClipClient, VikingClient
from mm_embed.budgets import LocalBudget
from mm_embed.retry import RetryPolicy

FG_KEY = "fg-secret-key-7f3a9c"
VIKING_AK = "AKLTcoreTestAccessKey"
VIKING_SK = "core-test-secret-key-2b8e"
VIKING_TOKEN = "viking-token-secret-91d0"
SECRETS = (FG_KEY, VIKING_SK, VIKING_TOKEN)

DIM = 4

#: The repository's root directory.
REPO = Path(__file__).resolve().parents[2]

# --------------------------------------------------------------------------- encodings


def fp(identity: str) -> float:
    """A stable number for an input identity, exact in float32 (< 2**24)."""
    return float(int.from_bytes(hashlib.sha256(identity.encode()).digest()[:3], "big"))


def png_bytes(width: int, height: int, *, noisy: bool = False, seed: int = 0) -> bytes:
    """A PNG of the given size: flat colour, or random noise PNG cannot compress."""
    if noisy:
        rng = random.Random(seed)
        image = Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))
    else:
        image = Image.new("RGB", (width, height), ((width * 7) % 256, (height * 13) % 256, 99))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def noisy_png(width: int, height: int, seed: int = 0) -> bytes:
    """A PNG of random pixels that does not compress, the same for the same ``seed``:
    big bodies from few images, and every crop differs from other seeds' images."""
    return png_bytes(width, height, noisy=True, seed=seed)


def image_identity(wire: str) -> str:
    """What the fake provider sees in an image string: ``"<W>x<H>"`` for inline bytes."""
    for prefix in ("base64://",):
        if wire.startswith(prefix):
            return _size_of(base64.b64decode(wire[len(prefix) :]))
    if wire.startswith("data:"):
        return _size_of(base64.b64decode(wire.partition(",")[2]))
    return wire


def _dims(identity: str) -> tuple[int, int]:
    """Width and height from an inline image's identity; a URL gets a made-up size."""
    if "://" in identity:
        return 64, 48
    width, height = identity.split("x")
    return int(width), int(height)


def _size_of(data: bytes) -> str:
    with Image.open(io.BytesIO(data)) as img:
        return f"{img.width}x{img.height}"


def json_response(
    status: int, payload: Any, headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.Response(status, content=orjson.dumps(payload), headers=headers)


#: Any small JSON document: what a broken provider might send where a reply field goes.
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


# --------------------------------------------------------------------------- fakes

Fault = Callable[[int, dict[str, Any], httpx.Request], "httpx.Response | None"]


@dataclass
class Seen:
    """One request as the fake received it."""

    request: httpx.Request
    body: dict[str, Any]
    at: float
    number: int


@dataclass
class FakeProvider:
    """Base of both fakes: records requests, injects faults and delays.

    ``fault(n, body, request)`` may return a response (or raise an ``httpx`` error) for
    request number ``n`` (0-based) instead of the normal answer. ``delay(n, body)`` gives
    seconds to wait before answering (``time.sleep`` in threads, ``asyncio.sleep`` async).
    """

    fault: Fault | None = None
    delay: Callable[[int, dict[str, Any]], float] | None = None
    seen: list[Seen] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [s.body for s in self.seen]

    @property
    def count(self) -> int:
        return len(self.seen)

    def _enter(self, request: httpx.Request) -> tuple[int, dict[str, Any]]:
        try:
            body = orjson.loads(request.content) if request.content else {}
        except orjson.JSONDecodeError:
            body = {}
        with self._lock:
            number = len(self.seen)
            self.seen.append(Seen(request, body, time.monotonic(), number))
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        return number, body

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def _answer(self, number: int, body: dict[str, Any], request: httpx.Request) -> httpx.Response:
        if self.fault is not None:
            response = self.fault(number, body, request)
            if response is not None:
                return response
        return self.answer(number, body)

    def answer(self, number: int, body: dict[str, Any]) -> httpx.Response:
        raise NotImplementedError

    def handler(self, request: httpx.Request) -> httpx.Response:
        number, body = self._enter(request)
        try:
            if self.delay is not None:
                time.sleep(self.delay(number, body))
            return self._answer(number, body, request)
        finally:
            self._leave()

    async def ahandler(self, request: httpx.Request) -> httpx.Response:
        number, body = self._enter(request)
        try:
            if self.delay is not None:
                await asyncio.sleep(self.delay(number, body))
            return self._answer(number, body, request)
        finally:
            self._leave()


def fg_text_vector(text: str, *, local: bool = False) -> list[float]:
    return [fp(text), float(len(text)), 1.0 if local else 0.0, 0.5]


@dataclass
class FakeFGClip(FakeProvider):
    """FG-CLIP: one row per text / image / box; box rows are ``[fp(image), box#, x, y]``."""

    def answer(self, number: int, body: dict[str, Any]) -> httpx.Response:
        types = body.get("embedding_types") or ["float"]
        rows: list[list[float]] = []
        images_meta: list[dict[str, Any]] = []
        texts_meta: list[str] = []
        tokens = 0
        if body.get("input_type") == "text":
            for text in body.get("texts", []):
                rows.append(fg_text_vector(text, local=bool(body.get("text_box_flag"))))
                texts_meta.append(str(len(text)))
                tokens += len(text)
        else:
            boxes = body.get("image_boxes")
            for i, image in enumerate(body.get("images", [])):
                ident = image_identity(image)
                w, h = _dims(ident)
                images_meta.append({"width": w, "height": h, "format": "PNG", "bit_depth": 24})
                if boxes:
                    for j, box in enumerate(boxes[i]):
                        rows.append([fp(ident), float(j), float(box[0]), float(box[1])])
                else:
                    rows.append([fp(ident), -1.0, 0.0, 0.0])
        embeddings: dict[str, Any] = {"float": None, "int8": None, "uint8": None}
        for name in types:
            if name == "float":
                embeddings[name] = rows
            elif name == "int8":
                embeddings[name] = [[(int(v) % 256) - 128 for v in row] for row in rows]
            else:
                embeddings[name] = [[int(v) % 256 for v in row] for row in rows]
        payload = {
            "context": {"code": 0, "message": "OK", "timestamp": 1769589915},
            "data": {
                "id": f"fg-{number}",
                "embeddings": embeddings,
                "texts": texts_meta,
                "images": images_meta,
                "meta": {
                    "api_version": {"version": "2.1.0"},
                    "billed_units": {
                        "images": len(images_meta),
                        "input_tokens": tokens,
                        "output_tokens": 0,
                    },
                    "latencys": None,
                },
                "created": "2025-12-31 09:18:25.901",
            },
        }
        return json_response(200, payload)


def viking_identity(item: dict[str, Any]) -> str:
    kind = item.get("data_type")
    if kind == "text":
        return str(item["text"])
    if kind == "image":
        return image_identity(item["image"])
    if kind == "text-image":
        return f"{item['text']}|{image_identity(item['image'])}"
    parts = []
    for part in item.get("full_modal_seq", []):
        if "text" in part:
            parts.append(part["text"])
        elif "image" in part:
            parts.append(image_identity(part["image"]))
        else:
            parts.append(f"video@{part.get('fps')}")
    return "+".join(parts)


def viking_dimension(model: str, params: dict[str, Any]) -> int:
    """The width a real server answers with: the asked dimension, else the version's."""
    if params.get("embedding_dimension"):
        return int(params["embedding_dimension"])
    spec = VIKING_MODELS.get(model)
    if spec is None:
        return DIM
    return spec.versions[params.get("model_version") or spec.default_version].dimension


def viking_tokens(item: dict[str, Any]) -> int:
    """The fake's token count: never above the client's upper-leaning estimate."""
    text = item.get("text") or ""
    count = max(1, len(text) // 4) if text else 0
    if "image" in item:
        count += 100
    return count


TOKEN_KEY_MODELS = {"doubao-embedding-and-m3", "doubao-embedding-large-and-m3"}
HYBRIDS = {
    "doubao-embedding-and-m3": ("doubao-embedding", "bge-m3"),
    "doubao-embedding-large-and-m3": ("doubao-embedding-large", "bge-m3"),
    "bge-large-zh-and-m3": ("bge-large-zh", "bge-m3"),
}


def sparse_for(text: str, *, token_keys: bool) -> dict[str, float]:
    weights: dict[str, float] = {}
    for word in text.split():
        key = word if token_keys else str(int(fp(word)) % 250_000)
        weights[key] = round(weights.get(key, 0.0) + 0.125, 3)
    return weights


@dataclass
class FakeViking(FakeProvider):
    """Viking embedding v2 (and the ping route)."""

    usage_scale: int = 1

    def answer(self, number: int, body: dict[str, Any]) -> httpx.Response:
        request_id = f"vk-{number}"
        if not body:  # the ping route
            return json_response(200, {"code": 0, "message": "success", "request_id": request_id})
        model = body["model"]["model_name"]
        params = body["model"].get("params", {})
        items = body["data"]
        data: dict[str, Any] = {}
        if params.get("return_dense", True):
            # Real width (the client checks it): the four telling columns, then zeros.
            padding = [0.0] * (viking_dimension(model, params) - DIM)
            data["sentence_dense_embedding"] = [
                [fp(viking_identity(item)), float(k), 0.25, 0.5, *padding]
                for k, item in enumerate(items)
            ]
        if params.get("return_sparse"):
            data["sentence_sparse_embedding"] = [
                sparse_for(item.get("text", ""), token_keys=model in TOKEN_KEY_MODELS)
                for item in items
            ]
        tokens = sum(viking_tokens(item) for item in items) * self.usage_scale
        images = sum(1 for item in items if "image" in item)
        if params.get("return_token_usage"):
            usage = {
                "prompt_tokens": tokens,
                "completion_tokens": 0,
                "total_tokens": tokens,
                "image_tokens": 100 * images,
            }
            data["token_usage"] = usage
            if model in HYBRIDS:
                data["model_token_usage"] = {name: dict(usage) for name in HYBRIDS[model]}
        return json_response(
            200, {"code": 0, "message": "success", "request_id": request_id, "data": data}
        )


# --------------------------------------------------------------------------- twins

FAST_RETRY = RetryPolicy(max_retries=3, initial_delay=0.001, max_delay=0.002)


class Twin:
    """A sync or async client behind one awaitable interface, so one test covers both."""

    def __init__(self, kind: str, client: Any, provider: FakeProvider) -> None:
        self.kind = kind
        self.client = client
        self.provider = provider

    @property
    def is_async(self) -> bool:
        return self.kind == "async"

    async def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        result = getattr(self.client, method)(*args, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        return result

    async def embed_texts(self, *args: Any, **kwargs: Any) -> Any:
        return await self.call("embed_texts", *args, **kwargs)

    async def embed_images(self, *args: Any, **kwargs: Any) -> Any:
        return await self.call("embed_images", *args, **kwargs)

    async def embed(self, *args: Any, **kwargs: Any) -> Any:
        return await self.call("embed", *args, **kwargs)

    def set_retry(self, policy: RetryPolicy) -> None:
        self.client.transport.retry = policy


def _mock(kind: str, provider: FakeProvider) -> Any:
    if kind == "async":
        return httpx.AsyncClient(transport=httpx.MockTransport(provider.ahandler))
    return httpx.Client(transport=httpx.MockTransport(provider.handler))


def _twin(kind: str, client: Any, provider: FakeProvider, retry: RetryPolicy | None) -> Twin:
    """``client`` in a :class:`Twin`, its retries (as many as configured) ``retry``-fast."""
    if retry is not None:
        client.transport.retry = RetryPolicy(
            max_retries=client.transport.retry.max_retries,
            initial_delay=retry.initial_delay,
            max_delay=retry.max_delay,
        )
    return Twin(kind, client, provider)


def build_fgclip(kind: str, provider: FakeFGClip | None = None, **kwargs: Any) -> Twin:
    provider = provider or FakeFGClip()
    kwargs.setdefault("api_key", FG_KEY)
    retry = kwargs.pop("retry", FAST_RETRY)
    cls = AsyncFGClipClient if kind == "async" else FGClipClient
    client = cls(http_client=_mock(kind, provider), **kwargs)
    return _twin(kind, client, provider, retry)


def build_viking(kind: str, provider: FakeViking | None = None, **kwargs: Any) -> Twin:
    provider = provider or FakeViking()
    if "token" not in kwargs:
        kwargs.setdefault("access_key", VIKING_AK)
        kwargs.setdefault("secret_key", VIKING_SK)
    # Budgets are off unless a test asks for them: they would only slow other tests.
    kwargs.setdefault("tokens_per_minute", None)
    kwargs.setdefault("images_per_second", None)
    # Each client its own budget: tests share credentials, and must not share a quota.
    kwargs.setdefault("budget", LocalBudget())
    retry = kwargs.pop("retry", FAST_RETRY)
    cls = AsyncVikingClient if kind == "async" else VikingClient
    client = cls(http_client=_mock(kind, provider), **kwargs)
    return _twin(kind, client, provider, retry)


# --------------------------------------------------------------------------- clocks


class FakeClock:
    """Seconds that move only when told (a budget's ``clock``)."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
