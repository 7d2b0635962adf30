"""Viking authentication: HMAC signature checks, token mode, what the log keeps."""

from __future__ import annotations

import datetime as dt

import httpx
import orjson
import pytest

from mm_embed.emulator import Emulator
from mm_embed.signing import format_x_date
from tests.integration._helpers import VIKING_PATH, signed_headers, texts, vbody, viking_post

BODY = vbody("bge-m3", texts("hello"))


def assert_unauthorized(r: httpx.Response) -> None:
    assert r.status_code == 401, r.text
    payload = r.json()
    assert (
        payload["code"] == 1000001
        and payload["message"] == "unauthorized"
        and payload["request_id"]
    )


def test_signed_request_accepted(emulator_session: Emulator) -> None:
    assert viking_post(emulator_session, BODY).status_code == 200


def test_signed_with_query_and_session_token(emulator_session: Emulator) -> None:
    r = viking_post(
        emulator_session, BODY, query={"b": "x y", "a": "1,2"}, session_token="sts-token"
    )
    assert r.status_code == 200, r.text


def test_wrong_secret(emulator_session: Emulator) -> None:
    assert_unauthorized(viking_post(emulator_session, BODY, secret_key="not-the-secret"))


def test_unknown_access_key(emulator_session: Emulator) -> None:
    assert_unauthorized(viking_post(emulator_session, BODY, access_key="AKLTother"))


def test_tampered_body(emulator_session: Emulator) -> None:
    raw = orjson.dumps(BODY)
    assert_unauthorized(
        viking_post(emulator_session, raw=raw, send_raw=raw.replace(b"hello", b"hellp"))
    )


def test_tampered_body_with_matching_hash(emulator_session: Emulator) -> None:
    """A body whose X-Content-Sha256 was also changed still fails the signature."""
    emu = emulator_session
    raw = orjson.dumps(BODY)
    other = raw.replace(b"hello", b"hellp")
    headers = signed_headers(emu, raw)
    headers["X-Content-Sha256"] = signed_headers(emu, other)["X-Content-Sha256"]
    assert_unauthorized(
        httpx.post(emu.url + VIKING_PATH, content=other, headers=headers, timeout=10)
    )


@pytest.mark.parametrize("minutes", [-16, 16, 60 * 24])
def test_stale_or_future_x_date(emulator_session: Emulator, minutes: int) -> None:
    moment = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes)
    assert_unauthorized(viking_post(emulator_session, BODY, x_date=format_x_date(moment)))


def test_x_date_within_skew(emulator_session: Emulator) -> None:
    moment = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=14)
    assert viking_post(emulator_session, BODY, x_date=format_x_date(moment)).status_code == 200


def test_signed_query_changed(emulator_session: Emulator) -> None:
    emu = emulator_session
    raw = orjson.dumps(BODY)
    headers = signed_headers(emu, raw, query={"a": "1"})
    r = httpx.post(
        emu.url + VIKING_PATH, params={"a": "2"}, content=raw, headers=headers, timeout=10
    )
    assert_unauthorized(r)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda h: h.pop("Authorization"),
        lambda h: h.update(Authorization="Bearer x"),
        lambda h: h.update(Authorization="HMAC-SHA256 garbage"),
        lambda h: h.pop("X-Date"),
        lambda h: h.update({"X-Date": "yesterday"}),
        lambda h: h.update(Host="127.0.0.1:1"),
        lambda h: h.update({"Content-Type": "application/json; charset=utf-8"}),
        lambda h: h.update(Authorization=h["Authorization"].replace("cn-north-1", "cn-beijing")),
        lambda h: h.update(Authorization=h["Authorization"].replace("/air/", "/ark/")),
    ],
)
def test_header_tampering(emulator_session: Emulator, mutate: object) -> None:
    emu = emulator_session
    raw = orjson.dumps(BODY)
    headers = signed_headers(emu, raw)
    mutate(headers)  # type: ignore[operator]
    assert_unauthorized(httpx.post(emu.url + VIKING_PATH, content=raw, headers=headers, timeout=10))


def test_token_mode(emulator_session: Emulator) -> None:
    emu = emulator_session
    assert viking_post(emu, BODY, token=emu.token).status_code == 200
    assert_unauthorized(viking_post(emu, BODY, token="wrong-token"))


def test_custom_credentials(make_emulator: object) -> None:
    emu = make_emulator(access_key="AKLTmine", secret_key="s3cret", token="tok")  # type: ignore[operator]
    assert viking_post(emu, BODY).status_code == 200
    assert viking_post(emu, BODY, token="tok").status_code == 200
    assert_unauthorized(
        viking_post(emu, BODY, access_key="AKLTemulator", secret_key="emulator-secret")
    )


def test_auth_failures_are_logged_without_secrets(emulator: Emulator) -> None:
    viking_post(emulator, BODY, secret_key="wrong")
    viking_post(emulator, BODY, token="wrong-token")
    viking_post(emulator, BODY)
    records = emulator.log
    assert [r.status for r in records] == [401, 401, 200]
    assert records[0].message.startswith("unauthorized") and "signature" in records[0].message
    assert records[2].auth == "hmac"
    dumped = repr(records) + repr(emulator.config) + repr(emulator)
    for secret in (emulator.secret_key, emulator.token, emulator.api_key, "wrong-token"):
        assert secret not in dumped
