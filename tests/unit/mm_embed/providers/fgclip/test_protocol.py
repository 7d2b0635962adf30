"""FG-CLIP wire protocol, sans-I/O: bodies built and replies parsed from bytes, no socket."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mm_embed import (
    APIStatusError,
    BadRequestError,
    EmbeddingResult,
    ImageInfo,
    InputError,
    MMEmbedError,
    RateLimitError,
    ResponseFormatError,
)
from mm_embed.providers.fgclip import protocol as proto
from tests.unit._helpers import JSON_VALUES

SPEC_REPLY = {
    "context": {"code": 0, "message": "OK", "timestamp": 1769589915},
    "data": {
        "id": "a3121db1-aec5-4d16-993e-772e4be09c68",
        "embeddings": {
            "float": [[0.039, -0.012, 0.5], [0.1, 0.2, 0.3]],
            "int8": None,
            "uint8": None,
        },
        "texts": ["8", "10"],
        "images": [{"width": 1024, "height": 1024, "format": "PNG", "bit_depth": 24}],
        "meta": {
            "api_version": {"version": "2.1.0"},
            "billed_units": {"images": 0, "input_tokens": 6, "output_tokens": 0},
            "latencys": None,
        },
        "created": "2025-12-31 09:18:25.901",
    },
}


def parse(
    payload: Any,
    *,
    status: int = 200,
    rows: int = 2,
    types: tuple[str, ...] = ("float",),
    **kw: Any,
) -> EmbeddingResult:
    content = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return proto.parse_response(status, content, expected_rows=rows, embedding_types=types, **kw)


# --------------------------------------------------------------------------- bodies


def test_text_body() -> None:
    body = proto.build_text_body(
        ["a", "b"], embedding_types=["float", "int8"], truncate="start", text_box_flag=False
    )
    assert body == {
        "model": "fg-clip",
        "input_type": "text",
        "embedding_types": ["float", "int8"],
        "texts": ["a", "b"],
        "truncate": "start",
    }
    flagged = proto.build_text_body(
        ["a"], embedding_types=["float"], truncate="none", text_box_flag=True
    )
    assert flagged["text_box_flag"] is True


def test_image_body_boxes_are_3d() -> None:
    plain = proto.build_image_body(["data:image/png;base64,AA=="], embedding_types=["uint8"])
    assert plain == {
        "model": "fg-clip",
        "input_type": "image",
        "embedding_types": ["uint8"],
        "images": ["data:image/png;base64,AA=="],
    }
    boxed = proto.build_image_body(
        ["u1", "u2"],
        embedding_types=["float"],
        boxes=[[(1, 2, 3, 4)], [[5, 6, 7, 8], [0, 0, 1, 1]]],
    )
    assert boxed["image_boxes"] == [[[1, 2, 3, 4]], [[5, 6, 7, 8], [0, 0, 1, 1]]]
    with pytest.raises(ValueError, match="one entry per image"):
        proto.build_image_body(["u1", "u2"], embedding_types=["float"], boxes=[[[1, 2, 3, 4]]])


@pytest.mark.parametrize(
    ("given_types", "expected"),
    [("float", ["float"]), (["int8", "float", "int8"], ["int8", "float"]), (("uint8",), ["uint8"])],
)
def test_validate_embedding_types(given_types: Any, expected: list[str]) -> None:
    assert proto.validate_embedding_types(given_types) == expected


@pytest.mark.parametrize("bad", [[], None, 3, ["FLOAT"], ["float", None]])
def test_validate_embedding_types_refuses(bad: Any) -> None:
    with pytest.raises(InputError, match="embedding_types"):
        proto.validate_embedding_types(bad)


def test_probability_uses_published_scale_and_bias() -> None:
    threshold = 16.75 / 115.5843
    assert float(proto.probability(threshold)) == pytest.approx(0.5)
    assert float(proto.probability(0.3)) == pytest.approx(
        1 / (1 + math.exp(-(115.5843 * 0.3 - 16.75)))
    )
    values = np.asarray(proto.probability(np.array([-1.0, 0.0, 1.0])))
    assert values.shape == (3,) and values[0] < 1e-6 and values[2] > 1 - 1e-6


# --------------------------------------------------------------------------- replies


def test_parse_spec_reply() -> None:
    result = parse(SPEC_REPLY)
    assert result.dense["float"].dtype == np.float32
    np.testing.assert_allclose(
        result.embeddings, [[0.039, -0.012, 0.5], [0.1, 0.2, 0.3]], rtol=1e-6
    )
    assert result.request_ids == ["a3121db1-aec5-4d16-993e-772e4be09c68"]
    assert result.text_lengths == [8, 10]
    assert result.images == [ImageInfo(1024, 1024, "PNG", 24)]
    assert (result.usage.prompt_tokens, result.usage.total_tokens, result.usage.images) == (6, 6, 0)
    assert result.model == "fg-clip" and result.dimension == 3
    np.testing.assert_array_equal(result.input_indices, [0, 1])


def _with_embeddings(embeddings: dict[str, Any]) -> dict[str, Any]:
    payload: dict[str, Any] = orjson.loads(orjson.dumps(SPEC_REPLY))
    payload["data"]["embeddings"] = embeddings
    return payload


@pytest.mark.parametrize(
    ("name", "rows", "dtype"),
    [
        ("int8", [[-128, 0, 127], [1, 2, 3]], np.int8),
        ("uint8", [[0, 128, 255], [1, 2, 3]], np.uint8),
    ],
)
def test_parse_integer_types(name: str, rows: list[list[int]], dtype: Any) -> None:
    result = parse(_with_embeddings({"float": None, name: rows}), types=(name,))
    assert result.dense[name].dtype == dtype
    np.testing.assert_array_equal(result.dense[name], rows)


@pytest.mark.parametrize(
    ("name", "rows"),
    [
        ("int8", [[-129, 0, 0], [0, 0, 0]]),
        ("int8", [[128, 0, 0], [0, 0, 0]]),
        ("uint8", [[-1, 0, 0], [0, 0, 0]]),
        ("uint8", [[256, 0, 0], [0, 0, 0]]),
    ],
)
def test_parse_integer_out_of_range(name: str, rows: list[list[int]]) -> None:
    with pytest.raises(ResponseFormatError, match="out of range"):
        parse(_with_embeddings({name: rows}), types=(name,))


@pytest.mark.parametrize(
    "embeddings",
    [
        {"float": [[0.1, 0.2]]},  # one row, two expected
        {"float": [[0.1, 0.2], [0.3]]},  # ragged
        {"float": [0.1, 0.2]},  # 1-D
        {"float": None},
        {"int8": [[1, 2], [3, 4]]},  # the asked type is missing
        {"float": [[0.1, None], [0.3, 0.4]]},  # a null inside a vector
        {"float": [["a", "b"], ["c", "d"]]},
    ],
)
def test_parse_wrong_shapes(embeddings: dict[str, Any]) -> None:
    with pytest.raises(ResponseFormatError):
        parse(_with_embeddings(embeddings))


@pytest.mark.parametrize(
    ("status", "payload", "cls", "code"),
    [
        (200, {"context": {"code": 400, "message": "bad"}, "data": None}, BadRequestError, 400),
        (200, {"context": {"code": 429, "message": "slow"}}, RateLimitError, 429),
        (200, {"context": {"code": 1234, "message": "odd"}}, APIStatusError, 1234),
        (400, {"context": {"code": 400, "message": "bad"}}, BadRequestError, 400),
        (400, {"error": "no context"}, BadRequestError, None),
        (429, b"<html>slow down</html>", RateLimitError, None),
        (503, b"", APIStatusError, None),
    ],
)
def test_parse_errors(status: int, payload: Any, cls: type[Exception], code: int | None) -> None:
    with pytest.raises(cls) as info:
        parse(payload, status=status, retry_after=1.5)
    error = info.value
    assert isinstance(error, APIStatusError)
    assert error.status_code == status and error.code == code and error.retry_after == 1.5


def test_parse_error_keeps_request_id() -> None:
    with pytest.raises(BadRequestError) as info:
        parse({"context": {"code": 400, "message": "bad"}, "data": {"id": "rid-1"}})
    assert info.value.request_id == "rid-1"


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"null",
        b"[]",
        b"{",
        b'"OK"',
        {"data": {"embeddings": {}}},
        {"context": {"code": 0}},
        {"context": {"code": 0}, "data": []},
    ],
)
def test_parse_unreadable_200(payload: Any) -> None:
    with pytest.raises(ResponseFormatError):
        parse(payload)


def test_parse_tolerates_odd_metadata() -> None:
    payload = orjson.loads(orjson.dumps(SPEC_REPLY))
    payload["data"]["texts"] = ["x", "y"]
    payload["data"]["images"] = [{"width": "wide"}, None]
    payload["data"]["meta"] = {"billed_units": {"input_tokens": True, "images": "3"}}
    result = parse(payload)
    assert result.text_lengths is None
    assert result.images == [None, None]
    assert result.usage.prompt_tokens == 0 and result.usage.images == 0


# --------------------------------------------------------------------------- fuzz


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=st.binary(max_size=200), status=st.sampled_from([200, 400, 401, 429, 500, 503]))
def test_fuzz_bytes(content: bytes, status: int) -> None:
    try:
        result = proto.parse_response(status, content, expected_rows=1, embedding_types=["float"])
    except MMEmbedError:
        return
    assert status == 200 and len(result) == 1


@settings(max_examples=300, deadline=None)
@given(
    context=JSON_VALUES,
    data=JSON_VALUES,
    embeddings=JSON_VALUES,
    status=st.sampled_from([200, 400, 500]),
    types=st.sampled_from([("float",), ("int8",), ("uint8", "float")]),
)
def test_fuzz_structures(
    context: Any, data: Any, embeddings: Any, status: int, types: tuple[str, ...]
) -> None:
    payload: dict[str, Any] = {"context": context, "data": data}
    if isinstance(data, dict):
        data["embeddings"] = embeddings
    try:
        result = parse(payload, status=status, rows=2, types=types)
    except MMEmbedError:
        return
    assert status == 200
    assert list(result.dense) == list(types)
    for matrix in result.dense.values():
        assert matrix.ndim == 2 and matrix.shape[0] == 2
