"""Acceptance 6: errors carry what a user needs to act, map to the right class, pickle."""

from __future__ import annotations

import pickle
from typing import Any

import httpx
import numpy as np
import pytest

from mm_embed import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    InputError,
    InternalServerError,
    MMEmbedError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseFormatError,
)
from mm_embed.errors import status_error_class
from mm_embed.providers.fgclip import protocol as fg_proto
from mm_embed.providers.viking import protocol as vk_proto
from tests.unit._helpers import (
    FakeFGClip,
    FakeViking,
    build_fgclip,
    build_viking,
    fp,
    json_response,
    png_bytes,
)

TEXTS = [f"text {i}" for i in range(250)]  # Viking: calls of 100, 100, 50


def viking_refuses(first_text: str, status: int = 400, code: int = 1000003) -> Any:
    def fault(n: int, body: dict[str, Any], request: httpx.Request) -> httpx.Response | None:
        if body["data"][0].get("text") == first_text:
            return json_response(
                status,
                {
                    "code": code,
                    "message": "invalid request: data[3].text too long",
                    "request_id": "rid-42",
                },
            )
        return None

    return fault


# --------------------------------------------------------------------------- attributes


async def test_status_error_carries_everything(kind: str) -> None:
    twin = build_viking(kind, FakeViking(fault=viking_refuses("text 100")), max_concurrency=1)
    with pytest.raises(BadRequestError) as info:
        await twin.embed(TEXTS, model="bge-m3")
    error = info.value
    assert error.status_code == 400
    assert error.code == 1000003
    assert error.message == "invalid request: data[3].text too long"
    assert error.request_id == "rid-42"
    assert error.input_indices == tuple(range(100, 200))
    text = str(error)
    for piece in (
        "invalid request",
        "HTTP 400",
        "code 1000003",
        "request id rid-42",
        "inputs 100, 101",
    ):
        assert piece in text
    assert "(100 in all)" in text


async def test_fgclip_error_carries_request_id_and_code(kind: str) -> None:
    def fault(n: int, body: dict[str, Any], request: httpx.Request) -> httpx.Response:
        return json_response(
            200,
            {
                "context": {"code": 400, "message": "texts[1] over 196 tokens"},
                "data": {"id": "fg-rid"},
            },
        )

    twin = build_fgclip(kind, FakeFGClip(fault=fault))
    with pytest.raises(BadRequestError) as info:
        await twin.embed_texts(["a", "b"])
    error = info.value
    assert (error.status_code, error.code, error.request_id) == (200, 400, "fg-rid")
    assert error.input_indices == (0, 1)
    assert "texts[1] over 196 tokens" in str(error)


@pytest.mark.parametrize(
    ("header", "data", "expected"),
    [
        ("x-request-id", None, "hdr-rid"),  # error body without data: the header's id
        ("x-tt-logid", None, "hdr-rid"),
        ("x-request-id", {"id": "body-rid"}, "body-rid"),  # the body's id wins
        (None, None, None),
    ],
)
async def test_fgclip_error_without_body_id_takes_the_header_id(
    kind: str, header: str | None, data: dict[str, str] | None, expected: str | None
) -> None:
    def fault(n: int, body: dict[str, Any], request: httpx.Request) -> httpx.Response:
        response = json_response(
            401, {"context": {"code": 401, "message": "bad key"}, "data": data}
        )
        if header is not None:
            response.headers[header] = "hdr-rid"
        return response

    twin = build_fgclip(kind, FakeFGClip(fault=fault))
    with pytest.raises(AuthenticationError) as info:
        await twin.embed_texts(["a"])
    assert info.value.request_id == expected


# --------------------------------------------------------------------------- class mapping

StatusRow = tuple[int, int | None, type[APIStatusError]]

#: An HTTP status, the Viking code that says the same, and the class both map to.
SAME_MEANING: list[StatusRow] = [
    (400, 1000003, BadRequestError),
    (401, 1000001, AuthenticationError),
    (404, 1000025, NotFoundError),
    (429, 1000029, RateLimitError),
]


def named_three_ways(status: int, code: int | None, cls: type[APIStatusError]) -> list[StatusRow]:
    """The status alone, the status with the code, and the code on HTTP 200 (where the
    body decides) all name ``cls``."""
    return [(status, None, cls), (status, code, cls), (200, code, cls)]


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        *[row for meaning in SAME_MEANING for row in named_three_ways(*meaning)],
        (403, 1000002, PermissionDeniedError),
        (500, None, InternalServerError),
        (502, None, InternalServerError),
        (503, 1000028, InternalServerError),
        (599, None, InternalServerError),
        (200, 400, BadRequestError),  # FG-CLIP: an HTTP-like code on HTTP 200
        (200, 401, AuthenticationError),
        (200, 429, RateLimitError),
        (200, 500, InternalServerError),
        (418, None, APIStatusError),
        (200, 1000028, APIStatusError),
    ],
)
def test_status_error_class(status: int, code: int | None, cls: type[APIStatusError]) -> None:
    assert status_error_class(status, code) is cls


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        *SAME_MEANING,
        (500, 1000028, InternalServerError),
        (503, 1000028, InternalServerError),
    ],
)
async def test_viking_replies_map_to_classes(
    kind: str, status: int, code: int, cls: type[Exception]
) -> None:
    twin = build_viking(kind, FakeViking(fault=viking_refuses("only", status, code)), max_retries=0)
    with pytest.raises(cls) as info:
        await twin.embed(["only"], model="bge-m3")
    error = info.value
    assert type(error) is cls and isinstance(error, APIStatusError)
    assert error.code == code and error.status_code == status


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (404, NotFoundError),
        (429, RateLimitError),
        (500, InternalServerError),
    ],
)
async def test_fgclip_replies_map_to_classes(kind: str, status: int, cls: type[Exception]) -> None:
    def fault(n: int, body: dict[str, Any], request: httpx.Request) -> httpx.Response:
        return json_response(status, {"context": {"code": status, "message": "no"}, "data": None})

    twin = build_fgclip(kind, FakeFGClip(fault=fault), max_retries=0)
    with pytest.raises(cls):
        await twin.embed_texts(["only"])


def test_hierarchy() -> None:
    assert issubclass(InputError, ValueError) and issubclass(InputError, MMEmbedError)
    assert issubclass(ConfigurationError, ValueError) and issubclass(
        ConfigurationError, MMEmbedError
    )
    assert issubclass(APITimeoutError, APIConnectionError)
    for cls in (
        BadRequestError,
        AuthenticationError,
        PermissionDeniedError,
        NotFoundError,
        RateLimitError,
        InternalServerError,
    ):
        assert issubclass(cls, APIStatusError) and issubclass(cls, MMEmbedError)
    assert issubclass(ResponseFormatError, MMEmbedError)


# --------------------------------------------------------------------------- partial failure


async def test_partial_failure_sequential(kind: str) -> None:
    twin = build_viking(kind, FakeViking(fault=viking_refuses("text 100")), max_concurrency=1)
    with pytest.raises(BadRequestError) as info:
        await twin.embed(TEXTS, model="bge-m3")
    error = info.value
    # The third call is never started once the second failed for good.
    assert twin.provider.count == 2
    assert error.input_indices == tuple(range(100, 200))
    assert error.failed_indices == tuple(range(100, 250))
    partial = error.partial_result
    assert partial is not None
    np.testing.assert_array_equal(partial.input_indices, np.arange(100))
    np.testing.assert_array_equal(partial.embeddings[:, 0], [fp(t) for t in TEXTS[:100]])
    assert partial.sparse is not None and len(partial.sparse) == 100
    assert partial.request_ids == ["vk-0"]


async def test_partial_failure_concurrent(kind: str) -> None:
    # All three calls start together; the middle one fails, the others finish.
    provider = FakeViking(fault=viking_refuses("text 100"), delay=lambda n, body: 0.02)
    twin = build_viking(kind, provider, max_concurrency=3)
    with pytest.raises(BadRequestError) as info:
        await twin.embed(TEXTS, model="bge-m3")
    error = info.value
    assert provider.count == 3
    assert error.input_indices == tuple(range(100, 200))
    assert error.failed_indices == tuple(range(100, 200))
    partial = error.partial_result
    assert partial is not None
    expected = [*range(100), *range(200, 250)]
    np.testing.assert_array_equal(partial.input_indices, expected)
    np.testing.assert_array_equal(partial.embeddings[:, 0], [fp(TEXTS[i]) for i in expected])
    # Resending failed_indices finishes the job.
    fixed = build_viking(kind)
    rest = await fixed.embed([TEXTS[i] for i in error.failed_indices], model="bge-m3")
    assert len(rest) == 100


async def test_partial_failure_after_retries_exhausted(kind: str) -> None:
    def fault(n: int, body: dict[str, Any], request: httpx.Request) -> httpx.Response | None:
        if body["texts"][0] == "t32":
            return json_response(503, {"context": {"code": 503, "message": "busy"}, "data": None})
        return None

    twin = build_fgclip(kind, FakeFGClip(fault=fault), max_concurrency=1, max_retries=2)
    texts = [f"t{i}" for i in range(70)]  # calls of 32, 32, 6
    with pytest.raises(InternalServerError) as info:
        await twin.embed_texts(texts)
    error = info.value
    assert twin.provider.count == 1 + 3
    assert error.input_indices == tuple(range(32, 64))
    assert error.failed_indices == tuple(range(32, 70))
    assert error.partial_result is not None
    np.testing.assert_array_equal(error.partial_result.input_indices, np.arange(32))


async def test_partial_failure_with_boxes(kind: str) -> None:
    def fault(n: int, body: dict[str, Any], request: httpx.Request) -> httpx.Response | None:
        if body.get("image_boxes"):
            return json_response(
                200, {"context": {"code": 400, "message": "bad box"}, "data": None}
            )
        return None

    twin = build_fgclip(kind, FakeFGClip(fault=fault), max_concurrency=1)
    images = [png_bytes(10 + i, 10) for i in range(4)]
    boxes = [None, [[0, 0, 2, 2], [1, 1, 2, 2]], None, [[0, 0, 3, 3]]]
    with pytest.raises(BadRequestError) as info:
        await twin.embed_images(images, boxes=boxes)
    error = info.value
    assert error.input_indices == (1, 3)
    assert error.failed_indices == (1, 3)
    partial = error.partial_result
    assert partial is not None
    np.testing.assert_array_equal(partial.input_indices, [0, 2])
    np.testing.assert_array_equal(partial.embeddings[:, 0], [fp("10x10"), fp("12x10")])


# --------------------------------------------------------------------------- pickling


async def _real_partial_error(kind: str) -> APIStatusError:
    twin = build_viking(kind, FakeViking(fault=viking_refuses("text 100")), max_concurrency=1)
    try:
        await twin.embed(TEXTS, model="bge-m3", return_token_usage=True)
    except APIStatusError as exc:
        return exc
    raise AssertionError("expected an error")


async def test_status_error_with_partial_result_pickles(kind: str) -> None:
    error = await _real_partial_error(kind)
    clone = pickle.loads(pickle.dumps(error))
    assert type(clone) is BadRequestError
    assert str(clone) == str(error)
    for name in (
        "status_code",
        "code",
        "message",
        "request_id",
        "retry_after",
        "input_indices",
        "failed_indices",
    ):
        assert getattr(clone, name) == getattr(error, name), name
    assert clone.partial_result is not None and error.partial_result is not None
    np.testing.assert_array_equal(clone.partial_result.embeddings, error.partial_result.embeddings)
    assert clone.partial_result.sparse == error.partial_result.sparse
    assert clone.partial_result.usage == error.partial_result.usage


@pytest.mark.parametrize(
    "error",
    [
        InputError("text is empty", field="texts", index=4, limit="1..32"),
        ConfigurationError("FGCLIP_API_KEY missing"),
        ResponseFormatError("not JSON", status_code=200, request_id="r", input_indices=[1, 2]),
        APIConnectionError("refused", input_indices=[0]),
        APITimeoutError("slow"),
        RateLimitError("slow down", status_code=429, code=1000029, request_id="q", retry_after=1.5),
        APIStatusError("teapot", status_code=418),
    ],
    ids=lambda e: type(e).__name__,
)
def test_errors_pickle(error: MMEmbedError) -> None:
    clone = pickle.loads(pickle.dumps(error))
    assert type(clone) is type(error)
    assert str(clone) == str(error)
    assert clone.args == error.args
    assert vars(clone) == vars(error)
    assert isinstance(clone, MMEmbedError)


def test_protocol_parsers_raise_status_errors_directly() -> None:
    with pytest.raises(NotFoundError) as info:
        vk_proto.parse_response(
            404,
            b'{"code": 1000025, "message": "failed to calcTextEmbedding", "request_id": "r9"}',
            expected_rows=1,
            request=vk_proto.resolve_request(model="bge-large-zh"),
        )
    assert info.value.request_id == "r9" and info.value.code == 1000025
    with pytest.raises(AuthenticationError):
        fg_proto.parse_response(
            401,
            b'{"context": {"code": 401, "message": "bad key"}}',
            expected_rows=1,
            embedding_types=["float"],
            model="fg-clip",
        )
