"""FG-CLIP contract (docs: shared/spec/fgclip-api.md): request fields, response fields,
limits and errors, each row through FGClipClient / AsyncFGClipClient against the emulator."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mm_embed import AuthenticationError, BadRequestError, InputError
from mm_embed.emulator import SAMPLES, Emulator
from mm_embed.emulator.tokens import count_tokens
from mm_embed.providers.fgclip.protocol import probability
from tests.integration._helpers import Clients, logged_while, records, sample_data_uri

TEXTS = ["a red circle", "一只蓝色的三角形", "green square on white", "8", "10"]
DTYPES = {"float": np.float32, "int8": np.int8, "uint8": np.uint8}


@pytest.mark.parametrize(
    "types",
    [
        ("float",),
        ("int8",),
        ("uint8",),
        ("float", "int8"),
        ("float", "int8", "uint8"),
        ("uint8", "int8"),
    ],
)
async def test_embedding_types(
    clients: Clients, emulator_session: Emulator, types: tuple[str, ...]
) -> None:
    fg = clients.fgclip(emulator_session)
    result = await fg.embed_texts(TEXTS, embedding_types=types)
    assert set(result.dense) == set(types)
    for name in types:
        matrix = result.dense[name]
        assert matrix.dtype == DTYPES[name] and matrix.shape == (len(TEXTS), 768)
    if "float" in types and "int8" in types:
        # Quantised rows follow the float rows they come from.
        f, q = result.dense["float"], result.dense["int8"].astype(np.float64)
        for row in range(len(TEXTS)):
            assert np.corrcoef(f[row], q[row])[0, 1] > 0.99


async def test_dimension_read_from_response(clients: Clients, emulator_session: Emulator) -> None:
    result = await clients.fgclip(emulator_session).embed_texts(["x"])
    assert result.dimension == 768 == result.embeddings.shape[1]


async def test_texts_batched_by_32_in_order(clients: Clients, emulator_session: Emulator) -> None:
    fg = clients.fgclip(emulator_session)
    texts = [f"text number {i}" for i in range(70)]
    result, sent = await logged_while(emulator_session, "fgclip", fg.embed_texts(texts))
    assert sorted(r.items for r in sent) == [6, 32, 32]
    assert all(r.embedded for r in sent)
    assert result.input_indices.tolist() == list(range(70))
    alone = await fg.embed_texts([texts[45], texts[3], texts[69]])
    assert np.allclose(alone.embeddings, result.embeddings[[45, 3, 69]], atol=1e-6)


@pytest.mark.parametrize("form", ["url", "data_uri"])
async def test_images_by_url_and_data_uri(
    clients: Clients, emulator_session: Emulator, form: str
) -> None:
    names = ["red-circle", "blue-triangle", "red-circle-blue-square"]
    if form == "url":
        images = [emulator_session.sample_url(n) for n in names]
    else:
        images = [sample_data_uri(n) for n in names]
    fg = clients.fgclip(emulator_session)
    result = await fg.embed_images(images, embedding_types=("float", "uint8"))
    assert result.embeddings.shape == (3, 768)
    assert result.images is not None and len(result.images) == 3
    for info, name in zip(result.images, names, strict=True):
        assert info is not None
        assert (info.width, info.height, info.format) == (
            SAMPLES[name].width,
            SAMPLES[name].height,
            "PNG",
        )
    assert result.usage.images == 3
    # Same picture by URL or inline: same vector.
    other = await fg.embed_images(
        [sample_data_uri(names[0]) if form == "url" else emulator_session.sample_url(names[0])]
    )
    assert np.allclose(other.embeddings[0], result.embeddings[0], atol=1e-6)


async def test_images_batched_by_32(clients: Clients, emulator_session: Emulator) -> None:
    images = [sample_data_uri(name) for name in SAMPLES] * 5  # 35 images
    fg = clients.fgclip(emulator_session)
    result, sent = await logged_while(emulator_session, "fgclip", fg.embed_images(images))
    assert sorted(r.items for r in sent) == [3, 32]
    n = len(SAMPLES)
    assert np.allclose(result.embeddings[:n], result.embeddings[n : 2 * n], atol=1e-6)


async def test_truncate_start_cuts_to_196_tokens(
    clients: Clients, emulator_session: Emulator
) -> None:
    long = " ".join(f"w{i}" for i in range(250))
    head = " ".join(f"w{i}" for i in range(196))
    assert count_tokens(long) == 250
    fg = clients.fgclip(emulator_session)
    cut = await fg.embed_texts([long, head], truncate="start")
    assert np.allclose(cut.embeddings[0], cut.embeddings[1], atol=1e-6)
    assert cut.usage.prompt_tokens == 2 * 196


async def test_truncate_none_over_196_tokens_is_the_servers_error(
    clients: Clients, emulator_session: Emulator
) -> None:
    long = " ".join(f"w{i}" for i in range(250))
    texts = [f"short {i}" for i in range(40)]
    texts[37] = long  # second wire call (32..39)
    since = len(emulator_session.log)
    with pytest.raises(BadRequestError) as caught:
        await clients.fgclip(emulator_session).embed_texts(texts, truncate="none")
    error = caught.value
    assert error.code == 400 and error.status_code == 200
    assert "196" in error.message
    assert 37 in error.input_indices and set(error.input_indices) <= set(range(32, 40))
    assert "texts[37]" in str(error)  # the caller's index, not the index inside the batch
    assert error.partial_result is not None and len(error.partial_result) == 32
    refused = [r for r in records(emulator_session, "fgclip", since) if r.code == 400]
    assert len(refused) == 1  # not retried


async def test_boxes_flattened_and_mixed_with_whole_images(
    clients: Clients, emulator_session: Emulator
) -> None:
    two = emulator_session.sample_url("red-circle-blue-square")
    red = emulator_session.sample_url("red-circle")
    circle, square = (shape[2] for shape in SAMPLES["red-circle-blue-square"].shapes)
    boxes = [[list(circle), list(square)], None, [[0, 0, 256, 256]]]
    fg = clients.fgclip(emulator_session)
    result, sent = await logged_while(
        emulator_session, "fgclip", fg.embed_images([two, red, red], boxes=boxes)
    )
    assert sorted(r.items for r in sent) == [1, 2]  # one whole-image call, one box call
    assert result.input_indices.tolist() == [0, 0, 1, 2]
    assert result.box_indices is not None and result.box_indices.tolist() == [0, 1, -1, 0]
    rows = result.embeddings
    assert not np.allclose(rows[0], rows[1])  # circle box != square box
    # A box covering the whole picture is the picture.
    assert np.allclose(rows[3], rows[2], atol=1e-6)
    red_text, blue_text = (await fg.embed_texts(["red", "blue"], text_box=True)).embeddings
    assert rows[0] @ red_text > rows[0] @ blue_text
    assert rows[1] @ blue_text > rows[1] @ red_text


async def test_text_box_flag_returns_local_features(
    clients: Clients, emulator_session: Emulator
) -> None:
    fg = clients.fgclip(emulator_session)
    plain = await fg.embed_texts(TEXTS)
    local = await fg.embed_texts(TEXTS, text_box=True)
    assert local.embeddings.shape == plain.embeddings.shape
    assert not np.allclose(local.embeddings, plain.embeddings)


async def test_response_fields(clients: Clients, emulator_session: Emulator) -> None:
    fg = clients.fgclip(emulator_session)
    texts = [f"t{i} 文本" for i in range(40)]
    result, sent = await logged_while(emulator_session, "fgclip", fg.embed_texts(texts))
    assert sorted(result.request_ids) == sorted(r.request_id for r in sent)
    assert result.text_lengths == [len(t) for t in texts]
    assert result.usage.prompt_tokens == sum(count_tokens(t) for t in texts)
    assert result.usage.completion_tokens == 0 and result.usage.images == 0
    assert np.allclose(np.linalg.norm(result.embeddings, axis=1), 1.0, atol=1e-5)
    assert fg.usage.prompt_tokens == result.usage.prompt_tokens


async def test_probability_helper(clients: Clients, emulator_session: Emulator) -> None:
    fg = clients.fgclip(emulator_session)
    image = (await fg.embed_images([emulator_session.sample_url("red-circle")])).embeddings[0]
    texts = (await fg.embed_texts(["a red circle", "a blue triangle"])).embeddings
    cos = texts @ image
    p = np.asarray(probability(cos))
    expected = [1 / (1 + math.exp(-(115.5843 * float(c) - 16.75))) for c in cos]
    assert np.allclose(p, expected)
    assert p[0] > p[1]


async def test_wrong_key_is_401_and_not_retried(
    clients: Clients, emulator_session: Emulator
) -> None:
    fg = clients.fgclip(emulator_session, api_key="not-the-key", max_retries=3)
    since = len(emulator_session.log)
    with pytest.raises(AuthenticationError) as caught:
        await fg.embed_texts(["hi"])
    assert caught.value.status_code == 401 and caught.value.code == 401
    assert "not-the-key" not in str(caught.value)
    assert len(records(emulator_session, "fgclip", since)) == 1
    assert fg.transport.stats.retries == 0


async def test_provider_error_on_http_200_is_raised(
    clients: Clients, emulator_session: Emulator
) -> None:
    # Passes local rules (a domain host, a .png path); only the server finds no picture there.
    missing = emulator_session.sample_url("no-such-sample")
    fg = clients.fgclip(emulator_session)
    since = len(emulator_session.log)
    with pytest.raises(BadRequestError) as caught:
        await fg.embed_images([emulator_session.sample_url("red-circle"), missing])
    error = caught.value
    assert error.status_code == 200 and error.code == 400
    assert "images[1]" in error.message
    sent = records(emulator_session, "fgclip", since)
    assert len(sent) == 1 and sent[0].status == 200 and sent[0].code == 400


async def test_local_limits_send_nothing(clients: Clients, emulator_session: Emulator) -> None:
    fg = clients.fgclip(emulator_session)
    since = len(emulator_session.log)
    with pytest.raises(InputError, match="embedding_types"):
        await fg.embed_texts(["x"], embedding_types=("float16",))
    with pytest.raises(InputError, match="IP"):
        await fg.embed_images(["http://127.0.0.1/x.png"])
    with pytest.raises(InputError, match="boxes"):
        await fg.embed_images([sample_data_uri("red-circle")], boxes=[[[200, 200, 100, 100]]])
    assert records(emulator_session, "fgclip", since) == []
