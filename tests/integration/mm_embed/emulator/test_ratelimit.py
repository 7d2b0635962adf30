"""Quotas: tokens per minute per model and images per second produce 1000029 / 429."""

from __future__ import annotations

from typing import Any

from mm_embed.emulator.ratelimit import Budgets, TokenBucket
from tests.integration._helpers import (
    b64_media,
    data_uri,
    fg_post,
    image_body,
    solid_png,
    text_body,
    texts,
    vbody,
    viking_post,
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_refills() -> None:
    clock = Clock()
    bucket = TokenBucket(10, 1.0, clock)
    assert bucket.try_take(6) and not bucket.try_take(6)
    clock.now = 2.0
    assert bucket.try_take(6)
    assert not bucket.try_take(1)
    clock.now = 100.0
    assert bucket.try_take(50)  # larger than capacity: admitted from a full bucket...
    assert not bucket.try_take(1)  # ...and the debt blocks the next one


def test_budgets_disabled() -> None:
    budgets = Budgets(None, None)
    assert all(budgets.admit("m", 10**9, 10**6) is None for _ in range(3))


def test_tpm_per_model(make_emulator: Any) -> None:
    emu = make_emulator(tpm=10)
    six = vbody("bge-m3", texts("one two three four five six"))
    assert viking_post(emu, six).status_code == 200
    r = viking_post(emu, six)
    assert r.status_code == 429
    payload = r.json()
    assert (
        payload["code"] == 1000029
        and "tokens per minute" in payload["message"]
        and payload["request_id"]
    )
    # Another model has its own budget.
    assert viking_post(emu, vbody("bge-large-zh", texts("one two three"))).status_code == 200
    assert emu.log[-2].code == 1000029 and not emu.log[-2].embedded


def test_images_per_second(make_emulator: Any) -> None:
    emu = make_emulator(images_per_second=2, retry_after=1)
    img = {"data_type": "image", "image": b64_media(solid_png())}
    body = vbody("bge-visualized-m3", [img, img])
    assert viking_post(emu, body).status_code == 200
    r = viking_post(emu, body)
    assert r.status_code == 429 and r.json()["code"] == 1000029
    assert r.headers["Retry-After"] == "1"
    # Texts are not images.
    assert viking_post(emu, vbody("bge-visualized-m3", texts("x"))).status_code == 200


def test_fgclip_budgets(make_emulator: Any) -> None:
    emu = make_emulator(images_per_second=1, tpm=5)
    one = image_body([data_uri(solid_png())])
    assert fg_post(emu, one).status_code == 200
    r = fg_post(emu, one)
    assert r.status_code == 429 and r.json()["context"]["code"] == 429
    assert fg_post(emu, text_body(["a b c d"])).status_code == 200
    assert fg_post(emu, text_body(["a b c d"])).status_code == 429
