"""Acceptance 8: configuration from the environment, clear errors, secrets kept secret."""

from __future__ import annotations

import logging
import pickle
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from mm_embed import (
    AsyncFGClipClient,
    AsyncVikingClient,
    ConfigurationError,
    FGClipClient,
    MMEmbedError,
    VikingClient,
)
from mm_embed.auth import BearerAuth, VikingTokenAuth, VolcengineSignatureAuth
from mm_embed.signing import parse_authorization
from tests.unit._helpers import (
    FG_KEY,
    SECRETS,
    VIKING_AK,
    VIKING_SK,
    VIKING_TOKEN,
    FakeFGClip,
    FakeViking,
    build_fgclip,
    build_viking,
    json_response,
)

FG_CLASSES = {"sync": FGClipClient, "async": AsyncFGClipClient}
VK_CLASSES = {"sync": VikingClient, "async": AsyncVikingClient}


# --------------------------------------------------------------------------- FG-CLIP


async def test_fgclip_from_env(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FGCLIP_API_KEY", "env-fg-key")
    monkeypatch.setenv("FGCLIP_BASE_URL", "https://fg.example.test/")
    twin = build_fgclip(kind, api_key=None)
    await twin.embed_texts(["a"])
    request = twin.provider.seen[0].request
    assert request.headers["Authorization"] == "Bearer env-fg-key"
    assert str(request.url) == "https://fg.example.test/models/interface"


async def test_fgclip_arguments_beat_env(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FGCLIP_API_KEY", "env-fg-key")
    monkeypatch.setenv("FGCLIP_BASE_URL", "https://fg.example.test")
    twin = build_fgclip(kind, api_key=SecretStr("arg-key"), base_url="https://arg.example.test")
    await twin.embed_texts(["a"])
    request = twin.provider.seen[0].request
    assert request.headers["Authorization"] == "Bearer arg-key"
    assert request.url.host == "arg.example.test"


async def test_fgclip_default_base_url(kind: str) -> None:
    twin = build_fgclip(kind)
    await twin.embed_texts(["a"])
    assert str(twin.provider.seen[0].request.url) == "https://api.research.360.cn/models/interface"


@pytest.mark.parametrize("value", [None, "", SecretStr("")])
def test_fgclip_missing_key_names_the_variable(
    kind: str, monkeypatch: pytest.MonkeyPatch, value: Any
) -> None:
    if value == "":
        monkeypatch.setenv("FGCLIP_API_KEY", "")
    with pytest.raises(ConfigurationError, match="FGCLIP_API_KEY"):
        FG_CLASSES[kind](api_key=value)


@pytest.mark.parametrize(
    ("option", "value", "name"),
    [
        ("max_concurrency", 0, "max_concurrency"),
        ("max_retries", -1, "max_retries"),
        ("max_body_bytes", 10, "max_body_bytes"),
        ("max_concurrency", True, "max_concurrency"),
    ],
)
def test_bad_settings(kind: str, option: str, value: Any, name: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        FG_CLASSES[kind](api_key="k", **{option: value})
    with pytest.raises(ConfigurationError, match=name):
        VK_CLASSES[kind](token="t", **{option: value})


# --------------------------------------------------------------------------- Viking


async def test_viking_keys_from_env(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOLC_ACCESSKEY", "AKLTfromEnv")
    monkeypatch.setenv("VOLC_SECRETKEY", "sk-from-env")
    monkeypatch.setenv("VIKING_BASE_URL", "http://127.0.0.1:8765")
    twin = build_viking(kind, access_key=None, secret_key=None, region="cn-beijing")
    await twin.embed(["a"], model="bge-m3")
    request = twin.provider.seen[0].request
    parsed = parse_authorization(request.headers["Authorization"])
    assert parsed is not None
    assert (parsed.access_key, parsed.region, parsed.service) == (
        "AKLTfromEnv",
        "cn-beijing",
        "air",
    )
    assert str(request.url) == "http://127.0.0.1:8765/api/data/embedding/version/2"
    assert request.headers["Host"] == "127.0.0.1:8765"


async def test_viking_token_from_env(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIKING_TOKEN", "env-token")
    twin = build_viking(kind, access_key=None, secret_key=None)
    await twin.embed(["a"], model="bge-m3")
    request = twin.provider.seen[0].request
    assert request.headers["Authorization"] == "token=env-token"
    assert "X-Date" not in request.headers and "X-Content-Sha256" not in request.headers
    assert request.headers["Content-Type"] == "application/json"


async def test_viking_explicit_token_beats_env_keys(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOLC_ACCESSKEY", "AKLTfromEnv")
    monkeypatch.setenv("VOLC_SECRETKEY", "sk-from-env")
    twin = build_viking(kind, token=SecretStr("arg-token"))
    await twin.embed(["a"], model="bge-m3")
    assert twin.provider.seen[0].request.headers["Authorization"] == "token=arg-token"


async def test_viking_keys_beat_env_token(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIKING_TOKEN", "env-token")
    twin = build_viking(kind)
    await twin.embed(["a"], model="bge-m3")
    assert twin.provider.seen[0].request.headers["Authorization"].startswith("HMAC-SHA256 ")


@pytest.mark.parametrize(
    ("env", "args", "names"),
    [
        ({}, {}, ["VOLC_ACCESSKEY", "VOLC_SECRETKEY", "VIKING_TOKEN"]),
        ({"VOLC_ACCESSKEY": "ak-value-1"}, {}, ["VOLC_SECRETKEY"]),
        ({"VOLC_SECRETKEY": "sk-value-2"}, {}, ["VOLC_ACCESSKEY"]),
        ({}, {"access_key": "ak-value-1"}, ["VOLC_SECRETKEY"]),
        ({}, {"secret_key": "sk-value-2"}, ["VOLC_ACCESSKEY"]),
        ({"VOLC_ACCESSKEY": "", "VOLC_SECRETKEY": "", "VIKING_TOKEN": ""}, {}, ["VIKING_TOKEN"]),
    ],
)
def test_viking_missing_credentials_name_the_variables(
    kind: str,
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    args: dict[str, str],
    names: list[str],
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as info:
        VK_CLASSES[kind](**args)
    for name in names:
        assert name in str(info.value)
    assert "ak-value-1" not in str(info.value) and "sk-value-2" not in str(info.value)


# --------------------------------------------------------------------------- secrets


def _all_clients() -> list[Any]:
    return [
        FGClipClient(api_key=FG_KEY),
        AsyncFGClipClient(api_key=FG_KEY),
        VikingClient(VIKING_AK, VIKING_SK),
        AsyncVikingClient(VIKING_AK, VIKING_SK),
        VikingClient(token=VIKING_TOKEN),
        AsyncVikingClient(token=VIKING_TOKEN),
    ]


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


def test_secrets_not_in_reprs() -> None:
    for client in _all_clients():
        assert_no_secret(repr(client))
        assert_no_secret(str(client))
        assert_no_secret(repr(vars(client)))
        assert_no_secret(repr(client.transport.auth))
        assert_no_secret(repr(vars(client.transport)))
    for auth in (
        BearerAuth(FG_KEY),
        VikingTokenAuth(VIKING_TOKEN),
        VolcengineSignatureAuth(VIKING_AK, VIKING_SK, session_token=VIKING_TOKEN),
    ):
        assert_no_secret(repr(auth))
        assert_no_secret(repr(vars(auth)))


def _echoing_refusal(n: int, body: dict[str, Any], request: httpx.Request) -> httpx.Response:
    # A refusal, then a server error after retries: every error path gets exercised.
    if n == 0:
        raise httpx.ConnectError("connection reset by peer")
    if "texts" in body:
        return json_response(
            401, {"context": {"code": 401, "message": "invalid api key"}, "data": None}
        )
    return json_response(401, {"code": 1000001, "message": "unauthorized", "request_id": "r"})


@pytest.mark.parametrize("api", ["fgclip", "viking-hmac", "viking-token"])
async def test_secrets_not_in_errors_or_logs(
    kind: str, api: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    if api == "fgclip":
        twin = build_fgclip(kind, FakeFGClip(fault=_echoing_refusal))
        call = twin.embed_texts(["hello"])
    else:
        extra = {"token": VIKING_TOKEN} if api == "viking-token" else {}
        twin = build_viking(kind, FakeViking(fault=_echoing_refusal), **extra)
        call = twin.embed(["hello"], model="bge-m3")
    with pytest.raises(MMEmbedError) as info:
        await call
    assert twin.provider.count == 2  # the reset was retried, the 401 was not
    error = info.value
    for text in (str(error), repr(error), repr(vars(error)), repr(error.args)):
        assert_no_secret(text)
    assert_no_secret(repr(pickle.loads(pickle.dumps(error)).__dict__))
    assert caplog.records, "expected the retry to be logged"
    assert_no_secret(caplog.text)
    for record in caplog.records:
        assert_no_secret(record.getMessage())
