"""Viking details: inline video containers, ``return_model_token_usage``, STS session
tokens."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from mm_embed.emulator import Emulator
from mm_embed.emulator.cli import build_parser, config_from_args
from tests.integration._helpers import (
    VIKING_PATH,
    b64_media,
    signed_headers,
    texts,
    vbody,
    viking_error,
    viking_ok,
)
from tests.integration._helpers import viking_post as post

# ---------------------------------------------------------------- F: video containers

MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + bytes(32)
MOV = b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00qt  " + bytes(32)
AVI = b"RIFF\x24\x00\x00\x00AVI LIST" + bytes(32)
NOT_VIDEOS = {
    "fake": b"fakevideo",
    "empty-ish": b"\x00",
    "png": b"\x89PNG\r\n\x1a\n" + bytes(32),
    "wav": b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(32),
    "ftyp-late": b"\x00\x00\x00\x00\x00ftypmp42" + bytes(32),
    "riff-short": b"RIFF\x00\x00\x00\x00AV",
}


def video_body(video: bytes, **params: Any) -> dict[str, Any]:
    seq = [{"text": "a clip"}, {"video": b64_media(video), "fps": 1}]
    return vbody(
        "doubao-embedding-vision",
        [{"data_type": "full_modal_seq", "full_modal_seq": seq}],
        model_version="250615",
        **params,
    )


@pytest.mark.parametrize("name", sorted(NOT_VIDEOS))
def test_inline_video_must_be_mp4_mov_or_avi(emulator_session: Emulator, name: str) -> None:
    message = viking_error(emulator_session, video_body(NOT_VIDEOS[name]), code=1000003, status=400)
    assert message.startswith("invalid request:data[0].full_modal_seq[1].video ")
    assert "MP4, MOV or AVI" in message


@pytest.mark.parametrize("video", [MP4, MOV, AVI], ids=["mp4", "mov", "avi"])
def test_real_containers_accepted(emulator_session: Emulator, video: bytes) -> None:
    data = viking_ok(emulator_session, video_body(video))
    assert len(data["sentence_dense_embedding"]) == 1


def test_tos_video_checked_too(make_emulator: Any, tmp_path: Any) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "clip.mp4").write_bytes(b"fakevideo")
    (tmp_path / "b" / "real.mp4").write_bytes(MP4)
    emu = make_emulator(tos_dir=tmp_path)

    def tos(key: str) -> dict[str, Any]:
        body = video_body(MP4)
        body["data"][0]["full_modal_seq"][1]["video"] = f"tos://b/{key}"
        return body

    assert "MP4, MOV or AVI" in viking_error(emu, tos("clip.mp4"), code=1000003, status=400)
    viking_ok(emu, tos("real.mp4"))


# ---------------------------------------------------------------- H: model_token_usage

HYBRIDS = {
    "bge-large-zh-and-m3": ["bge-large-zh", "bge-m3"],
    "doubao-embedding-and-m3": ["doubao-embedding", "bge-m3"],
    "doubao-embedding-large-and-m3": ["doubao-embedding-large", "bge-m3"],
}
USAGE = {"prompt_tokens": 9, "completion_tokens": 0, "total_tokens": 9}
TEXT = texts("如何使用torchserve部署模型")


@pytest.mark.parametrize("model", sorted(HYBRIDS))
def test_model_token_usage_only_when_asked(emulator_session: Emulator, model: str) -> None:
    emu = emulator_session
    plain = viking_ok(emu, vbody(model, TEXT, return_token_usage=True))
    assert plain["token_usage"] == USAGE and "model_token_usage" not in plain
    alone = viking_ok(emu, vbody(model, TEXT, return_model_token_usage=True))
    assert alone["model_token_usage"] == dict.fromkeys(HYBRIDS[model], USAGE)
    assert "token_usage" not in alone
    both = viking_ok(
        emu, vbody(model, TEXT, return_token_usage=True, return_model_token_usage=True)
    )
    assert both["token_usage"] == USAGE
    assert list(both["model_token_usage"]) == HYBRIDS[model]
    off = viking_ok(emu, vbody(model, TEXT, return_model_token_usage=False))
    assert "model_token_usage" not in off and "token_usage" not in off


def test_the_page_example_reply(emulator_session: Emulator) -> None:
    """The page's example 1: both flags on bge-large-zh-and-m3 give both usages."""
    data = viking_ok(
        emulator_session,
        vbody(
            "bge-large-zh-and-m3",
            texts("如何使用torchserve部署模型", "怎么使用训练机器学习模型"),
            return_token_usage=True,
            return_model_token_usage=True,
            return_dense=True,
            return_sparse=True,
        ),
    )
    assert set(data) == {
        "model_token_usage",
        "token_usage",
        "sentence_sparse_embedding",
        "sentence_dense_embedding",
    }
    total = data["token_usage"]["total_tokens"]
    assert all(u["total_tokens"] == total for u in data["model_token_usage"].values())


def test_single_models_have_no_model_token_usage(emulator_session: Emulator) -> None:
    data = viking_ok(emulator_session, vbody("bge-m3", TEXT, return_model_token_usage=True))
    assert "model_token_usage" not in data


# ---------------------------------------------------------------- I: session tokens

BODY = vbody("bge-m3", texts("hello"))


def unauthorized(r: httpx.Response) -> bool:
    return r.status_code == 401 and r.json()["code"] == 1000001


def test_configured_session_token_is_required(make_emulator: Any) -> None:
    emu = make_emulator(session_token="sts-session-1")
    assert post(emu, BODY, session_token="sts-session-1").status_code == 200
    assert unauthorized(post(emu, BODY))
    assert unauthorized(post(emu, BODY, session_token="sts-session-2"))
    # Token mode is another credential: unaffected.
    assert post(emu, BODY, token=emu.token).status_code == 200
    reasons = [r.message for r in emu.log if r.status == 401]
    assert any("X-Security-Token" in m for m in reasons)
    assert all("sts-session" not in m for m in reasons)


def test_session_token_must_be_signed(make_emulator: Any) -> None:
    emu = make_emulator(session_token="sts-session-1")
    raw = orjson.dumps(BODY)
    headers = {**signed_headers(emu, raw), "X-Security-Token": "sts-session-1"}
    r = httpx.post(emu.url + VIKING_PATH, content=raw, headers=headers, timeout=10)
    assert unauthorized(r)


def test_without_a_configured_token_a_signed_one_is_just_signed(emulator: Emulator) -> None:
    assert post(emulator, BODY, session_token="anything").status_code == 200


def test_session_token_flag_and_secrecy() -> None:
    config = config_from_args(build_parser().parse_args(["--session-token", "sts-xyz"]))
    assert config.session_token == "sts-xyz"
    assert "sts-xyz" not in repr(config)
    assert config_from_args(build_parser().parse_args([])).session_token is None


def test_official_sdk_style_sts_request(make_emulator: Any) -> None:
    """Signed like SignerV4 with a session token: X-Security-Token set and signed."""
    emu = make_emulator(session_token="sts-session-1")
    raw = orjson.dumps(BODY)
    headers = signed_headers(emu, raw, session_token="sts-session-1")
    assert headers["X-Security-Token"] == "sts-session-1"
    assert "x-security-token" in headers["Authorization"]
    r = httpx.post(emu.url + VIKING_PATH, content=raw, headers=headers, timeout=10)
    assert r.status_code == 200 and r.json()["code"] == 0
