"""Acceptance 4: what is retried, how long the client waits, and what is never retried."""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from mm_embed import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseFormatError,
    RetryPolicy,
)
from mm_embed import transport as transport_module
from mm_embed.retry import parse_retry_after
from tests.unit._helpers import (
    FakeFGClip,
    FakeViking,
    build_fgclip,
    build_viking,
    fp,
    json_response,
)

# --------------------------------------------------------------------------- helpers


def fg_error(status: int, code: int | None = None, message: str = "refused") -> httpx.Response:
    return json_response(
        status,
        {
            "context": {"code": code if code is not None else status, "message": message},
            "data": None,
        },
    )


def vk_error(status: int, code: int, message: str = "refused") -> httpx.Response:
    return json_response(status, {"code": code, "message": message, "request_id": "rid-err"})


def failing(first: int, response: Callable[[], httpx.Response]) -> Any:
    """A fault hook: the first ``first`` requests get ``response()`` (or raise it)."""

    def fault(n: int, body: dict[str, Any], request: httpx.Request) -> httpx.Response | None:
        if n >= first:
            return None
        return response()

    return fault


def raising(exc: type[httpx.HTTPError]) -> Callable[[], httpx.Response]:
    def boom() -> httpx.Response:
        raise exc("simulated")

    return boom


async def call(api: str, kind: str, fault: Any, **kwargs: Any) -> tuple[Any, Any]:
    """Run one small call through a fake with ``fault``; returns (result or error, provider)."""
    if api == "fgclip":
        fg = build_fgclip(kind, FakeFGClip(fault=fault), **kwargs)
        try:
            return await fg.embed_texts(["alpha", "beta"]), fg.provider
        except Exception as exc:
            return exc, fg.provider
    vk = build_viking(kind, FakeViking(fault=fault), **kwargs)
    try:
        return await vk.embed(["alpha", "beta"], model="bge-large-zh"), vk.provider
    except Exception as exc:
        return exc, vk.provider


def assert_ok(result: Any) -> None:
    assert not isinstance(result, Exception), result
    assert list(result.embeddings[:, 0]) == [fp("alpha"), fp("beta")]


APIS = ["fgclip", "viking"]


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the transport's sleeps instead of sleeping (sync and async)."""
    recorded: list[float] = []

    def sleep(seconds: float) -> None:
        recorded.append(seconds)

    async def asleep(seconds: float) -> None:
        recorded.append(seconds)

    monkeypatch.setattr(transport_module, "_sleep", sleep)
    monkeypatch.setattr(transport_module, "_asleep", asleep)
    return recorded


# --------------------------------------------------------------------------- retried


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504])
async def test_retryable_status_then_success(kind: str, api: str, status: int) -> None:
    def make() -> httpx.Response:
        return fg_error(status) if api == "fgclip" else vk_error(status, 1000028)

    result, provider = await call(api, kind, failing(2, make))
    assert_ok(result)
    assert provider.count == 3


@pytest.mark.parametrize("status", [200, 429, 500])
async def test_viking_quota_code_is_retried(kind: str, status: int) -> None:
    result, provider = await call("viking", kind, failing(3, lambda: vk_error(status, 1000029)))
    assert_ok(result)
    assert provider.count == 4


@pytest.mark.parametrize("code", [429, 500, 503])
async def test_fgclip_retryable_code_on_http_200_is_retried(kind: str, code: int) -> None:
    result, provider = await call("fgclip", kind, failing(1, lambda: fg_error(200, code)))
    assert_ok(result)
    assert provider.count == 2


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (httpx.ReadTimeout, APITimeoutError),
        (httpx.ConnectTimeout, APITimeoutError),
        (httpx.PoolTimeout, APITimeoutError),
        (httpx.ConnectError, APIConnectionError),
        (httpx.ReadError, APIConnectionError),
        (httpx.RemoteProtocolError, APIConnectionError),
    ],
)
async def test_transport_errors_are_retried_then_raised(
    kind: str, api: str, exc: type[httpx.HTTPError], expected: type[Exception]
) -> None:
    result, provider = await call(api, kind, failing(2, raising(exc)))
    assert_ok(result)
    assert provider.count == 3
    error, provider = await call(api, kind, failing(99, raising(exc)))
    assert type(error) is expected and isinstance(error, APIConnectionError)
    assert provider.count == 4  # 1 + max_retries
    assert error.input_indices == (0, 1)


BAD_BODIES = [
    b"",
    b"not json",
    b'{"context": {"code": 0',
    b"[1, 2, 3]",
    b"<html>gateway</html>",
]


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("body", BAD_BODIES)
async def test_malformed_bodies_are_retried_then_raised(kind: str, api: str, body: bytes) -> None:
    def bad() -> httpx.Response:
        return httpx.Response(200, content=body)

    result, provider = await call(api, kind, failing(1, bad))
    assert_ok(result)
    error, provider = await call(api, kind, failing(99, bad))
    assert isinstance(error, ResponseFormatError)
    assert provider.count == 4


WRONG_SHAPES: dict[str, list[Any]] = {
    "fgclip": [
        {"context": {"code": 0, "message": "OK"}},
        {
            "context": {"code": 0, "message": "OK"},
            "data": {"id": "x", "embeddings": {"float": [[1.0]]}},
        },
        {
            "context": {"code": 0},
            "data": {"id": "x", "embeddings": {"float": [["a", "b"], [1, 2]]}},
        },
        {"context": {"code": 0}, "data": {"id": "x", "embeddings": {"float": None}}},
        {"data": {"id": "x", "embeddings": {"float": [[1.0], [2.0]]}}},
    ],
    "viking": [
        {"code": 0, "message": "success"},
        {"code": 0, "data": {"sentence_dense_embedding": [[1.0, 2.0]]}},
        {"code": 0, "data": {"sentence_dense_embedding": [1.0, 2.0]}},
        {"code": 0, "data": {"sentence_dense_embedding": "nope"}},
        {"code": 0, "data": []},
    ],
}


@pytest.mark.parametrize(
    ("api", "payload"), [(api, p) for api, ps in WRONG_SHAPES.items() for p in ps]
)
async def test_wrong_shapes_are_format_errors(kind: str, api: str, payload: Any) -> None:
    error, provider = await call(
        api, kind, failing(99, lambda: json_response(200, payload)), max_retries=1
    )
    assert isinstance(error, ResponseFormatError), error
    assert provider.count == 2


# --------------------------------------------------------------------------- never retried


NON_RETRYABLE = [
    # status, Viking code, FG-CLIP class, Viking class
    (400, 1000003, BadRequestError, BadRequestError),
    (401, 1000001, AuthenticationError, AuthenticationError),
    (403, 1000002, PermissionDeniedError, PermissionDeniedError),
    (404, 1000025, NotFoundError, NotFoundError),
    (413, 1000003, APIStatusError, BadRequestError),
    (422, None, APIStatusError, APIStatusError),
]


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize(("status", "vk_code", "fg_cls", "vk_cls"), NON_RETRYABLE)
async def test_other_4xx_sent_exactly_once(
    kind: str,
    api: str,
    status: int,
    vk_code: int | None,
    fg_cls: type[Exception],
    vk_cls: type[Exception],
) -> None:
    def make() -> httpx.Response:
        if api == "fgclip":
            return fg_error(status)
        return vk_error(status, vk_code) if vk_code else json_response(status, {"message": "x"})

    error, provider = await call(api, kind, failing(99, make))
    assert type(error) is (fg_cls if api == "fgclip" else vk_cls)
    assert isinstance(error, APIStatusError) and error.status_code == status
    assert provider.count == 1


async def test_fgclip_error_on_http_200_is_raised_not_returned(kind: str) -> None:
    error, provider = await call(
        "fgclip", kind, failing(99, lambda: fg_error(200, 400, "texts[0] is too long"))
    )
    assert type(error) is BadRequestError
    assert error.status_code == 200 and error.code == 400
    assert "texts[0] is too long" in str(error)
    assert provider.count == 1


@pytest.mark.parametrize("api", APIS)
async def test_max_retries_zero_turns_retries_off(kind: str, api: str) -> None:
    def make() -> httpx.Response:
        return fg_error(503) if api == "fgclip" else vk_error(503, 1000028)

    error, provider = await call(api, kind, failing(99, make), max_retries=0)
    assert isinstance(error, InternalServerError)
    assert provider.count == 1
    error, provider = await call(api, kind, failing(99, raising(httpx.ReadTimeout)), max_retries=0)
    assert isinstance(error, APITimeoutError)
    assert provider.count == 1


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("retries", [1, 2, 5])
async def test_retry_count_is_configurable(kind: str, api: str, retries: int) -> None:
    def make() -> httpx.Response:
        return fg_error(500) if api == "fgclip" else vk_error(500, 1000028)

    error, provider = await call(api, kind, failing(99, make), max_retries=retries)
    assert isinstance(error, InternalServerError)
    assert provider.count == retries + 1


# --------------------------------------------------------------------------- waiting


def _http_date(seconds_from_now: float) -> str:
    return email.utils.formatdate(time.time() + seconds_from_now, usegmt=True)


@pytest.mark.parametrize(
    ("headers", "low", "high"),
    [
        ({"Retry-After": "2"}, 2.0, 2.0),
        ({"Retry-After": "0"}, 0.0, 0.0),
        ({"Retry-After": "1.5"}, 1.5, 1.5),
        ({"retry-after-ms": "250"}, 0.25, 0.25),
        ({"retry-after-ms": "250", "Retry-After": "9"}, 0.25, 0.25),
        ({"Retry-After": "3600"}, 60.0, 60.0),
        ({"Retry-After": "__date+30__"}, 28.0, 30.0),
        ({"Retry-After": "__date-30__"}, 0.0, 0.0),
    ],
    ids=["secs", "zero", "fraction", "ms", "ms-wins", "capped", "http-date", "past-date"],
)
@pytest.mark.parametrize("api", APIS)
async def test_retry_after_is_honoured(
    kind: str, api: str, sleeps: list[float], headers: dict[str, str], low: float, high: float
) -> None:
    headers = {
        k: (_http_date(30) if v == "__date+30__" else _http_date(-30) if v == "__date-30__" else v)
        for k, v in headers.items()
    }

    def make() -> httpx.Response:
        response = fg_error(429) if api == "fgclip" else vk_error(429, 1000029)
        response.headers.update(headers)
        return response

    # A backoff of 30 s or more would show if Retry-After were ignored.
    result, provider = await call(
        api, kind, failing(1, make), retry=RetryPolicy(initial_delay=30, max_delay=30)
    )
    assert_ok(result)
    assert provider.count == 2
    assert len(sleeps) == 1
    assert low <= sleeps[0] <= high


@pytest.mark.parametrize("api", APIS)
async def test_backoff_without_retry_after_is_capped_and_jittered(
    kind: str, api: str, sleeps: list[float]
) -> None:
    def make() -> httpx.Response:
        return fg_error(503) if api == "fgclip" else vk_error(503, 1000028)

    fast = RetryPolicy(initial_delay=1.0, max_delay=3.0)
    error, provider = await call(api, kind, failing(99, make), max_retries=4, retry=fast)
    assert isinstance(error, InternalServerError)
    assert provider.count == 5
    bases = [1.0, 2.0, 3.0, 3.0]
    assert len(sleeps) == 4
    for slept, base in zip(sleeps, bases, strict=True):
        assert base * 0.75 <= slept <= base


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize(
    ("initial", "cap", "jitter"), [(0.5, 8.0, 0.25), (1.0, 3.0, 0.5), (0.1, 0.1, 0.0)]
)
def test_delay_bounds(seed: int, initial: float, cap: float, jitter: float) -> None:
    policy = RetryPolicy(
        initial_delay=initial, max_delay=cap, jitter=jitter, rng=random.Random(seed)
    )
    for n in range(1, 12):
        base = min(initial * 2 ** (n - 1), cap)
        for _ in range(20):
            delay = policy.delay(n)
            assert base * (1 - jitter) <= delay <= base
            assert delay <= cap


def test_delay_jitter_varies() -> None:
    policy = RetryPolicy(rng=random.Random(1))
    assert len({round(policy.delay(2), 6) for _ in range(20)}) > 10


def test_delay_uses_retry_after_capped() -> None:
    policy = RetryPolicy(max_retry_after=5.0)
    error = RateLimitError("slow down", status_code=429, retry_after=2.5)
    assert policy.delay(1, error) == 2.5
    error.retry_after = 500.0
    assert policy.delay(1, error) == 5.0


def test_negative_retry_count_refused() -> None:
    with pytest.raises(ValueError, match="max_retries"):
        RetryPolicy(max_retries=-1)


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (APITimeoutError("t"), True),
        (APIConnectionError("c"), True),
        (ResponseFormatError("f"), True),
        (RateLimitError("r", status_code=429), True),
        (APIStatusError("q", status_code=400, code=1000029), True),
        (APIStatusError("x", status_code=408), True),
        (APIStatusError("x", status_code=409), True),
        (InternalServerError("x", status_code=500), True),
        (InternalServerError("x", status_code=599), True),
        (BadRequestError("x", status_code=400), False),
        (AuthenticationError("x", status_code=401), False),
        (NotFoundError("x", status_code=404), False),
        (APIStatusError("x", status_code=418), False),
        (ValueError("not ours"), False),
    ],
)
def test_is_retryable(error: BaseException, retryable: bool) -> None:
    assert RetryPolicy.is_retryable(error) is retryable


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"retry-after": "7"}, 7.0),
        # Malformed values count as absent (the normal backoff applies, not "at once").
        ({"retry-after": "-3"}, None),
        ({"retry-after": "nan"}, None),
        ({"retry-after": "inf"}, None),
        ({"retry-after-ms": "-5", "retry-after": "2"}, 2.0),
        ({"retry-after-ms": "nan"}, None),
        ({"retry-after": "soon"}, None),
        ({"retry-after-ms": "1200"}, 1.2),
        ({"retry-after-ms": "junk", "retry-after": "4"}, 4.0),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(httpx.Headers(headers)) == expected


def test_parse_retry_after_http_date() -> None:
    value = parse_retry_after(httpx.Headers({"Retry-After": _http_date(10)}))
    assert value is not None and 8.0 <= value <= 10.0


@pytest.mark.parametrize("api", APIS)
async def test_transport_stats_count_attempts(kind: str, api: str) -> None:
    def make() -> httpx.Response:
        return fg_error(503) if api == "fgclip" else vk_error(503, 1000028)

    if api == "fgclip":
        twin = build_fgclip(kind, FakeFGClip(fault=failing(2, make)))
        await twin.embed_texts(["a"])
    else:
        twin = build_viking(kind, FakeViking(fault=failing(2, make)))
        await twin.embed(["a"], model="bge-m3")
    stats = twin.client.transport.stats
    assert (stats.requests, stats.retries, stats.failures) == (3, 2, 0)
