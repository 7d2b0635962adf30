"""What attacking the core clients turned up, each as a test that fails on the old code:
unbounded image reads, decompression bombs, overflowing boxes, replies accepted without
checks, errors outside the tree, malformed ``Retry-After``, URL passwords in reprs; and
the seed-fidelity rules the core owns (retiring versions, ``image_max_bytes``,
``strict_models``, inline video containers, FG-CLIP reply metadata, the probability)."""

from __future__ import annotations

import asyncio
import io
import math
import struct
import warnings
import zlib
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from mm_embed import (
    AsyncVikingClient,
    ClientClosedError,
    ConfigurationError,
    FGClipClient,
    FullModalItem,
    ImageItem,
    InputError,
    MMEmbedError,
    ResponseFormatError,
    VideoItem,
    VikingClient,
    fgclip_probability,
)
from mm_embed.budgets import LocalBudget
from tests.unit._helpers import (
    FG_KEY,
    VIKING_AK,
    VIKING_SK,
    FakeFGClip,
    FakeViking,
    json_response,
    png_bytes,
)


def bomb_png(width: int, height: int) -> bytes:
    """A valid 1-bit PNG of ``width x height`` whose pixels are never materialised here
    (zlib of all-zero rows compresses ~1000x)."""
    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    compressor = zlib.compressobj(9)
    chunks = [compressor.compress(row) for _ in range(height)]
    data = b"".join(chunks) + compressor.flush()

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (
            struct.pack(">I", len(payload))
            + kind
            + payload
            + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


def viking_reply(vectors: Any, request_id: str = "rid-7") -> httpx.Response:
    return json_response(
        200,
        {
            "code": 0,
            "message": "success",
            "request_id": request_id,
            "data": {"sentence_dense_embedding": vectors},
        },
    )


# --------------------------------------------------------------------------- images (17.3, 17.4)


async def test_decompression_bomb_is_an_input_error_naming_its_index(
    viking: Any, tmp_path: Path
) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(bomb_png(30_000, 30_000))
    assert path.stat().st_size < 2_000_000
    twin = viking()
    with pytest.raises(InputError, match=r"inputs\[1\].*900000000 pixels.*limit: 64000000 pixels"):
        await twin.embed(["fine", ImageItem(str(path))], model="bge-visualized-m3")
    assert twin.provider.count == 0


async def test_pixel_cap_is_configurable(fgclip: Any) -> None:
    twin = fgclip(max_image_pixels=100)
    with pytest.raises(InputError, match=r"images\[0\].*limit: 100 pixels"):
        await twin.embed_images([png_bytes(11, 10)])
    assert len(await twin.embed_images([png_bytes(10, 10)])) == 1


@pytest.mark.parametrize("path", ["/dev/zero", "/dev/urandom", "/"])
async def test_only_regular_files_are_read(viking: Any, path: str) -> None:
    twin = viking()
    with pytest.raises(InputError, match=r"inputs\[0\].*not a regular file"):
        await twin.embed([ImageItem(path)], model="bge-visualized-m3")


async def test_files_over_the_byte_cap_are_refused_unread(fgclip: Any, tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    with big.open("wb") as handle:
        handle.truncate(65 * 1024 * 1024)  # sparse: no disk used
    twin = fgclip()
    with pytest.raises(InputError, match=r"images\[0\].*limit: 67108864 bytes"):
        await twin.embed_images([str(big)])


async def test_a_file_object_is_read_with_the_cap_too(fgclip: Any) -> None:
    class Endless(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def read(self, size: int = -1) -> bytes:
            assert size > 0, "an unbounded read would never end"
            return b"\0" * size

    with pytest.raises(InputError, match=r"images\[0\].*file object is \d+ bytes"):
        await fgclip().embed_images([Endless()])


@pytest.mark.parametrize("value", [10**400, -(10**400)])
async def test_an_overflowing_box_is_an_input_error(fgclip: Any, value: int) -> None:
    twin = fgclip()
    with pytest.raises(InputError, match=r"boxes\[0\]\[0\].*finite"):
        await twin.embed_images([png_bytes(8, 8)], boxes=[[[0, 0, value, 2]]])
    assert twin.provider.count == 0


# --------------------------------------------------------------------------- replies (17.5)


@pytest.mark.parametrize(
    ("vectors", "message"),
    [
        ([[]], r"sentence_dense_embedding\[0\] is an empty vector"),
        ([[0.5] * 512], r"512 dimensions, expected 1024"),
        (
            [["0.5"] + [0.5] * 1023],
            r"sentence_dense_embedding\[0\] holds a value that is not a number",
        ),
        ([[0.5] * 1023 + [True]], r"sentence_dense_embedding\[0\] holds a boolean"),
        ([[1e39] * 1024], r"out of the float32 range"),
        ([[0.5] * 1024, [0.5] * 1000], r"rows differ in length"),
    ],
)
async def test_bad_vectors_are_response_format_errors_naming_request_and_row(
    viking: Any, vectors: Any, message: str
) -> None:
    rows = len(vectors)
    twin = viking(FakeViking(fault=lambda n, body, req: viking_reply(vectors)), max_retries=0)
    with pytest.raises(ResponseFormatError, match=message) as caught:
        await twin.embed([f"t{i}" for i in range(rows)], model="bge-m3", dimension=None)
    assert caught.value.request_id == "rid-7"
    assert "rid-7" in str(caught.value)


async def test_dimension_asked_is_the_dimension_checked(viking: Any) -> None:
    twin = viking(FakeViking(fault=lambda n, body, req: viking_reply([[0.1] * 512])), max_retries=0)
    with pytest.raises(ResponseFormatError, match="512 dimensions, expected 1024"):
        await twin.embed(["x"], model="doubao-embedding", dimension=1024)


async def test_dimensions_that_differ_between_batches(fgclip: Any) -> None:
    def fault(n: int, body: dict[str, Any], request: httpx.Request) -> httpx.Response | None:
        if n == 0:
            return None
        answer = FakeFGClip().answer(n, body)
        payload = answer.json()
        payload["data"]["embeddings"]["float"] = [
            [*row, 0.0] for row in payload["data"]["embeddings"]["float"]
        ]
        return json_response(200, payload)

    twin = fgclip(FakeFGClip(fault=fault), max_batch_size=2, max_concurrency=1, max_retries=0)
    with pytest.raises(
        ResponseFormatError, match=r"5 dimensions where request fg-0 had 4.*input 2"
    ):
        await twin.embed_texts(["a", "b", "c"])


# --------------------------------------------------------------------------- errors (17.7)


async def _close(twin: Any) -> None:
    if twin.is_async:
        await twin.client.aclose()
    else:
        twin.client.close()


async def test_closed_clients_raise_an_error_of_the_tree(viking: Any, fgclip: Any) -> None:
    vk, fg = viking(), fgclip()
    await _close(vk)
    await _close(fg)
    with pytest.raises(ClientClosedError, match="closed") as caught:
        await vk.embed(["x"], model="bge-m3")
    assert isinstance(caught.value, MMEmbedError) and isinstance(caught.value, RuntimeError)
    with pytest.raises(ClientClosedError):
        await fg.embed_texts(["x"])
    assert vk.provider.count == fg.provider.count == 0


def test_an_injected_async_client_refuses_a_second_loop_clearly() -> None:
    provider = FakeViking()
    http = httpx.AsyncClient(transport=httpx.MockTransport(provider.ahandler))
    client = AsyncVikingClient(VIKING_AK, VIKING_SK, http_client=http, budget=LocalBudget())

    async def both() -> None:
        await client.embed(["a"], model="bge-m3")

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(both())
        other = asyncio.new_event_loop()
        try:
            with pytest.raises(ConfigurationError, match="bound to the event loop"):
                other.run_until_complete(both())
        finally:
            other.close()
    finally:
        loop.close()


@pytest.mark.parametrize("header", ["nan", "-5", "inf", "soon"])
async def test_malformed_retry_after_means_backoff_not_at_once(
    viking: Any, header: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mm_embed import transport as transport_module

    slept: list[float] = []
    monkeypatch.setattr(transport_module, "_sleep", slept.append)

    async def asleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(transport_module, "_asleep", asleep)
    fails = iter([True, True, False])

    def fault(n: int, body: dict[str, Any], request: httpx.Request) -> httpx.Response | None:
        if next(fails):
            return json_response(503, {"code": 1000028, "message": "busy"}, {"Retry-After": header})
        return None

    twin = viking(FakeViking(fault=fault))
    await twin.embed(["x"], model="bge-m3")
    assert len(slept) == 2 and all(math.isfinite(s) and s > 0 for s in slept)


# --------------------------------------------------------------------------- URLs (17.9)


def test_passwords_in_base_url_never_show() -> None:
    url = "http://alice:s3cret-pw@proxy.example.com:8080/path"
    clients: list[Any] = [
        VikingClient(VIKING_AK, VIKING_SK, base_url=url, budget=LocalBudget()),
        FGClipClient(FG_KEY, base_url=url),
    ]
    for client in clients:
        shown = (
            repr(client) + repr(client.transport) + str(vars(client.transport).get("base_url", ""))
        )
        assert "s3cret-pw" not in repr(client) and "s3cret-pw" not in repr(client.transport)
        assert "alice" not in repr(client)
        assert "proxy.example.com:8080" in shown
        client.close()


# --------------------------------------------------------------------------- seed rules (18)


async def test_retiring_version_warns_once_per_process(viking: Any) -> None:
    from mm_embed.providers import _client

    _client._warned.clear()
    twin = viking()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        await twin.embed(["a"], model="doubao-embedding-vision")
        await twin.embed(["b"], model="doubao-embedding-vision")
        await twin.embed(["c"], model="doubao-embedding-vision", model_version="241215")
        await twin.embed(["d"], model="doubao-embedding-vision", model_version="250615")
    texts = [str(w.message) for w in caught if "待下线" in str(w.message)]
    assert len(texts) == 2  # version omitted, version named: two messages, each once
    assert all("250615" in t for t in texts)
    # The wire default is kept: no version is sent when none is given.
    assert "model_version" not in twin.provider.bodies[0]["model"]["params"]


async def test_large_images_are_recompressed_to_image_max_bytes(viking: Any) -> None:
    noisy = png_bytes(900, 900, noisy=True, seed=3)
    assert len(noisy) > 1024 * 1024
    twin = viking()
    with pytest.warns(
        UserWarning,
        match=r"inputs\[0\]: image re-encoded and downscaled .* bytes\) to fit image_max_bytes",
    ):
        await twin.embed([ImageItem(noisy)], model="bge-visualized-m3")
    sent = twin.provider.bodies[0]["data"][0]["image"]
    import base64

    raw = base64.b64decode(sent.removeprefix("base64://"))
    assert len(raw) <= 1024 * 1024
    with Image.open(io.BytesIO(raw)) as img:
        assert img.width >= 0.30 * 900 - 1


async def test_image_max_bytes_none_sends_as_is(viking: Any) -> None:
    noisy = png_bytes(700, 700, noisy=True, seed=4)
    twin = viking(image_max_bytes=None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no re-encoding, no warning
        await twin.embed([ImageItem(noisy)], model="bge-visualized-m3")
    sent = twin.provider.bodies[0]["data"][0]["image"]
    assert sent == "base64://" + __import__("base64").b64encode(noisy).decode()


async def test_an_image_that_cannot_fit_at_030_is_an_input_error(viking: Any) -> None:
    twin = viking(image_max_bytes=2_000)
    with pytest.raises(InputError, match=r"inputs\[0\].*0.30 of its width and height"):
        await twin.embed(
            [ImageItem(png_bytes(600, 600, noisy=True, seed=5))], model="bge-visualized-m3"
        )
    assert twin.provider.count == 0


async def test_strict_models_false_sends_unknown_models_with_one_warning(viking: Any) -> None:
    from mm_embed.providers import _client

    _client._warned.clear()
    twin = viking(strict_models=False)
    with pytest.warns(UserWarning, match="not in the catalogue"):
        await twin.embed(["x"], model="doubao-embedding-next", dimension=777)
    params = twin.provider.bodies[0]["model"]
    assert params["model_name"] == "doubao-embedding-next"
    assert params["params"]["embedding_dimension"] == 777
    with pytest.raises(InputError, match="unknown model"):
        await viking().embed(["x"], model="doubao-embedding-next")


def test_strict_models_on_fgclip() -> None:
    with pytest.raises(ConfigurationError, match="unknown FG-CLIP model"):
        FGClipClient(FG_KEY, model="fg-clip-2")
    with pytest.warns(UserWarning, match="fg-clip-2"):
        client = FGClipClient(FG_KEY, model="fg-clip-2", strict_models=False)
    assert client.model == "fg-clip-2"


@pytest.mark.parametrize(
    "video",
    [b"fakevideo", b"\x00" * 64, "base64://ZmFrZXZpZGVv"],
)
async def test_inline_video_must_be_a_real_container(viking: Any, video: Any) -> None:
    twin = viking()
    item = FullModalItem(["clip", VideoItem(video)])
    with pytest.raises(InputError, match=r"inputs\[0\].*not an MP4/MOV or AVI"):
        await twin.embed([item], model="doubao-embedding-vision", model_version="250615")
    assert twin.provider.count == 0


async def test_mp4_and_avi_containers_pass(viking: Any) -> None:
    mp4 = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 16
    avi = b"RIFF\x10\x00\x00\x00AVI LIST" + b"\x00" * 16
    twin = viking()
    items = [FullModalItem([VideoItem(mp4)]), FullModalItem([VideoItem(avi)])]
    assert (
        len(await twin.embed(items, model="doubao-embedding-vision", model_version="250615")) == 2
    )


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/a.jpg?x=1",
        "https://example.com/a.png#frag",
        "https://example.com/a.jpg/",
    ],
)
async def test_fgclip_urls_must_end_in_the_suffix(fgclip: Any, url: str) -> None:
    twin = fgclip()
    with pytest.raises(InputError, match=r"images\[0\].*must end in jpg.*data URI"):
        await twin.embed_images([url])
    assert twin.provider.count == 0


async def test_fgclip_reply_metadata_is_kept_and_merged(fgclip: Any) -> None:
    twin = fgclip(max_batch_size=2)
    result = await twin.embed_texts(["a", "b", "c"])
    assert len(result.meta.replies) == 2
    assert result.meta.api_version == "2.1.0"
    assert result.meta.created == "2025-12-31 09:18:25.901"
    assert result.meta.timestamp == 1769589915
    assert result.meta.latencys == [None, None]
    assert [r.request_id for r in result.meta.replies] == result.request_ids


def test_fgclip_probability_scalars_and_arrays() -> None:
    assert fgclip_probability(16.75 / 115.5843) == pytest.approx(0.5)
    assert isinstance(fgclip_probability(0.3), float)
    values = fgclip_probability(np.array([0.0, 0.1, 0.2, 0.3]))
    assert values.shape == (4,) and np.all(np.diff(values) > 0)
    assert np.all((values >= 0) & (values <= 1))
    assert fgclip_probability([[0.1, 0.2]]).shape == (1, 2)


@pytest.mark.parametrize(
    ("body", "plain"),
    [
        (b'{"data":{"v":[[1,2.5,-3e-4],[0,1E+2,7]],"u":{"a":1}}}', True),
        (b'{"data":{"v":[[1,true]]}}', False),
        (b'{"data":{"v":[[1,false]]}}', False),
        (b'{"data":{"v":[[1,null]]}}', False),
        (b'{"data":{"v":[[1,"2"]]}}', False),
        (b'{"data":{"v":[[1,2]],"v":[["x"]]}}', False),  # a duplicate key: the last wins
        (b'{"data":{"w":[[1,2]]}}', False),
        (b'{"data":{"v":[[1,2]', False),
    ],
)
def test_the_fast_path_is_taken_only_for_plain_numbers(body: bytes, plain: bool) -> None:
    from mm_embed.providers._wire import plain_numbers

    assert plain_numbers(body, b'"v"') is plain
