"""The bad-input table: malformed inputs across both APIs, through the blocking and the
async clients.

Rows of kind ``local`` must raise :class:`InputError` before anything is sent (the
emulator's log stays empty) with a message naming the field, the item's index and, where
there is one, the limit. Rows of kind ``provider`` are rules only the provider can check
(it counts tokens, it fetches URLs): its error must come back as an ``APIStatusError``
carrying the provider's code and message, after exactly one request (never retried).
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio

from mm_embed import (
    APIStatusError,
    FullModalItem,
    ImageItem,
    InputError,
    TextImageItem,
    VideoItem,
)
from mm_embed.emulator import Emulator
from tests.integration._helpers import fg_client, noisy_png, viking_client

VISION = "doubao-embedding-vision"
IMG = noisy_png(40, 30, 1)  # 40x30: boxes are checked against this size
MP4 = b"\x00\x00\x00\x18ftypmp42" + bytes(64)
HUGE_TEXT = "x" * (5 * 1024 * 1024)  # 5 MB: over the 4 MB body limit on its own
LONG_TEXT = "word " * 300  # 300 tokens: over FG-CLIP's 196, only the server counts


@dataclass(frozen=True)
class Env:
    fg: Any
    vk: Any
    small_vk: Any  # max_body_bytes=8192: an image that cannot be shrunk enough
    emu: Emulator


@dataclass(frozen=True)
class Case:
    id: str
    run: Callable[[Env], Any]
    #: Substrings the message must contain: the field with its index, then the limit.
    expect: tuple[str, ...]
    #: For provider rows: the provider's code; ``None`` for local rows.
    code: int | None = None
    index: int | None = None


def fg_texts(texts: Any, **kw: Any) -> Callable[[Env], Any]:
    return lambda env: env.fg.embed_texts(texts, **kw)


def fg_images(images: Any, **kw: Any) -> Callable[[Env], Any]:
    return lambda env: env.fg.embed_images(images, **kw)


def vk(inputs: Any, model: str = "bge-m3", **kw: Any) -> Callable[[Env], Any]:
    return lambda env: env.vk.embed(inputs, model=model, **kw)


def boxes(*per_image: Any) -> Callable[[Env], Any]:
    return fg_images([IMG] * len(per_image), boxes=list(per_image))


def lone_fg_image(case_id: str, image: Any, *expect: str) -> Case:
    """FG-CLIP refuses ``image``, sent alone: the message names ``images[0]`` and ``expect``."""
    return Case(case_id, fg_images([image]), ("images[0]", *expect), index=0)


def lone_vk_input(case_id: str, item: Any, *expect: str, model: str = VISION) -> Case:
    """Viking's ``model`` refuses ``item``, sent alone: the message names ``inputs[0]`` and
    ``expect``."""
    return Case(case_id, vk([item], model=model), ("inputs[0]", *expect), index=0)


V250615 = {"model": VISION, "model_version": "250615"}
TRUNCATED_PNG = IMG[: len(IMG) // 2]

CASES = [
    # ---------------------------------------------------------------- FG-CLIP texts
    Case("fg-texts-a-str", fg_texts("hello"), ("texts: texts must be a list",)),
    Case("fg-texts-none", fg_texts(None), ("texts: texts must be a list",)),
    Case("fg-texts-dict", fg_texts({"a": "b"}), ("texts: texts must be a list",)),
    Case("fg-text-int", fg_texts(["a", "b", 3]), ("texts[2]", "expected a str, got int"), index=2),
    Case("fg-text-none", fg_texts(["a", None]), ("texts[1]", "got NoneType"), index=1),
    Case("fg-text-bytes", fg_texts([b"abc"]), ("texts[0]", "got bytes"), index=0),
    Case("fg-text-empty", fg_texts(["ok", ""]), ("texts[1]", "text is empty"), index=1),
    Case("fg-text-blank", fg_texts(["ok", "a", " \n\t"]), ("texts[2]", "empty"), index=2),
    Case(
        "fg-text-5mb",
        fg_texts(["ok", HUGE_TEXT]),
        ("texts[1]", "body limit", "4194304 bytes"),
        index=1,
    ),
    Case(
        "fg-embedding-type",
        fg_texts(["a"], embedding_types=["float16"]),
        ("embedding_types[0]", "float16", "float, int8, uint8"),
        index=0,
    ),
    Case(
        "fg-embedding-types-empty",
        fg_texts(["a"], embedding_types=[]),
        ("embedding_types", "at least one", "float, int8, uint8"),
    ),
    Case("fg-truncate", fg_texts(["a"], truncate="end"), ("truncate", "'end'", "none, start")),
    # ---------------------------------------------------------------- FG-CLIP images
    Case("fg-images-bytes", fg_images(IMG), ("images: images must be a list",)),
    Case(
        "fg-image-int",
        fg_images([IMG, 12345]),
        ("images[1]", "unsupported image type int"),
        index=1,
    ),
    lone_fg_image("fg-image-not-image", b"hello, not an image", "not a readable image"),
    Case("fg-image-empty-bytes", fg_images([IMG, b""]), ("images[1]", "empty (0 bytes)"), index=1),
    lone_fg_image("fg-image-truncated-png", TRUNCATED_PNG, "truncated"),
    Case(
        "fg-image-bad-base64",
        fg_images([IMG, "data:image/png;base64,@@not base64@@"]),
        ("images[1]", "invalid base64"),
        index=1,
    ),
    lone_fg_image(
        "fg-image-data-uri-not-image",
        "data:text/plain;base64,aGVsbG8=",
        "data:image/<format>;base64",
    ),
    lone_fg_image("fg-image-ip-host", "http://127.0.0.1/cat.png", "IP address"),
    lone_fg_image("fg-image-ipv6-host", "http://[::1]/cat.png", "IP address"),
    lone_fg_image("fg-image-ftp", "ftp://example.com/cat.png", "unsupported URL scheme 'ftp'"),
    lone_fg_image("fg-image-file-scheme", "file:///etc/passwd", "unsupported URL scheme 'file'"),
    lone_fg_image("fg-image-gif-url", "https://example.com/cat.gif", "jpg|jpeg|png|bmp"),
    lone_fg_image("fg-image-tos", "tos://bucket/cat.png", "tos://"),
    lone_fg_image("fg-image-missing-file", "/nonexistent/dir/cat.png", "file not found"),
    # ---------------------------------------------------------------- FG-CLIP boxes
    Case(
        "fg-box-nan",
        boxes([[0, 0, 5, 5]], [[math.nan, 0, 5, 5]]),
        ("boxes[1][0]", "finite"),
    ),
    Case("fg-box-inf", boxes([[0, 0, math.inf, 5]]), ("boxes[0][0]", "finite")),
    Case(
        "fg-box-negative",
        boxes([[0, 0, 5, 5], [-1, 0, 5, 5]]),
        ("boxes[0][1]", "negative", "x >= 0, y >= 0"),
    ),
    Case(
        "fg-box-zero-size", boxes([[0, 0, 0, 5]]), ("boxes[0][0]", "not positive", "w > 0, h > 0")
    ),
    Case(
        "fg-box-outside",
        boxes([[30, 20, 20, 5]]),
        ("boxes[0][0]", "leaves the 40x30 image", "x + w <= W, y + h <= H"),
    ),
    Case("fg-box-three-numbers", boxes([[0, 0, 5]]), ("boxes[0][0]", "4 numbers")),
    Case("fg-box-strings", boxes([["a", 0, 5, 5]]), ("boxes[0][0]", "numbers")),
    Case("fg-box-bools", boxes([[True, 0, 5, 5]]), ("boxes[0][0]", "numbers")),
    Case(
        "fg-boxes-too-many-lists",
        fg_images([IMG], boxes=[[[0, 0, 5, 5]], [[0, 0, 5, 5]]]),
        ("boxes", "one entry per image", "1 entries"),
    ),
    Case(
        "fg-boxes-not-a-list", fg_images([IMG], boxes="0,0,5,5"), ("boxes", "one entry per image")
    ),
    # ---------------------------------------------------------------- Viking
    Case("vk-inputs-a-str", vk("hello"), ("inputs: inputs must be a list",)),
    Case("vk-input-int", vk(["a", "b", 42]), ("inputs[2]", "unsupported input type int"), index=2),
    Case("vk-input-empty", vk(["a", ""]), ("inputs[1]", "text is empty"), index=1),
    Case(
        "vk-text-5mb", vk(["a", HUGE_TEXT]), ("inputs[1]", "body limit", "4194304 bytes"), index=1
    ),
    Case(
        "vk-unknown-model", vk(["a"], model="gpt-4"), ("model", "unknown model 'gpt-4'", "bge-m3")
    ),
    Case(
        "vk-image-on-text-model",
        vk(["a", ImageItem(IMG)]),
        ("inputs[1]", "does not take 'image'", "text"),
        index=1,
    ),
    lone_vk_input(
        "vk-text-image-on-text-model",
        TextImageItem("a", IMG),
        "'text-image'",
        model="doubao-embedding",
    ),
    lone_vk_input(
        "vk-full-modal-on-241215", FullModalItem(["a"]), "version 241215", "'full_modal_seq'"
    ),
    lone_vk_input(
        "vk-http-image-on-visualized",
        ImageItem("https://example.com/a.png"),
        "http(s) media",
        model="bge-visualized-m3",
    ),
    lone_vk_input("vk-image-bad-base64", ImageItem("base64://!!!"), "invalid base64"),
    Case(
        "vk-image-truncated",
        vk(["a", ImageItem(TRUNCATED_PNG)], model=VISION),
        ("inputs[1]", "truncated"),
        index=1,
    ),
    lone_vk_input("vk-image-not-image", ImageItem(b"GIF89a-not-really"), "not a readable image"),
    lone_vk_input(
        "vk-image-ftp", ImageItem("ftp://example.com/a.png"), "unsupported URL scheme 'ftp'"
    ),
    lone_vk_input("vk-tos-no-key", ImageItem("tos://bucket"), "tos://{bucket}/{key}"),
    lone_vk_input("vk-text-image-empty-text", TextImageItem("  ", IMG), "empty"),
    Case("vk-dimension", vk(["a"], dimension=777), ("dimension", "777", "1024")),
    Case(
        "vk-dimension-bool",
        vk(["a"], model="doubao-embedding", dimension=True),
        ("dimension", "512, 1024, 2048"),
    ),
    Case(
        "vk-sparse-on-dense-model",
        vk(["a"], model="doubao-embedding", return_sparse=True),
        ("return_sparse", "no sparse vectors", "bge-m3"),
    ),
    Case(
        "vk-nothing-to-return",
        vk(["a"], return_dense=False, return_sparse=False),
        ("return_dense", "nothing to return"),
    ),
    Case(
        "vk-model-version",
        vk(["a"], model=VISION, model_version="999"),
        ("model_version", "'999'", "241215, 250328, 250615"),
    ),
    Case(
        "vk-full-modal-empty",
        vk([FullModalItem([])], **V250615),
        ("inputs[0]", "at least one part"),
        index=0,
    ),
    Case(
        "vk-full-modal-bad-part",
        vk([FullModalItem(["a", 3.5])], **V250615),  # type: ignore[list-item]
        ("inputs[0].parts[1]", "not float"),
    ),
    Case(
        "vk-fps-too-high",
        vk([FullModalItem(["a", VideoItem(MP4, fps=10)])], **V250615),
        ("inputs[0].parts[1].fps", "10", "0.2..5.0"),
    ),
    Case(
        "vk-fps-nan",
        vk([FullModalItem([VideoItem(MP4, fps=math.nan)])], **V250615),
        ("inputs[0].parts[0].fps", "nan", "0.2..5.0"),
    ),
    Case(
        "vk-fps-negative",
        vk([FullModalItem([VideoItem(MP4, fps=-1)])], **V250615),
        ("inputs[0].parts[0].fps", "-1", "0.2..5.0"),
    ),
    Case(
        "vk-fps-string",
        vk([FullModalItem([VideoItem(MP4, fps="2")])], **V250615),  # type: ignore[arg-type]
        ("inputs[0].parts[0].fps", "'2'", "0.2..5.0"),
    ),
    Case(
        "vk-video-gif-path",
        vk([FullModalItem([VideoItem("clip.gif")])], **V250615),
        ("inputs[0].parts[0]", "MP4, AVI or MOV", "mp4|avi|mov"),
    ),
    Case(
        "vk-video-over-50mb",
        vk([FullModalItem([VideoItem(bytes(50 * 1024 * 1024 + 1))])], **V250615),
        ("inputs[0].parts[0]", "52428801 bytes", "50 MB"),
    ),
    Case(
        "vk-image-over-body-even-downscaled",
        lambda env: env.small_vk.embed([ImageItem(noisy_png(200, 200, 200))], model=VISION),
        ("inputs[0]", "even at 0.30", "base64 bytes"),
        index=0,
    ),
    # ---------------------------------------------------------------- the provider decides
    Case(
        "fg-text-over-196-tokens",
        fg_texts(["ok", LONG_TEXT]),
        ("texts[1]", "300 tokens", "196"),
        code=400,
    ),
    Case(
        "fg-image-url-404",
        lambda env: env.fg.embed_images([env.emu.sample_url("no-such-sample")]),
        ("images[0]", "could not be downloaded"),
        code=400,
    ),
    Case(
        "vk-tos-object-missing",
        vk([ImageItem("tos://bucket/missing.png")], model=VISION),
        ("tos object not found",),
        code=1000003,
    ),
]


def test_the_table_is_big_enough() -> None:
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)
    assert sum(c.id.startswith("fg-") for c in CASES) >= 20
    assert sum(c.id.startswith("vk-") for c in CASES) >= 20


# One loop for the module, so each flavour's clients are built once (not per row).
@pytest_asyncio.fixture(
    scope="module", loop_scope="module", params=[False, True], ids=["sync", "async"]
)
async def env(emu: Emulator, request: pytest.FixtureRequest) -> AsyncIterator[Env]:
    asynchronous: bool = request.param
    clients = (
        fg_client(emu, asynchronous=asynchronous),
        viking_client(emu, asynchronous=asynchronous),
        viking_client(emu, asynchronous=asynchronous, max_body_bytes=8192),
    )
    yield Env(*clients, emu=emu)
    for client in clients:
        if asynchronous:
            await client.aclose()
        else:
            client.close()


async def run(case: Case, env: Env) -> None:
    outcome = case.run(env)
    if inspect.isawaitable(outcome):
        await outcome


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.filterwarnings("ignore:inputs\\[0\\]. image downscaled")
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_bad_input(env: Env, case: Case) -> None:
    env.emu.clear_log()
    expected = InputError if case.code is None else APIStatusError
    with pytest.raises(expected) as caught:
        await run(case, env)
    error = caught.value
    message = str(error)
    for part in case.expect:
        assert part in message, f"{part!r} not in {message!r}"
    if isinstance(error, InputError):
        assert env.emu.log == [], "an input error must be raised before anything is sent"
        if case.index is not None:
            assert error.index == case.index and error.input_indices == (case.index,)
        # "texts[2]: ...", "boxes[1][0]: ...", "inputs[0].parts[1].fps: ...": the first
        # number is the caller's input, and .index says the same (it drives a resume).
        located = re.match(r"[a-z_]+\[(\d+)\]", message)
        assert error.index == (int(located[1]) if located else None)
        # field[index]: message (limit: ...) -- the field comes first.
        assert message.startswith(case.expect[0].split("[")[0].split(":")[0])
    else:
        assert isinstance(error, APIStatusError)
        assert error.code == case.code
        assert len(env.emu.log) == 1, "a provider refusal is not retried"
        assert error.input_indices  # which inputs the refused request held
