"""Viking embedding v2 route: models, dimensions, sparse keys, usage, every error rule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from mm_embed.emulator import Emulator, sample_png
from mm_embed.providers.viking import MODELS
from tests.integration._helpers import (
    b64_media,
    solid_png,
    texts,
    vbody,
    viking_error,
    viking_ok,
    viking_post,
)

CASES = [
    (name, version, dim)
    for name, spec in MODELS.items()
    for version, info in spec.versions.items()
    for dim in sorted(info.dimensions)
]


@pytest.mark.parametrize(("model", "version", "dim"), CASES)
def test_dimensions_per_model_version(
    emulator_session: Emulator, model: str, version: str, dim: int
) -> None:
    params: dict[str, Any] = {"embedding_dimension": dim}
    if version != "default":
        params["model_version"] = version
    data = viking_ok(emulator_session, vbody(model, texts("hello world", "你好"), **params))
    dense = np.asarray(data["sentence_dense_embedding"])
    assert dense.shape == (2, dim)
    assert np.allclose(np.linalg.norm(dense, axis=1), 1.0, atol=1e-5)
    assert ("sentence_sparse_embedding" in data) == MODELS[model].sparse


@pytest.mark.parametrize("model", sorted(MODELS))
def test_default_dimension(emulator_session: Emulator, model: str) -> None:
    spec = MODELS[model]
    data = viking_ok(emulator_session, vbody(model, texts("hello")))
    assert len(data["sentence_dense_embedding"][0]) == spec.versions[spec.default_version].dimension
    assert "token_usage" not in data and "model_token_usage" not in data


def test_reduced_dimension_is_prefix(emulator_session: Emulator) -> None:
    full = np.asarray(
        viking_ok(emulator_session, vbody("doubao-embedding-large", texts("abc")))[
            "sentence_dense_embedding"
        ][0]
    )
    small = np.asarray(
        viking_ok(
            emulator_session, vbody("doubao-embedding-large", texts("abc"), embedding_dimension=512)
        )["sentence_dense_embedding"][0]
    )
    assert np.allclose(small, full[:512] / np.linalg.norm(full[:512]), atol=1e-5)


def test_models_differ_and_hybrid_dense_matches_component(emulator_session: Emulator) -> None:
    def dense(model: str) -> list[float]:
        return viking_ok(emulator_session, vbody(model, texts("same text")))[
            "sentence_dense_embedding"
        ][0]  # type: ignore[no-any-return]

    assert dense("bge-m3") != dense("bge-large-zh")
    # bge-large-zh-and-m3 takes its dense vector from bge-large-zh (as the page says).
    assert np.allclose(dense("bge-large-zh-and-m3"), dense("bge-large-zh"))


@pytest.mark.parametrize(
    ("model", "numeric"),
    [
        ("bge-m3", True),
        ("bge-large-zh-and-m3", True),
        ("doubao-embedding-and-m3", False),
        ("doubao-embedding-large-and-m3", False),
    ],
)
def test_sparse_key_shapes(emulator_session: Emulator, model: str, numeric: bool) -> None:
    data = viking_ok(
        emulator_session, vbody(model, texts("Definition of BM25 BM25", "如何部署模型"))
    )
    sparse = data["sentence_sparse_embedding"]
    assert len(sparse) == 2
    for entry in sparse:
        assert entry and all(isinstance(v, float) and v > 0 for v in entry.values())
        assert all(k.isdigit() for k in entry) == numeric
    if not numeric:
        assert {"definition", "of", "bm25"} <= set(sparse[0])
        assert sparse[0]["bm25"] > sparse[0]["of"]  # repeated and longer token weighs more


def test_sparse_and_dense_switches(emulator_session: Emulator) -> None:
    only_sparse = viking_ok(emulator_session, vbody("bge-m3", texts("a b"), return_dense=False))
    assert (
        "sentence_dense_embedding" not in only_sparse
        and len(only_sparse["sentence_sparse_embedding"]) == 1
    )
    only_dense = viking_ok(emulator_session, vbody("bge-m3", texts("a b"), return_sparse=False))
    assert "sentence_sparse_embedding" not in only_dense
    viking_ok(emulator_session, vbody("bge-large-zh", texts("a"), return_sparse=False))


def test_token_usage(emulator_session: Emulator) -> None:
    data = viking_ok(
        emulator_session, vbody("bge-m3", texts("hello world", "你好"), return_token_usage=True)
    )
    assert data["token_usage"] == {"prompt_tokens": 4, "completion_tokens": 0, "total_tokens": 4}
    assert "model_token_usage" not in data


def test_image_tokens_and_modalities(emulator_session: Emulator) -> None:
    img = b64_media(solid_png(size=(56, 28)))
    data = viking_ok(
        emulator_session,
        vbody(
            "bge-visualized-m3",
            [
                {"data_type": "image", "image": img},
                {"data_type": "text-image", "text": "red", "image": img},
                *texts("red"),
            ],
            return_token_usage=True,
        ),
    )
    assert len(data["sentence_dense_embedding"]) == 3
    # 2 images of ceil(56/28)*ceil(28/28) = 2 tokens each, 2 text tokens.
    assert data["token_usage"] == {
        "prompt_tokens": 6,
        "completion_tokens": 0,
        "total_tokens": 6,
        "image_tokens": 4,
    }
    v = np.asarray(data["sentence_dense_embedding"])
    assert v[1] @ v[0] > 0.3 and v[1] @ v[2] > 0.3  # the pair is close to both parts


def test_vision_model_versions_and_http_media(emulator_session: Emulator) -> None:
    emu = emulator_session
    url = f"http://127.0.0.1:{emu.port}/samples/red-circle.png"
    for version, dim in (("241215", 3072), ("250328", 2048), ("250615", 2048)):
        data = viking_ok(
            emu,
            vbody(
                "doubao-embedding-vision",
                [{"data_type": "image", "image": url}],
                model_version=version,
            ),
        )
        assert len(data["sentence_dense_embedding"][0]) == dim
    data = viking_ok(emu, vbody("doubao-embedding-vision", [{"data_type": "image", "image": url}]))
    assert len(data["sentence_dense_embedding"][0]) == 3072  # the page's default version


def test_full_modal(emulator_session: Emulator) -> None:
    emu = emulator_session
    seq = [
        {"text": "这是文章的标题"},
        {"image": b64_media(sample_png("red-circle"))},
        {"video": b64_media(b"\x00\x00\x00\x18ftypmp42 fake video bytes"), "fps": 0.5},
    ]
    body = vbody(
        "doubao-embedding-vision",
        [{"data_type": "full_modal_seq", "full_modal_seq": seq}],
        model_version="250615",
        embedding_dimension=1024,
        return_token_usage=True,
    )
    data = viking_ok(emu, body)
    assert np.asarray(data["sentence_dense_embedding"]).shape == (1, 1024)
    usage = data["token_usage"]
    assert usage["image_tokens"] == 100 + 16 * 64
    assert usage["prompt_tokens"] == usage["total_tokens"] == 7 + usage["image_tokens"]


def full_modal(seq: list[dict[str, Any]]) -> dict[str, Any]:
    return {"data_type": "full_modal_seq", "full_modal_seq": seq}


@pytest.mark.parametrize(
    ("data", "params", "code", "words"),
    [
        ([full_modal([{"text": "x"}])], {"model_version": "250328"}, 1000025, "full_modal_seq"),
        ([full_modal([{"text": "x"}])], {}, 1000025, "full_modal_seq"),
        (
            [full_modal([{"text": "x"}]), full_modal([{"text": "y"}])],
            {"model_version": "250615"},
            1000003,
            "exactly 1",
        ),
        (
            [full_modal([{"text": "x"}]), {"data_type": "text", "text": "y"}],
            {"model_version": "250615"},
            1000003,
            "mixed",
        ),
        ([full_modal([])], {"model_version": "250615"}, 1000003, "full_modal_seq"),
        (
            [full_modal([{"text": "x", "image": "base64://AA=="}])],
            {"model_version": "250615"},
            1000003,
            "exactly one",
        ),
        ([full_modal([{"text": "x", "fps": 1}])], {"model_version": "250615"}, 1000003, "fps"),
        (
            [full_modal([{"video": "base64://AAAA", "fps": 0.1}])],
            {"model_version": "250615"},
            1000003,
            "fps",
        ),
        (
            [full_modal([{"video": "base64://AAAA", "fps": 5.5}])],
            {"model_version": "250615"},
            1000003,
            "fps",
        ),
        (
            [full_modal([{"video": "base64://AAAA", "fps": "1"}])],
            {"model_version": "250615"},
            1000003,
            "fps",
        ),
    ],
)
def test_full_modal_rules(
    emulator_session: Emulator, data: list[Any], params: dict[str, Any], code: int, words: str
) -> None:
    status = 404 if code == 1000025 else 400
    message = viking_error(
        emulator_session, vbody("doubao-embedding-vision", data, **params), code=code, status=status
    )
    assert words in message


MP4 = b64_media(b"\x00\x00\x00\x18ftypmp42 a tiny mp4 header")


def test_fps_bounds_accepted(emulator_session: Emulator) -> None:
    for fps in (0.2, 5.0, 5):
        viking_ok(
            emulator_session,
            vbody(
                "doubao-embedding-vision",
                [full_modal([{"video": MP4, "fps": fps}])],
                model_version="250615",
            ),
        )


OK_TEXT = texts("x")


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"data": OK_TEXT}, "model"),
        ({"model": "bge-m3", "data": OK_TEXT}, "model"),
        ({"model": {}, "data": OK_TEXT}, "model.model_name"),
        ({"model": {"model_name": 3}, "data": OK_TEXT}, "model.model_name"),
        ({"model": {"model_name": "bge-m3", "params": []}, "data": OK_TEXT}, "model.params"),
        (vbody("bge-m3", OK_TEXT, return_dense="yes"), "return_dense"),
        (vbody("bge-m3", OK_TEXT, return_token_usage=1), "return_token_usage"),
        (vbody("bge-m3", OK_TEXT, embedding_dimension=512), "embedding_dimension"),
        (vbody("bge-m3", OK_TEXT, embedding_dimension="1024"), "embedding_dimension"),
        (
            vbody(
                "doubao-embedding-vision", OK_TEXT, model_version="241215", embedding_dimension=1024
            ),
            "embedding_dimension",
        ),
        (vbody("doubao-embedding", OK_TEXT, model_version=240515), "model_version"),
        ({"model": {"model_name": "bge-m3"}}, "data"),
        (vbody("bge-m3", []), "data"),
        ({"model": {"model_name": "bge-m3"}, "data": {"data_type": "text"}}, "data"),
        (vbody("bge-m3", texts(*[f"t{i}" for i in range(101)])), "100"),
        (vbody("bge-m3", ["text"]), "data[0]"),
        (vbody("bge-m3", [{"text": "x"}]), "data[0].data_type"),
        (vbody("bge-m3", [{"data_type": "audio", "text": "x"}]), "data[0].data_type"),
        (vbody("bge-m3", [*OK_TEXT, {"data_type": "text"}]), "data[1].text"),
        (vbody("bge-m3", [{"data_type": "text", "text": 5}]), "data[0].text"),
        (vbody("bge-m3", [{"data_type": "text", "text": " "}]), "data[0].text"),
        (vbody("bge-visualized-m3", [{"data_type": "image"}]), "data[0].image"),
        (
            vbody("bge-visualized-m3", [{"data_type": "text-image", "image": "base64://AA=="}]),
            "data[0].text",
        ),
        (
            vbody("bge-visualized-m3", [{"data_type": "image", "image": "file:///etc/passwd"}]),
            "data[0].image",
        ),
        (vbody("bge-visualized-m3", [{"data_type": "image", "image": "base64://%%%"}]), "base64"),
        (
            vbody("bge-visualized-m3", [{"data_type": "image", "image": "base64://aGVsbG8="}]),
            "cannot decode",
        ),
        (
            vbody("bge-visualized-m3", [{"data_type": "image", "image": "http://localhost/x.png"}]),
            "doubao-embedding-vision",
        ),
        (
            vbody(
                "doubao-embedding-vision",
                [{"data_type": "image", "image": "https://example.com/x.png"}],
            ),
            "could not be downloaded",
        ),
        (
            vbody(
                "doubao-embedding-vision", [{"data_type": "image", "image": "tos://bucket/key.png"}]
            ),
            "tos object not found",
        ),
    ],
)
def test_invalid_requests(emulator_session: Emulator, body: Any, words: str) -> None:
    message = viking_error(emulator_session, body, code=1000003, status=400)
    assert message.startswith("invalid request:")
    assert words in message


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (
            vbody("bge-large-zh-v2", OK_TEXT),
            "ModelNotFoundException: Model not found: bge-large-zh-v2",
        ),
        (vbody("doubao-embedding", OK_TEXT, model_version="999999"), "Model not found"),
        (vbody("bge-large-zh", OK_TEXT, return_sparse=True), "sparse"),
        (vbody("doubao-embedding-vision", OK_TEXT, return_sparse=True), "sparse"),
        (vbody("bge-m3", [{"data_type": "image", "image": "base64://AA=="}]), "data_type image"),
        (
            vbody(
                "doubao-embedding",
                [{"data_type": "text-image", "text": "x", "image": "base64://AA=="}],
            ),
            "text-image",
        ),
    ],
)
def test_model_service_failures(emulator_session: Emulator, body: Any, words: str) -> None:
    message = viking_error(emulator_session, body, code=1000025, status=404)
    assert message.startswith("failed to calcTextEmbedding, ")
    assert words in message


def test_body_limit(emulator_session: Emulator) -> None:
    big = vbody("bge-m3", texts("a " * (2 * 1024 * 1024 + 10)))
    assert "larger than 4194304" in viking_error(emulator_session, big, code=1000003, status=400)
    viking_ok(emulator_session, vbody("bge-m3", texts("a " * (1024 * 1024))))  # 2 MB is fine


def test_not_json(emulator_session: Emulator) -> None:
    r = viking_post(emulator_session, raw=b"{oops")
    assert r.status_code == 400 and r.json()["code"] == 1000003


def test_tos_objects_from_directory(make_emulator: Any, tmp_path: Path) -> None:
    (tmp_path / "bucket" / "dir").mkdir(parents=True)
    (tmp_path / "bucket" / "dir" / "red.png").write_bytes(solid_png())
    (tmp_path / "secret.png").write_bytes(solid_png())
    emu = make_emulator(tos_dir=tmp_path)
    body = vbody("bge-visualized-m3", [{"data_type": "image", "image": "tos://bucket/dir/red.png"}])
    inline = vbody("bge-visualized-m3", [{"data_type": "image", "image": b64_media(solid_png())}])
    assert viking_ok(emu, body) == viking_ok(emu, inline)
    escape = vbody(
        "bge-visualized-m3", [{"data_type": "image", "image": "tos://bucket/../secret.png"}]
    )
    assert "not found" in viking_error(emu, escape, code=1000003, status=400)


def test_every_response_has_request_id(emulator_session: Emulator) -> None:
    ids = set()
    for r in (
        viking_post(emulator_session, vbody("bge-m3", OK_TEXT)),
        viking_post(emulator_session, vbody("nope", OK_TEXT)),
        viking_post(emulator_session, vbody("bge-m3", OK_TEXT), secret_key="bad"),
        httpx.get(emulator_session.url + "/api/viking_db/data/ping", timeout=10),
    ):
        rid = r.json()["request_id"]
        assert isinstance(rid, str) and len(rid) == 54
        ids.add(rid)
    assert len(ids) == 4


def test_ping(emulator_session: Emulator) -> None:
    r = httpx.request(
        "GET", emulator_session.url + "/api/viking_db/data/ping", content=b"{}", timeout=10
    )
    assert r.status_code == 200
    payload = r.json()
    assert payload["code"] == 0 and payload["message"] == "success"


def test_deterministic_and_text_similarity(emulator_session: Emulator) -> None:
    body = vbody(
        "bge-m3", texts("machine learning models", "deploy machine learning models", "红烧肉的做法")
    )
    first = viking_ok(emulator_session, body)
    assert first == viking_ok(emulator_session, body)
    v = np.asarray(first["sentence_dense_embedding"])
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2
