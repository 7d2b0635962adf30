"""Viking embedding v2 contract (docs: shared/spec/viking-embedding-v2.md): every model
row, modalities, sparse/dense/usage switches and auth, through VikingClient /
AsyncVikingClient against the emulator."""

from __future__ import annotations

import inspect
import socket

import numpy as np
import pytest

from mm_embed import (
    AuthenticationError,
    FullModalItem,
    ImageItem,
    InputError,
    NotFoundError,
    TextImageItem,
    VideoItem,
    sparse_index,
)
from mm_embed.emulator import Emulator, sample_png
from mm_embed.providers._wire import dumps
from mm_embed.providers.viking import catalogue
from mm_embed.providers.viking import protocol as proto
from tests.integration._helpers import Clients, records

TEXTS = ["hello world", "向量数据库", "a red circle"]
VIDEO = b"\x00\x00\x00\x18ftypmp42 contract test video bytes"

ROWS = [
    (model, version if version != "default" else None, dim)
    for model, spec in catalogue.MODELS.items()
    for version, v in spec.versions.items()
    for dim in [None, *sorted(v.dimensions)]
]


@pytest.mark.parametrize(("model", "version", "dim"), ROWS)
async def test_dimension_per_model_version(
    clients: Clients, emulator_session: Emulator, model: str, version: str | None, dim: int | None
) -> None:
    spec = catalogue.MODELS[model]
    expected = dim or spec.version(version).dimension
    vk = clients.viking(emulator_session)
    result = await vk.embed(TEXTS, model=model, model_version=version, dimension=dim)
    assert result.embeddings.shape == (3, expected) and result.dimension == expected
    assert np.allclose(np.linalg.norm(result.embeddings, axis=1), 1.0, atol=1e-4)
    assert (result.sparse is not None) == spec.sparse
    assert result.model == model


@pytest.mark.parametrize(
    ("model", "version"),
    [
        ("doubao-embedding-vision", "241215"),
        ("doubao-embedding-vision", "250328"),
        ("doubao-embedding-vision", "250615"),
        ("bge-visualized-m3", None),
    ],
)
async def test_text_image_and_pairs(
    clients: Clients, emulator_session: Emulator, model: str, version: str | None
) -> None:
    red, blue = sample_png("red-circle"), sample_png("blue-triangle")
    inputs = ["a red circle", ImageItem(red), TextImageItem("a red circle", red), ImageItem(blue)]
    vk = clients.viking(emulator_session)
    result = await vk.embed(inputs, model=model, model_version=version, return_token_usage=True)
    rows = result.embeddings
    assert rows.shape[0] == 4 and np.isfinite(rows).all()
    assert rows[1] @ rows[0] > rows[3] @ rows[0]  # the red picture is closer to "red"
    assert result.usage.image_tokens > 0


async def test_http_image_only_for_vision(clients: Clients, emulator_session: Emulator) -> None:
    url = emulator_session.sample_url("red-circle")
    vk = clients.viking(emulator_session)
    by_url = await vk.embed(
        [ImageItem(url)], model="doubao-embedding-vision", model_version="250328"
    )
    inline = await vk.embed(
        [ImageItem(sample_png("red-circle"))],
        model="doubao-embedding-vision",
        model_version="250328",
    )
    assert np.allclose(by_url.embeddings, inline.embeddings, atol=1e-6)
    with pytest.raises(InputError, match="inputs"):
        await vk.embed([ImageItem(url)], model="bge-visualized-m3")


@pytest.mark.parametrize("model", ["bge-m3", "doubao-embedding", "doubao-embedding-large-and-m3"])
async def test_text_only_models_refuse_images_locally(
    clients: Clients, emulator_session: Emulator, model: str
) -> None:
    since = len(emulator_session.log)
    with pytest.raises(InputError) as caught:
        await clients.viking(emulator_session).embed(
            ["ok", ImageItem(sample_png("red-circle"))], model=model
        )
    assert caught.value.index == 1
    assert records(emulator_session, "viking", since) == []


async def test_full_modal_seq_alone_with_fps(clients: Clients, emulator_session: Emulator) -> None:
    # Off: the client's estimate for a video (16 frames) would pace these calls.
    vk = clients.viking(emulator_session, tokens_per_minute=None)
    slow = FullModalItem(["a clip", ImageItem(sample_png("red-circle")), VideoItem(VIDEO, fps=0.5)])
    fast = FullModalItem(["a clip", ImageItem(sample_png("red-circle")), VideoItem(VIDEO, fps=2.0)])
    since = len(emulator_session.log)
    result = await vk.embed(
        ["before", slow, "middle", fast, "after"],
        model="doubao-embedding-vision",
        model_version="250615",
        return_token_usage=True,
    )
    sent = records(emulator_session, "viking", since)
    assert sorted(r.items for r in sent) == [1, 1, 3]  # each sequence alone, texts together
    assert result.embeddings.shape == (5, 2048)
    assert result.input_indices.tolist() == list(range(5))
    # fps drives the frame count: 16 frames at 0.5 fps, 32 at 2 fps (64 tokens a frame).
    one = await vk.embed(
        [slow], model="doubao-embedding-vision", model_version="250615", return_token_usage=True
    )
    two = await vk.embed(
        [fast], model="doubao-embedding-vision", model_version="250615", return_token_usage=True
    )
    assert two.usage.image_tokens - one.usage.image_tokens == 16 * 64


@pytest.mark.parametrize("version", ["241215", "250328"])
async def test_full_modal_only_on_250615(
    clients: Clients, emulator_session: Emulator, version: str
) -> None:
    with pytest.raises(InputError, match="full_modal_seq"):
        await clients.viking(emulator_session).embed(
            [FullModalItem(["x"])], model="doubao-embedding-vision", model_version=version
        )


SPARSE = [name for name, spec in catalogue.MODELS.items() if spec.sparse]
DENSE_ONLY = [name for name, spec in catalogue.MODELS.items() if not spec.sparse]


@pytest.mark.parametrize("model", SPARSE)
async def test_sparse_keys_and_index(
    clients: Clients, emulator_session: Emulator, model: str
) -> None:
    vk = clients.viking(emulator_session)
    result = await vk.embed(TEXTS, model=model)
    assert result.sparse is not None and len(result.sparse) == 3
    numeric = catalogue.MODELS[model].sparse_keys == "id"
    for vector in result.sparse:
        assert len(vector) > 0
        assert all(key.isdigit() == numeric for key in vector.weights)
        assert vector.to_dict() == {sparse_index(k): w for k, w in vector.weights.items()}
        if numeric:
            assert set(vector.indices) == {int(k) for k in vector.weights}
        else:
            assert all(i >= 2**30 for i in vector.indices)
    # Dense off: sparse only; sparse off: dense only.
    sparse_only = await vk.embed(TEXTS, model=model, return_dense=False)
    assert sparse_only.dense == {} and sparse_only.sparse is not None
    assert [v.weights for v in sparse_only.sparse] == [v.weights for v in result.sparse]
    dense_only = await vk.embed(TEXTS, model=model, return_sparse=False)
    assert dense_only.sparse is None and dense_only.embeddings.shape[0] == 3


@pytest.mark.parametrize("model", DENSE_ONLY)
async def test_sparse_refused_for_dense_models(
    clients: Clients, emulator_session: Emulator, model: str
) -> None:
    since = len(emulator_session.log)
    with pytest.raises(InputError, match="return_sparse"):
        await clients.viking(emulator_session).embed(["x"], model=model, return_sparse=True)
    assert records(emulator_session, "viking", since) == []


@pytest.mark.parametrize(
    "model",
    ["bge-m3", "bge-large-zh-and-m3", "doubao-embedding-and-m3", "doubao-embedding-large-and-m3"],
)
async def test_token_usage(clients: Clients, emulator_session: Emulator, model: str) -> None:
    vk = clients.viking(emulator_session, tokens_per_minute=None)
    quiet = await vk.embed(TEXTS, model=model)
    assert quiet.usage.total_tokens == 0 and quiet.usage.by_model == {}
    result = await vk.embed(TEXTS, model=model, return_token_usage=True)
    usage = result.usage
    assert usage.prompt_tokens > 0 and usage.total_tokens == usage.prompt_tokens
    # Usage per underlying model comes only when asked for (return_model_token_usage).
    assert result.model_usage == {}
    detailed = await vk.embed(TEXTS, model=model, return_model_token_usage=True)
    components = catalogue.MODELS[model].component_models
    assert set(detailed.model_usage) == set(components)
    assert all(part.total_tokens > 0 for part in detailed.model_usage.values())
    # Summed over the call's requests: one request per text gives the same totals.
    split = clients.viking(emulator_session, tokens_per_minute=None, max_batch_size=1)
    per_text = await split.embed(TEXTS, model=model, return_model_token_usage=True)
    assert len(per_text.request_ids) == len(TEXTS) > 1
    assert {k: v.total_tokens for k, v in per_text.model_usage.items()} == {
        k: v.total_tokens for k, v in detailed.model_usage.items()
    }


@pytest.mark.parametrize("mode", ["hmac", "token"])
async def test_auth_modes(clients: Clients, emulator_session: Emulator, mode: str) -> None:
    since = len(emulator_session.log)
    result = await clients.viking(emulator_session, mode=mode).embed(["x"], model="bge-m3")
    assert len(result) == 1
    sent = records(emulator_session, "viking", since)
    assert [r.auth for r in sent] == [mode]


@pytest.mark.parametrize(
    ("mode", "bad"),
    [
        ("hmac", {"secret_key": "wrong-secret"}),
        ("hmac", {"access_key": "AKLTnobody"}),
        ("token", {"token": "wrong"}),
    ],
)
async def test_wrong_credentials(
    clients: Clients, emulator_session: Emulator, mode: str, bad: dict[str, str]
) -> None:
    vk = clients.viking(emulator_session, mode=mode, **bad)
    since = len(emulator_session.log)
    with pytest.raises(AuthenticationError) as caught:
        await vk.embed(["x", "y"], model="bge-m3")
    error = caught.value
    assert error.code == 1000001 and error.status_code == 401
    assert error.request_id == records(emulator_session, "viking", since)[0].request_id
    assert len(records(emulator_session, "viking", since)) == 1  # not retried
    for secret in bad.values():
        assert secret not in str(error)


async def test_unknown_model_refused_locally(clients: Clients, emulator_session: Emulator) -> None:
    since = len(emulator_session.log)
    with pytest.raises(InputError, match="model"):
        await clients.viking(emulator_session).embed(["x"], model="bge-large-en")
    with pytest.raises(InputError, match="model_version"):
        await clients.viking(emulator_session).embed(
            ["x"], model="doubao-embedding", model_version="250101"
        )
    assert records(emulator_session, "viking", since) == []


@pytest.mark.parametrize(
    "model",
    [
        {"model_name": "bge-large-en"},
        {"model_name": "doubao-embedding", "params": {"model_version": "250101"}},
        {"model_name": "bge-large-zh", "params": {"return_sparse": True}},
    ],
)
async def test_server_model_failure_1000025(
    clients: Clients, emulator_session: Emulator, model: dict[str, object]
) -> None:
    # What local validation stops, sent anyway through the client's own signed transport
    # and parser: the server's refusal maps to NotFoundError with the provider's code.
    vk = clients.viking(emulator_session)
    body = dumps({"model": model, "data": [{"data_type": "text", "text": "x"}]})

    def parse(status: int, content: bytes, retry_after: float | None) -> object:
        request = proto.resolve_request(model="bge-large-en", return_sparse=False, strict=False)
        return proto.parse_response(status, content, expected_rows=1, request=request)

    async def post() -> object:
        sent = vk.transport.post(catalogue.PATH, body, parse)
        return await sent if inspect.isawaitable(sent) else sent

    with pytest.raises(NotFoundError) as caught:
        await post()
    assert caught.value.code == 1000025 and caught.value.status_code == 404
    assert "failed to calcTextEmbedding" in caught.value.message


async def test_ping(clients: Clients, emulator_session: Emulator) -> None:
    assert await clients.viking(emulator_session).ping() is True
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    down = clients.viking(emulator_session, base_url=f"http://127.0.0.1:{port}", timeout=2.0)
    assert await down.ping() is False
