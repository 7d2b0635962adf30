"""FG-CLIP route: success body, every request rule, error shapes, boxes, quantisation."""

from __future__ import annotations

import io
import re
import time
import uuid
from typing import Any

import numpy as np
import pytest
from PIL import Image

from mm_embed.emulator import Emulator, sample_png
from tests.integration._helpers import (
    data_uri,
    fg_error,
    fg_ok,
    fg_post,
    image_body,
    solid_png,
    text_body,
)


def vecs(data: dict[str, Any], kind: str = "float") -> np.ndarray:
    return np.asarray(data["embeddings"][kind], dtype=np.float64)


def test_text_success_body(emulator_session: Emulator) -> None:
    data = fg_ok(emulator_session, text_body(["an apple", "two apples"]))
    uuid.UUID(data["id"], version=4)
    assert set(data["embeddings"]) == {"float", "int8", "uint8"}
    assert data["embeddings"]["int8"] is None and data["embeddings"]["uint8"] is None
    v = vecs(data)
    assert v.shape == (2, 768)
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert data["texts"] == ["8", "10"]
    assert data["images"] == []
    meta = data["meta"]
    assert meta["api_version"] == {"version": "2.1.0"}
    assert meta["billed_units"] == {"images": 0, "input_tokens": 4, "output_tokens": 0}
    assert meta["latencys"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}", data["created"])


def test_success_context(emulator_session: Emulator) -> None:
    r = fg_post(emulator_session, text_body(["hello"]))
    context = r.json()["context"]
    assert context["code"] == 0 and context["message"] == "OK"
    assert abs(context["timestamp"] - time.time()) < 60


def test_image_success_metadata(emulator_session: Emulator) -> None:
    jpeg = solid_png((30, 60, 220), (40, 30), fmt="JPEG")
    bmp = solid_png((30, 160, 50), (20, 10), fmt="BMP")
    grey = io.BytesIO()
    Image.new("L", (8, 8), 128).save(grey, format="PNG")
    data = fg_ok(
        emulator_session,
        image_body(
            [
                data_uri(jpeg, "jpeg"),
                data_uri(bmp, "bmp"),
                data_uri(grey.getvalue()),
                emulator_session.sample_url(),
            ]
        ),
    )
    assert data["images"] == [
        {"width": 40, "height": 30, "format": "JPEG", "bit_depth": 24},
        {"width": 20, "height": 10, "format": "BMP", "bit_depth": 24},
        {"width": 8, "height": 8, "format": "PNG", "bit_depth": 8},
        {"width": 256, "height": 256, "format": "PNG", "bit_depth": 24},
    ]
    assert data["texts"] == []
    assert data["meta"]["billed_units"]["images"] == 4
    assert vecs(data).shape == (4, 768)


def test_quantisations_consistent_with_float(emulator_session: Emulator) -> None:
    data = fg_ok(
        emulator_session,
        text_body(["red apple", "蓝色的天空"], embedding_types=["float", "int8", "uint8"]),
    )
    f = vecs(data)
    i8 = np.asarray(data["embeddings"]["int8"])
    u8 = np.asarray(data["embeddings"]["uint8"])
    assert i8.min() >= -128 and i8.max() <= 127 and u8.min() >= 0 and u8.max() <= 255
    expected = np.clip(np.rint(f * 127 / np.abs(f).max(axis=1, keepdims=True)), -128, 127)
    assert np.array_equal(i8, expected)
    assert np.array_equal(u8, i8 + 128)
    # The quantised vectors point the same way as the float ones.
    cos = (i8 * f).sum(axis=1) / np.linalg.norm(i8, axis=1)
    assert (cos > 0.99).all()


def test_only_requested_types(emulator_session: Emulator) -> None:
    data = fg_ok(emulator_session, text_body(["x"], embedding_types=["uint8"]))
    assert data["embeddings"]["float"] is None and data["embeddings"]["int8"] is None
    assert len(data["embeddings"]["uint8"][0]) == 768


def test_deterministic(emulator_session: Emulator) -> None:
    body = text_body(["the same words", "相同的文字"])
    assert (
        fg_ok(emulator_session, body)["embeddings"] == fg_ok(emulator_session, body)["embeddings"]
    )


def test_shared_words_are_closer(emulator_session: Emulator) -> None:
    v = vecs(
        fg_ok(
            emulator_session,
            text_body(["a small red apple", "a red apple on a table", "quantum field theory"]),
        )
    )
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2


def test_colour_words_retrieve_matching_images(emulator_session: Emulator) -> None:
    emu = emulator_session
    names = ["red-circle", "green-square", "blue-triangle", "yellow-circle"]
    images = vecs(fg_ok(emu, image_body([emu.sample_url(n) for n in names])))
    queries = vecs(
        fg_ok(emu, text_body(["a red circle", "green square", "蓝色的三角形", "yellow"]))
    )
    assert list((queries @ images.T).argmax(axis=1)) == [0, 1, 2, 3]


def test_auth_missing_and_wrong_key(emulator_session: Emulator) -> None:
    for key in ("", "wrong"):
        r = fg_post(emulator_session, text_body(["x"]), key=key)
        assert r.status_code == 401
        payload = r.json()
        assert payload["data"] is None and payload["context"]["code"] == 401
        assert "key" in payload["context"]["message"].lower()


def test_box_features_flattened_in_order(emulator_session: Emulator) -> None:
    emu = emulator_session
    two = emu.sample_url("red-circle-blue-square")
    one = emu.sample_url("green-square")
    boxes = [[[16, 72, 104, 104], [136, 72, 104, 104]], [[48, 48, 160, 160]]]
    data = fg_ok(emu, image_body([two, one], image_boxes=boxes))
    got = vecs(data)
    assert got.shape == (3, 768)
    assert len(data["images"]) == 2
    # Each box vector is the vector of its crop sent as an image of its own.
    crops = []
    for name, entry in (("red-circle-blue-square", boxes[0]), ("green-square", boxes[1])):
        image = Image.open(io.BytesIO(sample_png(name)))
        for x, y, w, h in entry:
            out = io.BytesIO()
            image.crop((x, y, x + w, y + h)).save(out, format="PNG")
            crops.append(data_uri(out.getvalue()))
    expected = vecs(fg_ok(emu, image_body(crops)))
    assert np.allclose(got, expected, atol=1e-6)
    # The red box is closer to "red circle" than the blue one is.
    query = vecs(fg_ok(emu, text_body(["red circle"])))[0]
    assert query @ got[0] > query @ got[1]


def test_local_text_features(emulator_session: Emulator) -> None:
    emu = emulator_session
    crop = vecs(
        fg_ok(
            emu,
            image_body(
                [emu.sample_url("red-circle-blue-square")], image_boxes=[[[16, 72, 104, 104]]]
            ),
        )
    )[0]
    global_v = vecs(fg_ok(emu, text_body(["a red circle"])))[0]
    local_v = vecs(fg_ok(emu, text_body(["a red circle"], text_box_flag=True)))[0]
    assert not np.allclose(global_v, local_v)
    assert global_v @ local_v > 0.5
    assert local_v @ crop > global_v @ crop


def test_truncate_start_and_none(emulator_session: Emulator) -> None:
    emu = emulator_session
    long_text = " ".join(f"w{i}" for i in range(250))
    head = " ".join(f"w{i}" for i in range(196))
    message = fg_error(emu, text_body(["ok", long_text]))
    assert "texts[1]" in message and "196" in message
    assert "texts[1]" in fg_error(emu, text_body(["ok", long_text], truncate="none"))
    cut = fg_ok(emu, text_body([long_text], truncate="start"))
    assert cut["texts"] == [str(len(long_text))]
    assert cut["meta"]["billed_units"]["input_tokens"] == 196
    assert np.allclose(vecs(cut), vecs(fg_ok(emu, text_body([head]))))
    fg_ok(emu, text_body([head]))
    # CJK characters count one token each.
    assert "texts[0]" in fg_error(emu, text_body(["字" * 197]))
    fg_ok(emu, text_body(["字" * 196]))


def test_item_limits(emulator_session: Emulator) -> None:
    emu = emulator_session
    assert len(fg_ok(emu, text_body([f"t{i}" for i in range(32)]))["embeddings"]["float"]) == 32
    assert "texts" in fg_error(emu, text_body([f"t{i}" for i in range(33)]))
    tiny = data_uri(solid_png(size=(4, 4)))
    assert "images" in fg_error(emu, image_body([tiny] * 33))
    assert len(fg_ok(emu, image_body([tiny] * 32))["images"]) == 32


BASE = text_body(["x"])


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"model": None}, "model"),
        ({"model": "fg-clip-2"}, "model"),
        ({"input_type": None}, "input_type"),
        ({"input_type": "audio"}, "input_type"),
        ({"embedding_types": None}, "embedding_types"),
        ({"embedding_types": []}, "embedding_types"),
        ({"embedding_types": "float"}, "embedding_types"),
        ({"embedding_types": ["float", "binary"]}, "embedding_types[1]"),
        ({"truncate": "end"}, "truncate"),
        ({"text_box_flag": "yes"}, "text_box_flag"),
        ({"texts": None}, "texts"),
        ({"texts": []}, "texts"),
        ({"texts": "hello"}, "texts"),
        ({"texts": ["ok", 3]}, "texts[1]"),
        ({"texts": ["ok", "  "]}, "texts[1]"),
        ({"images": ["data:image/png;base64,AAAA"]}, "images"),
        ({"image_boxes": [[[0, 0, 1, 1]]]}, "image_boxes"),
    ],
)
def test_text_request_rules(emulator_session: Emulator, change: dict[str, Any], field: str) -> None:
    body = {k: v for k, v in {**BASE, **change}.items() if v is not None}
    assert field in fg_error(emulator_session, body)


def test_body_must_be_json_object(emulator_session: Emulator) -> None:
    import httpx

    url = emulator_session.url + "/models/interface"
    auth = {"Authorization": f"Bearer {emulator_session.api_key}"}
    for content, ctype in (
        (b"[1, 2]", "application/json"),
        (b"{not json", "application/json"),
        (b"{}", "text/plain"),
    ):
        r = httpx.post(url, content=content, headers={**auth, "Content-Type": ctype}, timeout=10)
        payload = r.json()
        assert (
            r.status_code == 200 and payload["context"]["code"] == 400 and payload["data"] is None
        )


@pytest.mark.parametrize(
    ("image", "words"),
    [
        ("https://127.0.0.1/x.png", "IP"),
        ("http://[::1]:80/x.png", "IP"),
        ("https://example.com/x.gif", ".jpg"),
        ("https://example.com/x", ".jpg"),
        ("ftp://example.com/x.png", "http"),
        ("example.com/x.png", "http"),
        ("data:image/gif;base64,R0lGODlh", "unsupported"),
        ("data:text/plain;base64,aGVsbG8=", "data URI"),
        ("data:image/png;base64,@@@notbase64", "base64"),
        ("data:image/png;base64,aGVsbG8gd29ybGQ=", "not a valid image"),
        ("https://example.com/picture.png", "could not be downloaded"),
        ("https://images.example.com/a/b.JPG?x=1", "must end in .jpg"),
        ("https://images.example.com/a/b.JPG", "could not be downloaded"),
    ],
)
def test_image_rules(emulator_session: Emulator, image: str, words: str) -> None:
    started = time.monotonic()
    message = fg_error(emulator_session, image_body([data_uri(solid_png()), image]))
    assert "images[1]" in message and words in message
    assert time.monotonic() - started < 5  # no network attempt for other hosts


def test_gif_bytes_under_png_label_refused(emulator_session: Emulator) -> None:
    gif = io.BytesIO()
    Image.new("RGB", (4, 4)).save(gif, format="GIF")
    assert "images[0]" in fg_error(emulator_session, image_body([data_uri(gif.getvalue(), "png")]))


def test_image_request_rules(emulator_session: Emulator) -> None:
    emu = emulator_session
    img = data_uri(solid_png(size=(100, 50)))
    assert "texts" in fg_error(emu, image_body([img], texts=["x"]))
    assert "images" in fg_error(emu, image_body([]))
    fg_ok(emu, image_body([img], texts=[]))  # empty list of the other kind is fine
    fg_ok(emu, image_body([img], image_boxes=[]))


@pytest.mark.parametrize(
    ("boxes", "field"),
    [
        ([[[0, 0, 10, 10]], [[0, 0, 10, 10]]], "image_boxes"),  # more entries than images
        ([[0, 0, 10, 10]], "image_boxes[0]"),  # the 2-D form of the page's curl example
        ([[]], "image_boxes[0]"),
        ([[[0, 0, 10]]], "image_boxes[0][0]"),
        ([[[0, 0, "10", 10]]], "image_boxes[0][0]"),
        ([[[0, 0, True, 10]]], "image_boxes[0][0]"),
        ([[[-1, 0, 10, 10]]], "image_boxes[0][0]"),
        ([[[0, 0, 0, 10]]], "image_boxes[0][0]"),
        ([[[0, 0, 10, -5]]], "image_boxes[0][0]"),
        ([[[0, 0, 10, 10], [95, 0, 10, 10]]], "image_boxes[0][1]"),  # x + w > W
        ([[[0, 45.5, 10, 5]]], "image_boxes[0][0]"),  # y + h > H
        ("boxes", "image_boxes"),
    ],
)
def test_box_rules(emulator_session: Emulator, boxes: Any, field: str) -> None:
    img = data_uri(solid_png(size=(100, 50)))
    message = fg_error(emulator_session, image_body([img], image_boxes=boxes))
    assert field in message


def test_box_on_the_edge_is_fine(emulator_session: Emulator) -> None:
    img = data_uri(solid_png(size=(100, 50)))
    data = fg_ok(
        emulator_session,
        image_body([img], image_boxes=[[[0, 0, 100, 50], [90.5, 40.25, 9.5, 9.75]]]),
    )
    assert len(data["embeddings"]["float"]) == 2


def test_url_fetched_from_an_allowed_server(
    emulator_session: Emulator, emulator: Emulator, make_emulator: Any
) -> None:
    """The emulator downloads from its allow-list; here from a second emulator."""
    fetching = make_emulator(fetch_allow=(f"localhost:{emulator.port}",))
    other = f"http://localhost:{emulator.port}/samples/blue-triangle.png"
    own = emulator_session.sample_url("blue-triangle")
    a = fg_ok(fetching, image_body([other]))
    b = fg_ok(emulator_session, image_body([own]))
    assert a["embeddings"] == b["embeddings"]
    assert [r.path for r in emulator.log] == []  # samples are not embedding requests
    missing = f"http://localhost:{emulator.port}/samples/nothing-here.png"
    assert "could not be downloaded" in fg_error(fetching, image_body([missing]))
    # Not on its allow-list: refused the same way.
    assert "could not be downloaded" in fg_error(emulator_session, image_body([other]))
