"""Viking embedding v2 wire protocol, sans-I/O: catalogue, items, bodies, replies."""

from __future__ import annotations

import base64
import dataclasses
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mm_embed import (
    APIStatusError,
    BadRequestError,
    EmbeddingResult,
    FullModalItem,
    ImageItem,
    InputError,
    InternalServerError,
    MMEmbedError,
    NotFoundError,
    RateLimitError,
    ResponseFormatError,
    TextImageItem,
    TextItem,
    VideoItem,
)
from mm_embed.inputs import prepare_image, prepare_video
from mm_embed.providers.viking import catalogue
from mm_embed.providers.viking import protocol as proto
from tests.unit._helpers import JSON_VALUES, png_bytes

#: The smallest inline video the client takes: an MP4 header (an ``ftyp`` box).
MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"

SPEC_REPLY = {
    "code": 0,
    "message": "success",
    "request_id": "02171245661168200000000000000000000ffff0a0060a37b4c01",
    "data": {
        "sentence_dense_embedding": [[0.0205, -0.0147, 0.5], [0.1, 0.2, 0.3]],
        "sentence_sparse_embedding": [{"71277": 0.2585, "6": 0.0105}, {"De": 0.05, "fin": 0.1368}],
        "token_usage": {
            "prompt_tokens": 21,
            "completion_tokens": 0,
            "total_tokens": 21,
            "image_tokens": 21,
        },
        "model_token_usage": {
            "bge-large-zh": {"prompt_tokens": 10, "total_tokens": 10},
            "bge-m3": {"prompt_tokens": 11, "total_tokens": 11},
        },
    },
}


def parse(
    payload: Any,
    *,
    status: int = 200,
    rows: int = 2,
    dense: bool = True,
    sparse: bool = True,
    **kw: Any,
) -> EmbeddingResult:
    content = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    request = proto.resolve_request(
        model=kw.pop("model", "bge-m3"), return_dense=dense, return_sparse=sparse, strict=False
    )
    # These replies carry short vectors: the width check has tests of its own.
    request = dataclasses.replace(request, expected_dimension=kw.pop("dimension", None))
    return proto.parse_response(status, content, expected_rows=rows, request=request, **kw)


# --------------------------------------------------------------------------- catalogue


@pytest.mark.parametrize(
    ("model", "version", "dims", "types", "sparse"),
    [
        ("doubao-embedding-vision", "241215", {3072}, {"text", "image", "text-image"}, False),
        ("doubao-embedding-vision", "250328", {2048, 1024}, {"text", "image", "text-image"}, False),
        (
            "doubao-embedding-vision",
            "250615",
            {2048, 1024},
            {"text", "image", "text-image", "full_modal_seq"},
            False,
        ),
        ("doubao-embedding", "240515", {2048, 1024, 512}, {"text"}, False),
        ("doubao-embedding", "240715", {2048, 1024, 512}, {"text"}, False),
        ("doubao-embedding-and-m3", None, {2048, 1024, 512}, {"text"}, True),
        ("doubao-embedding-large", None, {4096, 2048, 1024, 512}, {"text"}, False),
        ("doubao-embedding-large-and-m3", None, {4096, 2048, 1024, 512}, {"text"}, True),
        ("bge-large-zh", None, {1024}, {"text"}, False),
        ("bge-m3", None, {1024}, {"text"}, True),
        ("bge-large-zh-and-m3", None, {1024}, {"text"}, True),
        ("bge-visualized-m3", None, {1024}, {"text", "image", "text-image"}, False),
    ],
)
def test_catalogue_matches_the_spec(
    model: str, version: str | None, dims: set[int], types: set[str], sparse: bool
) -> None:
    spec = proto.get_model(model)
    entry = spec.version(version)
    assert set(entry.dimensions) == dims
    assert set(entry.data_types) == types
    assert spec.sparse is sparse
    assert spec.http_media is (model == "doubao-embedding-vision")
    assert entry.video is (model == "doubao-embedding-vision" and version == "250615")


def test_limits() -> None:
    assert catalogue.MAX_ITEMS == 100
    assert catalogue.MAX_BODY_BYTES == 4 * 1024 * 1024
    assert catalogue.FPS_RANGE == (0.2, 5.0)
    assert catalogue.PATH == "/api/data/embedding/version/2"
    assert catalogue.SERVICE == "air"


@pytest.mark.parametrize(
    ("kwargs", "params"),
    [
        ({"model": "bge-m3"}, {"return_dense": True, "return_sparse": True}),
        ({"model": "bge-large-zh"}, {"return_dense": True, "return_sparse": False}),
        (
            {"model": "bge-m3", "return_dense": False},
            {"return_dense": False, "return_sparse": True},
        ),
        (
            {
                "model": "doubao-embedding-vision",
                "model_version": "250615",
                "dimension": 1024,
                "return_token_usage": True,
            },
            {
                "return_dense": True,
                "return_sparse": False,
                "return_token_usage": True,
                "embedding_dimension": 1024,
                "model_version": "250615",
            },
        ),
        ({"model": "doubao-embedding-vision"}, {"return_dense": True, "return_sparse": False}),
        (
            {"model": "doubao-embedding-large", "dimension": 512},
            {"return_dense": True, "return_sparse": False, "embedding_dimension": 512},
        ),
    ],
)
def test_resolve_request_params(kwargs: dict[str, Any], params: dict[str, Any]) -> None:
    assert proto.resolve_request(**kwargs).params == params


# --------------------------------------------------------------------------- items and bodies


def _req(model: str = "bge-visualized-m3", version: str | None = None) -> proto.ResolvedRequest:
    return proto.resolve_request(model=model, model_version=version)


def test_text_items() -> None:
    for item in ("hello", TextItem("hello")):
        wire = proto.build_item(item, 0, _req("bge-m3"))
        assert wire.body == {"data_type": "text", "text": "hello"}
        assert wire.images == 0 and wire.est_tokens == proto.estimate_tokens("hello")
        assert wire.encoded_size == len(orjson.dumps(wire.body))


def test_image_and_pair_items() -> None:
    image = png_bytes(5, 4)
    encoded = "base64://" + base64.b64encode(image).decode()
    wire = proto.build_item(ImageItem(prepare_image(image)), 0, _req())
    assert wire.body == {"data_type": "image", "image": encoded}
    assert wire.images == 1 and wire.encoded_size == len(orjson.dumps(wire.body))
    pair = proto.build_item(TextImageItem("cap", prepare_image(image)), 0, _req())
    assert pair.body == {"data_type": "text-image", "text": "cap", "image": encoded}
    tos = proto.build_item(ImageItem(prepare_image("tos://bucket/key.png")), 0, _req())
    assert tos.body["image"] == "tos://bucket/key.png"
    url = proto.build_item(
        ImageItem(prepare_image("https://example.com/x.png")), 0, _req("doubao-embedding-vision")
    )
    assert url.body["image"] == "https://example.com/x.png"


def test_full_modal_item() -> None:
    image = png_bytes(3, 3)
    item = FullModalItem(
        [
            "intro",
            ImageItem(prepare_image(image)),
            VideoItem(prepare_video("https://example.com/v.mp4", field="v", index=0), fps=2),
            VideoItem(prepare_video(MP4, field="v", index=1), fps=None),
        ]
    )
    wire = proto.build_item(item, 0, _req("doubao-embedding-vision", "250615"))
    assert wire.data_type == "full_modal_seq"
    assert wire.body["full_modal_seq"] == [
        {"text": "intro"},
        {"image": "base64://" + base64.b64encode(image).decode()},
        {"video": "https://example.com/v.mp4", "fps": 2.0},
        {"video": "base64://" + base64.b64encode(MP4).decode()},
    ]
    assert wire.images == 1
    assert wire.encoded_size == len(orjson.dumps(wire.body))


def test_body() -> None:
    request = _req("bge-m3")
    items = [proto.build_item(t, i, request) for i, t in enumerate(["a", "b"])]
    assert proto.build_body(request, items) == {
        "model": {"model_name": "bge-m3", "params": {"return_dense": True, "return_sparse": True}},
        "data": [{"data_type": "text", "text": "a"}, {"data_type": "text", "text": "b"}],
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", 1), ("abc", 2), ("abcd", 3), ("中文", 3), ("中文abc", 4), ("x" * 300, 101)],
)
def test_estimate_tokens(text: str, expected: int) -> None:
    assert proto.estimate_tokens(text) == expected


def test_build_item_refuses_with_index() -> None:
    with pytest.raises(InputError, match=r"^inputs\[7\]"):
        proto.build_item(ImageItem(prepare_image(png_bytes(2, 2))), 7, _req("bge-m3"))


# --------------------------------------------------------------------------- replies


def test_parse_spec_reply() -> None:
    result = parse(SPEC_REPLY, model="bge-large-zh-and-m3")
    np.testing.assert_allclose(
        result.embeddings, [[0.0205, -0.0147, 0.5], [0.1, 0.2, 0.3]], rtol=1e-6
    )
    assert result.embeddings.dtype == np.float32
    assert result.sparse is not None
    assert dict(result.sparse[0].weights) == {"71277": 0.2585, "6": 0.0105}
    assert result.sparse[0].to_dict() == {6: 0.0105, 71277: 0.2585}
    assert all(i >= 2**30 for i in result.sparse[1].indices)
    usage = result.usage
    assert (usage.prompt_tokens, usage.total_tokens, usage.image_tokens) == (21, 21, 21)
    assert (
        usage.by_model["bge-m3"].total_tokens == 11
        and usage.by_model["bge-large-zh"].prompt_tokens == 10
    )
    assert result.request_ids == [SPEC_REPLY["request_id"]]
    assert result.model == "bge-large-zh-and-m3"


def test_parse_ignores_unrequested_parts() -> None:
    result = parse(SPEC_REPLY, sparse=False)
    assert result.sparse is None
    result = parse(SPEC_REPLY, dense=False)
    assert result.dense == {} and result.sparse is not None


@pytest.mark.parametrize(
    ("status", "payload", "cls"),
    [
        (
            400,
            {"code": 1000003, "message": "invalid request:x", "request_id": "r"},
            BadRequestError,
        ),
        (
            404,
            {
                "message": "failed to calcTextEmbedding, ModelNotFoundException: Model not found: bge-large-zh",
                "code": 1000025,
            },
            NotFoundError,
        ),
        (200, {"code": 1000029, "message": "quota"}, RateLimitError),
        (500, {"code": 1000028, "message": "internal"}, InternalServerError),
        (502, b"Bad Gateway", InternalServerError),
        (200, {"code": 1000024, "message": "not implemented"}, APIStatusError),
    ],
)
def test_parse_errors(status: int, payload: Any, cls: type[Exception]) -> None:
    with pytest.raises(cls) as info:
        parse(payload, status=status, retry_after=2.0)
    assert isinstance(info.value, APIStatusError)
    assert info.value.retry_after == 2.0 and info.value.status_code == status
    if isinstance(payload, dict):
        assert info.value.code == payload["code"]
        assert info.value.message == payload["message"]


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        {},
        {"sentence_dense_embedding": [[0.1, 0.2]], "sentence_sparse_embedding": [{}, {}]},
        {"sentence_dense_embedding": [[0.1], [0.2]], "sentence_sparse_embedding": [{}]},
        {"sentence_dense_embedding": [[0.1], [0.2]], "sentence_sparse_embedding": [{"a": "x"}, {}]},
        {
            "sentence_dense_embedding": [[0.1], [0.2]],
            "sentence_sparse_embedding": [{"a": True}, {}],
        },
        {"sentence_dense_embedding": [[0.1], [0.2]], "sentence_sparse_embedding": [[1, 2], {}]},
        {
            "sentence_dense_embedding": [[0.1, None], [0.2, 0.3]],
            "sentence_sparse_embedding": [{}, {}],
        },
        {"sentence_dense_embedding": [[0.1, 0.1], [0.2]], "sentence_sparse_embedding": [{}, {}]},
    ],
)
def test_parse_wrong_shapes(data: Any) -> None:
    with pytest.raises(ResponseFormatError):
        parse({"code": 0, "message": "success", "request_id": "r", "data": data})


@pytest.mark.parametrize("content", [b"", b"nope", b"[1]", b'{"code": 0', b"null"])
def test_parse_unreadable_200(content: bytes) -> None:
    with pytest.raises(ResponseFormatError):
        parse(content)


# --------------------------------------------------------------------------- fuzz


@settings(max_examples=300, deadline=None)
@given(content=st.binary(max_size=200), status=st.sampled_from([200, 400, 404, 429, 500]))
def test_fuzz_bytes(content: bytes, status: int) -> None:
    try:
        result = parse(content, status=status, rows=1)
    except MMEmbedError:
        return
    assert status == 200 and len(result) == 1


@settings(max_examples=300, deadline=None)
@given(
    code=st.sampled_from([0, None, 1000029, "0", True]) | JSON_VALUES,
    dense=JSON_VALUES,
    sparse_maps=JSON_VALUES,
    usage=JSON_VALUES,
    flags=st.sampled_from([(True, True), (True, False), (False, True)]),
)
def test_fuzz_structures(
    code: Any, dense: Any, sparse_maps: Any, usage: Any, flags: tuple[bool, bool]
) -> None:
    payload = {
        "code": code,
        "data": {
            "sentence_dense_embedding": dense,
            "sentence_sparse_embedding": sparse_maps,
            "token_usage": usage,
            "model_token_usage": usage,
        },
    }
    try:
        result = parse(payload, rows=2, dense=flags[0], sparse=flags[1])
    except MMEmbedError:
        return
    if flags[0]:
        assert result.embeddings.shape[0] == 2 and np.isfinite(result.embeddings).all()
    if flags[1]:
        assert result.sparse is not None and len(result.sparse) == 2
