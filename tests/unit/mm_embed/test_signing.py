"""Acceptance 1: the Volcengine signer, byte for byte against the SDK's own vectors."""

from __future__ import annotations

import hashlib
import itertools
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from mm_embed.auth import BearerAuth, VikingTokenAuth, VolcengineSignatureAuth
from mm_embed.signing import (
    canonical_path,
    canonical_query,
    format_x_date,
    parse_authorization,
    sign,
)
from tests.unit._helpers import VIKING_AK, VIKING_SK, FakeViking, json_response

VECTORS_FILE = Path(__file__).with_name("viking-sign-vectors.json")
VECTORS: list[dict[str, Any]] = json.loads(VECTORS_FILE.read_text("utf-8"))["vectors"]
FIELDS = (
    "body_sha256",
    "canonical_request",
    "string_to_sign",
    "signed_headers",
    "signature",
    "authorization",
)


def _ids(vectors: list[dict[str, Any]]) -> list[str]:
    return [v["name"] for v in vectors]


def _clock_at(x_date: str) -> datetime:
    return datetime.strptime(x_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def _headers_added(vector: dict[str, Any]) -> dict[str, str]:
    before = vector["headers_in"]
    return {k: v for k, v in vector["headers_out"].items() if before.get(k) != v}


def _sign_vector(vector: dict[str, Any]) -> Any:
    return sign(
        access_key=vector["access_key"],
        secret_key=vector["secret_key"],
        region=vector["region"],
        service=vector["service"],
        method=vector["method"],
        path=vector["path"],
        headers=vector["headers_in"],
        body=vector["body"].encode("utf-8"),
        x_date=vector["x_date"],
        query=vector["query"],
        session_token=vector["session_token"] or None,
    )


def test_vectors_cover_the_spec() -> None:
    assert len(VECTORS) == 13
    assert {v["name"][0] for v in VECTORS} >= set("abcdefghi")


@pytest.mark.parametrize("vector", VECTORS, ids=_ids(VECTORS))
@pytest.mark.parametrize("name", FIELDS)
def test_sign_reproduces_vector(vector: dict[str, Any], name: str) -> None:
    assert getattr(_sign_vector(vector), name) == vector[name]


@pytest.mark.parametrize("vector", VECTORS, ids=_ids(VECTORS))
def test_sign_adds_exactly_the_sdk_headers(vector: dict[str, Any]) -> None:
    parts = _sign_vector(vector)
    assert parts.headers_added == _headers_added(vector)
    assert parts.x_date == vector["x_date"]
    assert (
        hashlib.sha256(parts.canonical_request.encode()).hexdigest()
        == vector["canonical_request_sha256"]
    )


def _sdk_like_request(vector: dict[str, Any]) -> httpx.Request:
    """An ``httpx.Request`` with the SDK's headers (exact casing), query and body."""
    return httpx.Request(
        vector["method"],
        f"{vector['scheme']}://{vector['host']}{vector['path']}",
        params=vector["query"],
        headers=vector["headers_in"],
        content=vector["body"].encode("utf-8"),
    )


@pytest.mark.parametrize("vector", VECTORS, ids=_ids(VECTORS))
def test_auth_signs_an_httpx_request_like_the_sdk(vector: dict[str, Any]) -> None:
    auth = VolcengineSignatureAuth(
        vector["access_key"],
        vector["secret_key"],
        region=vector["region"],
        service=vector["service"],
        session_token=vector["session_token"] or None,
        clock=lambda: _clock_at(vector["x_date"]),
    )
    signed = next(auth.sync_auth_flow(_sdk_like_request(vector)))
    for name, value in _headers_added(vector).items():
        assert signed.headers[name] == value, name
    assert signed.headers["Authorization"] == vector["authorization"]
    assert signed.headers["X-Date"] == vector["x_date"]
    assert signed.headers["X-Content-Sha256"] == vector["body_sha256"]
    # The Host header sent keeps its port even when the signature drops :80 / :443.
    assert signed.headers["Host"] == vector["headers_in"]["Host"]


def test_auth_reads_the_body_and_never_prints_secrets() -> None:
    auth = VolcengineSignatureAuth("AKLTexample", "secretexample", session_token="sts-secret")
    assert auth.requires_request_body is True
    for text in (repr(auth), str(auth)):
        assert "secretexample" not in text and "sts-secret" not in text


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2024, 1, 15, 8, 30, 0, tzinfo=UTC), "20240115T083000Z"),
        (datetime(2024, 1, 15, 16, 30, 0, tzinfo=timezone(timedelta(hours=8))), "20240115T083000Z"),
        (datetime(2025, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC), "20251231T235959Z"),
    ],
)
def test_format_x_date_is_utc(moment: datetime, expected: str) -> None:
    assert format_x_date(moment) == expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [("", "/"), ("/a b/+~_.-", "/a%20b/%2B~_.-"), ("/中", "/%E4%B8%AD"), ("/x,y", "/x%2Cy")],
)
def test_canonical_path(path: str, expected: str) -> None:
    assert canonical_path(path) == expected


def test_canonical_query_orders_raw_keys_and_repeats_lists() -> None:
    query = {"limit": "10", "Name": "a b", "a/b": "1", "a.b": "2", "tags": ["z", "y"], "e": []}
    assert canonical_query(query) == "Name=a%20b&a.b=2&a%2Fb=1&limit=10&tags=z&tags=y"
    assert canonical_query({}) == ""


@pytest.mark.parametrize("vector", VECTORS[:1], ids=_ids(VECTORS[:1]))
def test_parse_authorization_round_trip(vector: dict[str, Any]) -> None:
    parsed = parse_authorization(vector["authorization"])
    assert parsed is not None
    assert parsed.access_key == vector["access_key"]
    assert parsed.region == vector["region"] and parsed.service == vector["service"]
    assert parsed.signed_headers == tuple(vector["signed_headers"].split(";"))
    assert parsed.signature == vector["signature"]
    for bad in ("", "token=abc", "HMAC-SHA256 Credential=a/b", "HMAC-SHA256 nonsense"):
        assert parse_authorization(bad) is None


# --------------------------------------------------------------------------- on the wire


def _verify(request: httpx.Request) -> None:
    """Recompute the signature of a request the client sent, from what was sent."""
    headers = {
        k.decode(): v.decode()
        for k, v in request.headers.raw
        if k.lower() not in (b"authorization", b"content-length", b"x-date", b"x-content-sha256")
    }
    x_date = request.headers["X-Date"]
    parts = sign(
        access_key=VIKING_AK,
        secret_key=VIKING_SK,
        region="cn-north-1",
        service="air",
        method=request.method,
        path=request.url.path,
        headers=headers,
        body=request.content,
        x_date=x_date,
    )
    assert request.headers["Authorization"] == parts.authorization
    assert request.headers["X-Content-Sha256"] == hashlib.sha256(request.content).hexdigest()
    assert parts.signed_headers == "content-type;host;x-content-sha256;x-date"


async def test_client_signs_what_it_sends(viking: Any) -> None:
    twin = viking()
    await twin.embed(["hello world", "你好"], model="bge-m3")
    (seen,) = twin.provider.seen
    _verify(seen.request)
    assert seen.request.url.path == "/api/data/embedding/version/2"


async def test_retry_is_signed_afresh(viking: Any) -> None:
    start = datetime(2024, 1, 15, 8, 30, 0, tzinfo=UTC)
    ticks = itertools.count()
    provider = FakeViking(
        fault=lambda n, body, req: (
            json_response(500, {"code": 1000028, "message": "boom"}) if n < 2 else None
        )
    )
    twin = viking(provider)
    twin.client.transport.auth = VolcengineSignatureAuth(
        VIKING_AK, VIKING_SK, clock=lambda: start + timedelta(seconds=next(ticks))
    )
    await twin.embed(["hello"], model="bge-m3")
    assert provider.count == 3
    dates = [s.request.headers["X-Date"] for s in provider.seen]
    assert dates == ["20240115T083000Z", "20240115T083001Z", "20240115T083002Z"]
    assert len({s.request.headers["Authorization"] for s in provider.seen}) == 3
    for seen in provider.seen:
        _verify(seen.request)


async def test_token_and_bearer_modes(viking: Any, fgclip: Any) -> None:
    twin = viking(token="tok-123")
    await twin.embed(["a"], model="bge-m3")
    request = twin.provider.seen[0].request
    assert request.headers["Authorization"] == "token=tok-123"
    assert "X-Date" not in request.headers
    fg = fgclip(api_key="fg-abc")
    await fg.embed_texts(["a"])
    request = fg.provider.seen[0].request
    assert request.headers["Authorization"] == "Bearer fg-abc"
    assert request.headers["accept"] == "application/json"
    assert request.headers["content-type"] == "application/json"
    for auth in (BearerAuth("fg-abc"), VikingTokenAuth("tok-123")):
        assert "fg-abc" not in repr(auth) and "tok-123" not in repr(auth)
