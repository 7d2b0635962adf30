"""Acceptance 5: bad input is refused before anything is sent, naming field, index, limit."""

from __future__ import annotations

import base64
import io
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from mm_embed import (
    FullModalItem,
    ImageItem,
    InputError,
    TextImageItem,
    TextItem,
    VideoItem,
)
from mm_embed.inputs import MIN_DOWNSCALE
from tests.unit._helpers import Twin, build_fgclip, build_viking, image_identity, png_bytes

W, H = 100, 80  # the size of every local test image


@dataclass
class Media:
    """Local images of a known size, in every form the clients take."""

    tmp_path: Path
    png: bytes = field(init=False)
    path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.png = png_bytes(W, H)
        self.path = self.tmp_path / "photo.png"
        self.path.write_bytes(self.png)

    def forms(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "str-path": str(self.path),
            "bytes": self.png,
            "pil": Image.open(io.BytesIO(self.png)),
            "file": io.BytesIO(self.png),
            "data-uri": "data:image/png;base64," + base64.b64encode(self.png).decode(),
        }


@pytest.fixture
def media(tmp_path: Path) -> Media:
    return Media(tmp_path)


def truncated_png() -> bytes:
    data = png_bytes(64, 64, noisy=True)
    return data[: len(data) // 2]


@dataclass
class Case:
    """One bad call: ``build(media) -> (args, kwargs)``; ``where`` must be in the message."""

    id: str
    api: str
    method: str
    build: Callable[[Media], tuple[tuple[Any, ...], dict[str, Any]]]
    where: str
    says: str = ""
    client: dict[str, Any] = field(default_factory=dict)


def args(*a: Any, **k: Any) -> Callable[[Media], tuple[tuple[Any, ...], dict[str, Any]]]:
    return lambda m: (a, k)


VIS = {"model": "doubao-embedding-vision", "model_version": "250615"}
VIDEO = "https://example.com/clip.mp4"

CASES = [
    # ---- FG-CLIP texts
    Case("fg-texts-str", "fgclip", "embed_texts", args("one text"), "texts", "list"),
    Case("fg-empty-text", "fgclip", "embed_texts", args(["ok", ""]), "texts[1]", "empty"),
    Case(
        "fg-blank-text", "fgclip", "embed_texts", args(["ok", "ok", " \n\t"]), "texts[2]", "empty"
    ),
    Case("fg-int-text", "fgclip", "embed_texts", args(["ok", 5]), "texts[1]", "str"),
    Case("fg-bytes-text", "fgclip", "embed_texts", args([b"raw"]), "texts[0]", "str"),
    Case(
        "fg-image-as-text", "fgclip", "embed_texts", args(["a", ImageItem(b"x")]), "texts[1]", "str"
    ),
    Case(
        "fg-no-types",
        "fgclip",
        "embed_texts",
        args(["a"], embedding_types=[]),
        "embedding_types",
        "float",
    ),
    Case(
        "fg-none-types",
        "fgclip",
        "embed_texts",
        args(["a"], embedding_types=None),
        "embedding_types",
        "",
    ),
    Case(
        "fg-bad-type",
        "fgclip",
        "embed_texts",
        args(["a"], embedding_types=["float16"]),
        "embedding_types[0]",
        "float16",
    ),
    Case(
        "fg-bad-2nd-type",
        "fgclip",
        "embed_images",
        args([b"x"], embedding_types=["int8", "binary"]),
        "embedding_types[1]",
        "binary",
    ),
    Case(
        "fg-truncate",
        "fgclip",
        "embed_texts",
        args(["a"], truncate="end"),
        "truncate",
        "none, start",
    ),
    Case("fg-truncate-none", "fgclip", "embed_texts", args(["a"], truncate=None), "truncate", ""),
    Case(
        "fg-text-over-body",
        "fgclip",
        "embed_texts",
        args(["a", "b", "c" * 2000]),
        "texts[2]",
        "1024 bytes",
        {"max_body_bytes": 1024},
    ),
    # ---- FG-CLIP images: URLs
    Case(
        "fg-ipv4",
        "fgclip",
        "embed_images",
        args(["https://example.com/a.png", "http://192.168.1.2/a.png"]),
        "images[1]",
        "IP",
    ),
    Case(
        "fg-ipv4-port",
        "fgclip",
        "embed_images",
        args(["http://127.0.0.1:8080/x.jpg"]),
        "images[0]",
        "IP",
    ),
    Case("fg-ipv6", "fgclip", "embed_images", args(["https://[::1]/a.png"]), "images[0]", "IP"),
    Case(
        "fg-ipv6-full",
        "fgclip",
        "embed_images",
        args(["https://[2001:db8::7]:443/a.jpeg"]),
        "images[0]",
        "IP",
    ),
    Case(
        "fg-gif-url",
        "fgclip",
        "embed_images",
        args(["https://example.com/a.gif"]),
        "images[0]",
        "jpg",
    ),
    Case(
        "fg-no-ext-url",
        "fgclip",
        "embed_images",
        args(["https://example.com/a"]),
        "images[0]",
        "jpg",
    ),
    Case(
        "fg-ext-in-query",
        "fgclip",
        "embed_images",
        args(["https://example.com/a?f=x.png"]),
        "images[0]",
        "jpg",
    ),
    Case("fg-ftp", "fgclip", "embed_images", args(["ftp://example.com/a.png"]), "images[0]", "ftp"),
    Case("fg-file-url", "fgclip", "embed_images", args(["file:///tmp/a.png"]), "images[0]", "file"),
    Case("fg-tos", "fgclip", "embed_images", args(["tos://bucket/a.png"]), "images[0]", "tos"),
    # ---- FG-CLIP images: bytes and data URIs
    Case(
        "fg-bad-b64",
        "fgclip",
        "embed_images",
        args(["data:image/png;base64,@@notbase64@@"]),
        "images[0]",
        "base64",
    ),
    Case(
        "fg-text-data-uri",
        "fgclip",
        "embed_images",
        args(["data:text/plain;base64,aGVsbG8="]),
        "images[0]",
        "data:image",
    ),
    Case(
        "fg-uri-not-image",
        "fgclip",
        "embed_images",
        args(["data:image/png;base64,aGVsbG8="]),
        "images[0]",
        "not a readable image",
    ),
    Case(
        "fg-bytes-not-image",
        "fgclip",
        "embed_images",
        args([png_bytes(3, 3), b"GIF? no"]),
        "images[1]",
        "not a readable image",
    ),
    Case("fg-empty-bytes", "fgclip", "embed_images", args([b""]), "images[0]", "empty"),
    Case(
        "fg-truncated-png",
        "fgclip",
        "embed_images",
        args([truncated_png()]),
        "images[0]",
        "truncated",
    ),
    Case(
        "fg-missing-file",
        "fgclip",
        "embed_images",
        args(["/nonexistent/dir/x.png"]),
        "images[0]",
        "not found",
    ),
    Case("fg-int-image", "fgclip", "embed_images", args([12345]), "images[0]", "unsupported"),
    Case("fg-images-str", "fgclip", "embed_images", args("a.png"), "images", "list"),
    Case("fg-images-bytes", "fgclip", "embed_images", args(b"\x89PNG"), "images", "list"),
    Case(
        "fg-image-over-body",
        "fgclip",
        "embed_images",
        args([png_bytes(3, 3), png_bytes(60, 60, noisy=True)]),
        "images[1]",
        "2048 bytes",
        {"max_body_bytes": 2048},
    ),
    # ---- FG-CLIP boxes (checked against the real size of local images)
    Case(
        "box-wider",
        "fgclip",
        "embed_images",
        lambda m: (([m.path],), {"boxes": [[[0, 0, W + 0.5, 10]]]}),
        "boxes[0][0]",
        f"{W}x{H}",
    ),
    Case(
        "box-taller",
        "fgclip",
        "embed_images",
        lambda m: (([m.png],), {"boxes": [[[1, 1, 5, 5], [0, H - 10, 10, 11]]]}),
        "boxes[0][1]",
        "x + w",
    ),
    Case(
        "box-negative",
        "fgclip",
        "embed_images",
        lambda m: (([m.path],), {"boxes": [[[-1, 0, 5, 5]]]}),
        "boxes[0][0]",
        "negative",
    ),
    Case(
        "box-zero-w",
        "fgclip",
        "embed_images",
        lambda m: (([m.path],), {"boxes": [[[0, 0, 0, 5]]]}),
        "boxes[0][0]",
        "positive",
    ),
    Case(
        "box-neg-h",
        "fgclip",
        "embed_images",
        lambda m: (([m.path],), {"boxes": [[[0, 0, 5, -5]]]}),
        "boxes[0][0]",
        "positive",
    ),
    Case(
        "box-nan",
        "fgclip",
        "embed_images",
        lambda m: (([m.path],), {"boxes": [[[math.nan, 0, 5, 5]]]}),
        "boxes[0][0]",
        "finite",
    ),
    Case(
        "box-inf",
        "fgclip",
        "embed_images",
        lambda m: (([m.path],), {"boxes": [[[0, 0, math.inf, 5]]]}),
        "boxes[0][0]",
        "finite",
    ),
    Case(
        "box-3",
        "fgclip",
        "embed_images",
        lambda m: (([m.path],), {"boxes": [[[0, 0, 5]]]}),
        "boxes[0][0]",
        "4 numbers",
    ),
    Case(
        "box-5",
        "fgclip",
        "embed_images",
        lambda m: (([m.path],), {"boxes": [[[0, 0, 5, 5, 5]]]}),
        "boxes[0][0]",
        "4 numbers",
    ),
    Case(
        "box-str",
        "fgclip",
        "embed_images",
        lambda m: (([m.path],), {"boxes": [[["a", 0, 5, 5]]]}),
        "boxes[0][0]",
        "numbers",
    ),
    Case(
        "box-bool",
        "fgclip",
        "embed_images",
        lambda m: (([m.path],), {"boxes": [[[True, 0, 5, 5]]]}),
        "boxes[0][0]",
        "numbers",
    ),
    Case(
        "box-2d-form",
        "fgclip",
        "embed_images",
        lambda m: (([m.path],), {"boxes": [[0, 0, 5, 5]]}),
        "boxes[0][0]",
        "4 numbers",
    ),
    Case(
        "box-count",
        "fgclip",
        "embed_images",
        lambda m: (([m.path],), {"boxes": [[[0, 0, 1, 1]], None]}),
        "boxes",
        "1 entries",
    ),
    Case(
        "box-count-short",
        "fgclip",
        "embed_images",
        lambda m: (([m.path, m.png],), {"boxes": [[[0, 0, 1, 1]]]}),
        "boxes",
        "2 entries",
    ),
    Case(
        "box-not-list",
        "fgclip",
        "embed_images",
        lambda m: (([m.path],), {"boxes": "0,0,1,1"}),
        "boxes",
        "",
    ),
    Case(
        "box-2nd-image",
        "fgclip",
        "embed_images",
        lambda m: (
            ([m.path, m.png],),
            {"boxes": [None, [[0, 0, 1, 1], [0, 0, 2, 2], [99, 0, 2, 2]]]},
        ),
        "boxes[1][2]",
        "leaves",
    ),
    Case(
        "box-url-geometry",
        "fgclip",
        "embed_images",
        args(["https://example.com/a.png"], boxes=[[[0, 0, 0, 1]]]),
        "boxes[0][0]",
        "positive",
    ),
    # ---- Viking: model parameters
    Case("vk-model", "viking", "embed", args(["a"], model="no-such-model"), "model", "bge-m3"),
    Case(
        "vk-version",
        "viking",
        "embed",
        args(["a"], model="doubao-embedding-vision", model_version="999999"),
        "model_version",
        "250615",
    ),
    Case(
        "vk-version-on-unversioned",
        "viking",
        "embed",
        args(["a"], model="bge-m3", model_version="250615"),
        "model_version",
        "",
    ),
    Case(
        "vk-dimension",
        "viking",
        "embed",
        args(["a"], model="bge-m3", dimension=777),
        "dimension",
        "1024",
    ),
    Case(
        "vk-dimension-bool",
        "viking",
        "embed",
        args(["a"], model="bge-m3", dimension=True),
        "dimension",
        "",
    ),
    Case(
        "vk-dimension-default-version",
        "viking",
        "embed",
        args(["a"], model="doubao-embedding-vision", dimension=1024),
        "dimension",
        "3072",
    ),
    Case(
        "vk-sparse-dense-only",
        "viking",
        "embed",
        args(["a"], model="bge-large-zh", return_sparse=True),
        "return_sparse",
        "bge-m3",
    ),
    Case(
        "vk-nothing",
        "viking",
        "embed",
        args(["a"], model="bge-m3", return_dense=False, return_sparse=False),
        "return_dense",
        "",
    ),
    # ---- Viking: inputs against the model
    Case("vk-inputs-str", "viking", "embed", args("one text", model="bge-m3"), "inputs", "list"),
    Case("vk-empty-text", "viking", "embed", args(["a", ""], model="bge-m3"), "inputs[1]", "empty"),
    Case("vk-none", "viking", "embed", args([None], model="bge-m3"), "inputs[0]", "unsupported"),
    Case(
        "vk-dict",
        "viking",
        "embed",
        args(["a", {"text": "b"}], model="bge-m3"),
        "inputs[1]",
        "unsupported",
    ),
    Case(
        "vk-textitem-empty",
        "viking",
        "embed",
        args([TextItem("")], model="bge-m3"),
        "inputs[0]",
        "empty",
    ),
    Case(
        "vk-image-on-text-model",
        "viking",
        "embed",
        args(["a", ImageItem(png_bytes(3, 3))], model="bge-m3"),
        "inputs[1]",
        "'image'",
    ),
    Case(
        "vk-pair-on-text-model",
        "viking",
        "embed",
        args([TextImageItem("a", png_bytes(3, 3))], model="doubao-embedding"),
        "inputs[0]",
        "text-image",
    ),
    Case(
        "vk-full-modal-250328",
        "viking",
        "embed",
        args([FullModalItem(["a"])], model="doubao-embedding-vision", model_version="250328"),
        "inputs[0]",
        "full_modal_seq",
    ),
    Case(
        "vk-full-modal-default",
        "viking",
        "embed",
        args(["x", FullModalItem(["a"])], model="doubao-embedding-vision"),
        "inputs[1]",
        "full_modal_seq",
    ),
    Case(
        "vk-full-modal-bge",
        "viking",
        "embed",
        args([FullModalItem(["a"])], model="bge-visualized-m3"),
        "inputs[0]",
        "full_modal_seq",
    ),
    Case(
        "vk-http-on-bge-vis",
        "viking",
        "embed",
        args([ImageItem("https://example.com/a.png")], model="bge-visualized-m3"),
        "inputs[0]",
        "http",
    ),
    Case(
        "vk-http-pair-on-bge-vis",
        "viking",
        "embed",
        args(["a", TextImageItem("t", "http://example.com/a.jpg")], model="bge-visualized-m3"),
        "inputs[1]",
        "http",
    ),
    Case(
        "vk-bad-image",
        "viking",
        "embed",
        args([ImageItem(b"not an image")], model="bge-visualized-m3"),
        "inputs[0]",
        "not a readable image",
    ),
    Case(
        "vk-truncated-image",
        "viking",
        "embed",
        args([ImageItem(truncated_png())], model="bge-visualized-m3"),
        "inputs[0]",
        "truncated",
    ),
    Case(
        "vk-bad-base64",
        "viking",
        "embed",
        args([ImageItem("base64://@@@")], model="bge-visualized-m3"),
        "inputs[0]",
        "base64",
    ),
    Case(
        "vk-tos-no-key",
        "viking",
        "embed",
        args([ImageItem("tos://bucket")], model="bge-visualized-m3"),
        "inputs[0]",
        "tos://",
    ),
    Case(
        "vk-ftp-image",
        "viking",
        "embed",
        args([ImageItem("ftp://h/a.png")], model="bge-visualized-m3"),
        "inputs[0]",
        "ftp",
    ),
    # ---- Viking: full-modal sequences
    Case(
        "vk-fm-empty",
        "viking",
        "embed",
        args([FullModalItem([])], **VIS),
        "inputs[0]",
        "at least one",
    ),
    Case(
        "vk-fm-part-type",
        "viking",
        "embed",
        args([FullModalItem(["a", 3])], **VIS),  # type: ignore[list-item]
        "inputs[0].parts[1]",
        "int",
    ),
    Case(
        "vk-fm-empty-text",
        "viking",
        "embed",
        args([FullModalItem(["a", ""])], **VIS),
        "inputs[0].parts[1]",
        "empty",
    ),
    Case(
        "vk-fps-high",
        "viking",
        "embed",
        args([FullModalItem(["a", VideoItem(VIDEO, fps=10)])], **VIS),
        "inputs[0].parts[1]",
        "0.2..5.0",
    ),
    Case(
        "vk-fps-low",
        "viking",
        "embed",
        args(["t", FullModalItem([VideoItem(VIDEO, fps=0.1)])], **VIS),
        "inputs[1].parts[0]",
        "0.2..5.0",
    ),
    Case(
        "vk-fps-nan",
        "viking",
        "embed",
        args([FullModalItem([VideoItem(VIDEO, fps=math.nan)])], **VIS),
        "inputs[0].parts[0]",
        "0.2..5.0",
    ),
    Case(
        "vk-fps-bool",
        "viking",
        "embed",
        args([FullModalItem([VideoItem(VIDEO, fps=True)])], **VIS),
        "inputs[0].parts[0]",
        "fps",
    ),
    Case(
        "vk-video-ext",
        "viking",
        "embed",
        args([FullModalItem([VideoItem("/tmp/clip.gif")])], **VIS),
        "inputs[0].parts[0]",
        "mp4",
    ),
    Case(
        "vk-video-scheme",
        "viking",
        "embed",
        args([FullModalItem([VideoItem("ftp://h/v.mp4")])], **VIS),
        "inputs[0].parts[0]",
        "ftp",
    ),
    Case(
        "vk-video-empty",
        "viking",
        "embed",
        args([FullModalItem([VideoItem(b"")])], **VIS),
        "inputs[0].parts[0]",
        "empty",
    ),
    # ---- Viking: body size
    Case(
        "vk-text-over-body",
        "viking",
        "embed",
        args(["a", "b" * 5000, "c"], model="bge-m3"),
        "inputs[1]",
        "4096 bytes",
        {"max_body_bytes": 4096},
    ),
    Case(
        "vk-text-over-body-after-full-modal",
        "viking",
        "embed",
        args([FullModalItem(["a"]), "b" * 5000], **VIS),
        "inputs[1]",
        "4096 bytes",
        {"max_body_bytes": 4096},
    ),
    Case(
        "vk-full-modal-over-body",
        "viking",
        "embed",
        args(["a", FullModalItem(["b" * 5000])], **VIS),
        "inputs[1]",
        "4096 bytes",
        {"max_body_bytes": 4096},
    ),
]


def _twin(api: str, kind: str, **client: Any) -> Twin:
    return (build_fgclip if api == "fgclip" else build_viking)(kind, **client)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_refused_before_sending(kind: str, media: Media, case: Case) -> None:
    twin = _twin(case.api, kind, **case.client)
    a, k = case.build(media)
    with pytest.raises(InputError) as info:
        await twin.call(case.method, *a, **k)
    error = info.value
    message = str(error)
    assert twin.provider.count == 0
    assert isinstance(error, ValueError)
    assert message.startswith(case.where + ":") or message.startswith(case.where + "."), message
    assert case.says in message
    assert error.field is not None and case.where.startswith(error.field.split("[")[0])


@pytest.mark.parametrize("form", ["path", "str-path", "bytes", "pil", "file", "data-uri"])
async def test_boxes_checked_against_the_real_image_size(
    kind: str, media: Media, form: str
) -> None:
    source = media.forms()[form]
    twin = build_fgclip(kind)
    with pytest.raises(InputError, match=r"boxes\[0\]\[1\]"):
        await twin.embed_images([source], boxes=[[[0, 0, W, H], [1, 1, W, 1]]])
    assert twin.provider.count == 0
    # The same box that reaches the very edge is fine.
    source = media.forms()[form]
    result = await twin.embed_images([source], boxes=[[[0, 0, W, H], [W - 1, H - 1, 1, 1]]])
    assert len(result) == 2 and twin.provider.count == 1


@pytest.mark.parametrize("api", ["fgclip", "viking"])
async def test_empty_list_sends_nothing(kind: str, api: str) -> None:
    twin = _twin(api, kind)
    if api == "fgclip":
        results = [
            await twin.embed_texts([]),
            await twin.embed_images([]),
            await twin.embed_images([], boxes=[]),
        ]
    else:
        results = [await twin.embed([], model="bge-m3"), await twin.embed([], model="bge-large-zh")]
    for result in results:
        assert len(result) == 0
        assert result.request_ids == []
    assert twin.provider.count == 0
    if api == "viking":
        assert results[0].sparse == [] and results[1].sparse is None


async def test_empty_list_still_validates_parameters(kind: str) -> None:
    twin = build_viking(kind)
    with pytest.raises(InputError, match="model"):
        await twin.embed([], model="nope")
    fg = build_fgclip(kind)
    with pytest.raises(InputError, match="embedding_types"):
        await fg.embed_texts([], embedding_types=["half"])
    assert twin.provider.count == fg.provider.count == 0


# --------------------------------------------------------------------------- oversized images


def _sent_image_size(body: dict[str, Any]) -> tuple[int, int]:
    width, height = image_identity(body["data"][0]["image"]).split("x")
    return int(width), int(height)


@pytest.mark.parametrize("item", ["image", "text-image"])
async def test_viking_downscales_an_oversized_image(kind: str, item: str) -> None:
    side = 300
    noisy = png_bytes(side, side, noisy=True, seed=7)
    limit = 200_000
    assert len(base64.b64encode(noisy)) > limit  # cannot go as is
    twin = build_viking(kind, max_body_bytes=limit)
    source = ImageItem(noisy) if item == "image" else TextImageItem("caption", noisy)
    with pytest.warns(UserWarning, match=r"inputs\[1\].*downscaled"):
        result = await twin.embed(["first", source], model="bge-visualized-m3")
    assert len(result) == 2
    bodies = twin.provider.seen
    assert all(len(s.request.content) <= limit for s in bodies)
    (sent,) = [s.body for s in bodies if any("image" in d for d in s.body["data"])]
    width, height = _sent_image_size({"data": [d for d in sent["data"] if "image" in d]})
    assert side * MIN_DOWNSCALE <= width < side
    assert side * MIN_DOWNSCALE <= height < side
    assert width == height


async def test_viking_refuses_an_image_that_never_fits(kind: str) -> None:
    noisy = png_bytes(300, 300, noisy=True, seed=3)
    twin = build_viking(kind, max_body_bytes=8192)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "downscaled" warning for an image never sent
        with pytest.raises(InputError) as info:
            await twin.embed(["a", "b", ImageItem(noisy)], model="bge-visualized-m3")
    assert twin.provider.count == 0
    message = str(info.value)
    assert message.startswith("inputs[2]:") and "0.30" in message and "base64 bytes" in message


async def test_viking_small_images_are_not_touched(kind: str) -> None:
    image = png_bytes(40, 30, noisy=True)
    twin = build_viking(kind)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        await twin.embed([ImageItem(image)], model="bge-visualized-m3")
    sent = twin.provider.bodies[0]["data"][0]["image"]
    assert base64.b64decode(sent.removeprefix("base64://")) == image


async def test_nothing_is_sent_when_a_late_input_is_bad(kind: str) -> None:
    """Validation covers every input before the first request, not batch by batch."""
    twin = build_viking(kind)
    inputs: list[Any] = [f"text {i}" for i in range(250)] + [""]
    with pytest.raises(InputError, match=r"inputs\[250\]"):
        await twin.embed(inputs, model="bge-m3")
    fg = build_fgclip(kind)
    with pytest.raises(InputError, match=r"texts\[99\]"):
        await fg.embed_texts([f"t{i}" for i in range(99)] + [""])
    assert twin.provider.count == fg.provider.count == 0


def test_every_input_error_names_field_and_index() -> None:
    error = InputError("too big", field="texts", index=3, limit="32 items")
    assert str(error) == "texts[3]: too big (limit: 32 items)"
    assert (error.field, error.index, error.limit) == ("texts", 3, "32 items")
    assert error.input_indices == (3,)
    assert np.array_equal(np.asarray(error.input_indices), [3])
