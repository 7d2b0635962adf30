"""The provider pages' rules the first round missed, each run against the emulator with
our own clients (both flavours): what the client does before sending, and what the
emulator answers when the rule is bypassed."""

from __future__ import annotations

import base64
import io
import warnings
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from mm_embed import (
    FullModalItem,
    ImageItem,
    InputError,
    NotFoundError,
    VideoItem,
    fgclip_probability,
)
from mm_embed.emulator import Emulator, sample_png
from mm_embed.providers import _client
from tests.integration._helpers import Clients, noisy_png, records, sample_data_uri

MP4 = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 40


@pytest.fixture(autouse=True)
def _fresh_warnings() -> None:
    # "Once per process": each test starts with a process that has warned about nothing.
    _client._warned.clear()


async def test_retiring_version_warns_once(clients: Clients, emulator_session: Emulator) -> None:
    vk = clients.viking(emulator_session)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = await vk.embed(["a"], model="doubao-embedding-vision")
        await vk.embed(["b"], model="doubao-embedding-vision")
    retiring = [w for w in caught if "待下线" in str(w.message)]
    assert len(retiring) == 1
    # The wire default is kept: the server picks 241215 (3072-d) when no version is sent.
    assert first.embeddings.shape == (1, 3072)


async def test_images_over_a_mebibyte_are_recompressed(
    clients: Clients, emulator_session: Emulator
) -> None:
    big = noisy_png(800, 800, seed=11)
    assert len(big) > 1024 * 1024
    vk = clients.viking(emulator_session, images_per_second=None)
    since = len(emulator_session.log)
    with pytest.warns(UserWarning, match=r"inputs\[0\]: image re-encoded"):
        result = await vk.embed(
            [ImageItem(big)], model="doubao-embedding-vision", model_version="250615"
        )
    assert result.embeddings.shape == (1, 2048)
    sent = records(emulator_session, "viking", since)
    assert [r.status for r in sent] == [200]


async def test_image_max_bytes_off_sends_the_original(
    clients: Clients, emulator_session: Emulator
) -> None:
    big = noisy_png(700, 700, seed=12)
    vk = clients.viking(emulator_session, images_per_second=None, image_max_bytes=None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = await vk.embed([ImageItem(big)], model="bge-visualized-m3")
    assert len(result) == 1


async def test_fgclip_reply_metadata(clients: Clients, emulator_session: Emulator) -> None:
    fg = clients.fgclip(emulator_session, max_batch_size=2)
    result = await fg.embed_texts(["a", "b", "c"])
    assert len(result.meta.replies) == 2 == len(result.request_ids)
    assert result.meta.api_version == "2.1.0"
    assert result.meta.created is not None and result.meta.created[:2] == "20"
    assert isinstance(result.meta.timestamp, (int, float)) and result.meta.timestamp > 1.7e9
    assert result.meta.latencys == [r.latencys for r in result.meta.replies]


async def test_probability_of_matching_and_unrelated_pairs(
    clients: Clients, emulator_session: Emulator
) -> None:
    fg = clients.fgclip(emulator_session)
    images = (await fg.embed_images([sample_png("red-circle")])).embeddings
    texts = (await fg.embed_texts(["a red circle", "kubectl rollout undo"])).embeddings
    cosines = texts @ images[0]
    probabilities = fgclip_probability(cosines)
    assert probabilities.shape == (2,)
    assert np.all((probabilities >= 0) & (probabilities <= 1))
    assert probabilities[0] > probabilities[1]


async def test_url_suffix_rule_before_sending_and_at_the_server(
    clients: Clients, emulator_session: Emulator
) -> None:
    fg = clients.fgclip(emulator_session)
    since = len(emulator_session.log)
    with pytest.raises(InputError, match=r"images\[0\].*data URI"):
        await fg.embed_images(["https://example.com/a.jpg?x=1"])
    assert records(emulator_session, "fgclip", since) == []
    async with httpx.AsyncClient() as http:
        raw = await http.post(
            emulator_session.url + "/models/interface",
            headers={
                "Authorization": f"Bearer {emulator_session.api_key}",
                "accept": "application/json",
            },
            json={
                "model": "fg-clip",
                "input_type": "image",
                "embedding_types": ["float"],
                "images": ["https://example.com/a.jpg?x=1"],
            },
        )
    assert raw.json()["context"]["code"] != 0


async def test_strict_models_false_reaches_the_server(
    clients: Clients, emulator_session: Emulator
) -> None:
    lenient = clients.viking(emulator_session, strict_models=False, max_retries=0)
    since = len(emulator_session.log)
    with (
        pytest.warns(UserWarning, match="not in the catalogue"),
        pytest.raises(NotFoundError) as caught,
    ):
        await lenient.embed(["x"], model="doubao-embedding-2027")
    # Sent as asked; the server (which does not know it either) answers 1000025.
    assert caught.value.code == 1000025
    assert [r.model for r in records(emulator_session, "viking", since)] == [
        "doubao-embedding-2027"
    ]
    # A version the catalogue lacks goes too, when asked.
    with pytest.warns(UserWarning, match="250101"), pytest.raises(NotFoundError):
        await lenient.embed(["x"], model="doubao-embedding", model_version="250101")
    strict = clients.viking(emulator_session)
    with pytest.raises(InputError, match="unknown model"):
        await strict.embed(["x"], model="doubao-embedding-2027")


async def test_inline_video_containers(clients: Clients, emulator_session: Emulator) -> None:
    vk = clients.viking(emulator_session)
    ok = await vk.embed(
        [FullModalItem(["clip", VideoItem(MP4, fps=1)])],
        model="doubao-embedding-vision",
        model_version="250615",
    )
    assert ok.embeddings.shape == (1, 2048)
    since = len(emulator_session.log)
    with pytest.raises(InputError, match="not an MP4/MOV or AVI"):
        await vk.embed(
            [FullModalItem([VideoItem(b"fakevideo")])],
            model="doubao-embedding-vision",
            model_version="250615",
        )
    assert records(emulator_session, "viking", since) == []


def _jpeg(size: int) -> bytes:
    buffer = io.BytesIO()
    Image.frombytes("RGB", (size, size), bytes(range(256)) * (size * size * 3 // 256)).save(
        buffer, format="JPEG", quality=95
    )
    return buffer.getvalue()


async def test_fgclip_data_uris_of_every_accepted_format(
    clients: Clients, emulator_session: Emulator
) -> None:
    fg = clients.fgclip(emulator_session)
    jpeg = "data:image/jpeg;base64," + base64.b64encode(_jpeg(64)).decode()
    result = await fg.embed_images([sample_data_uri("red-circle"), jpeg])
    assert result.embeddings.shape == (2, 768)


@pytest.mark.parametrize("lenient", [False, True])
def test_emulator_strictness_is_a_choice(
    make_emulator: Callable[..., Emulator], lenient: bool
) -> None:
    emu = make_emulator(lenient=lenient)
    # What fgclip-mcp 0.1.2 sends: no embedding_types, no accept header.
    reply = httpx.post(
        emu.url + "/models/interface",
        headers={"Authorization": f"Bearer {emu.api_key}"},
        json={"model": "fg-clip", "input_type": "text", "texts": ["hello"]},
    )
    payload: Any = reply.json()
    if lenient:
        assert payload["context"]["code"] == 0
        assert len(payload["data"]["embeddings"]["float"][0]) == 768
    else:
        assert payload["context"]["code"] != 0
