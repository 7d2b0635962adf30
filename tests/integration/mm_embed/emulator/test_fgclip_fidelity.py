"""FG-CLIP details the provider's page states: the URL suffix rule, the required
``accept`` header (strict) or defaults for third-party clients (lenient), and the reply's
``created`` / ``meta`` / ``context.timestamp``."""

from __future__ import annotations

import datetime as dt
import re
import time
from typing import Any

import httpx
import pytest

from mm_embed import FGClipClient
from mm_embed.emulator import Emulator
from mm_embed.emulator.cli import build_parser, config_from_args
from tests.integration._helpers import FG_PATH, fg_error, fg_ok, fg_post, image_body, text_body

CHINA = dt.timezone(dt.timedelta(hours=8))


# ---------------------------------------------------------------- D: URL suffix


@pytest.mark.parametrize(
    "tail",
    ["?x=1", "?size=large.jpg&v=2", "#top", "?", "/", ".gif"],
)
def test_url_must_end_in_an_image_suffix(emulator_session: Emulator, tail: str) -> None:
    url = emulator_session.sample_url("red-circle") + tail
    message = fg_error(emulator_session, image_body([url]))
    assert message.startswith("images[0] ") and ".jpg, .jpeg, .png or .bmp" in message


@pytest.mark.parametrize("url", ["https://h.test/a.jpg?x=1", "https://h.test/a.JPEG#x"])
def test_query_or_fragment_after_the_suffix_is_refused(
    emulator_session: Emulator, url: str
) -> None:
    assert "must end in" in fg_error(emulator_session, image_body([url]))


def test_whole_url_ending_in_a_suffix_is_accepted(emulator_session: Emulator) -> None:
    emu = emulator_session
    data = fg_ok(emu, image_body([emu.sample_url("red-circle"), emu.sample_url("green-square")]))
    assert len(data["images"]) == 2


# ---------------------------------------------------------------- E: strict and lenient


def post_with_accept(emu: Emulator, accept: str | None, body: dict[str, Any]) -> httpx.Response:
    with httpx.Client(timeout=20) as http:
        del http.headers["accept"]  # httpx would send "accept: */*" otherwise
        headers = {"Authorization": f"Bearer {emu.api_key}", "Content-Type": "application/json"}
        if accept is not None:
            headers["accept"] = accept
        return http.post(emu.url + FG_PATH, json=body, headers=headers)


@pytest.mark.parametrize("accept", [None, "text/html", "image/png", "application/json;q=0"])
def test_strict_refuses_a_missing_or_incompatible_accept(
    emulator_session: Emulator, accept: str | None
) -> None:
    r = post_with_accept(emulator_session, accept, text_body(["x"]))
    assert r.status_code == 200
    context = r.json()["context"]
    assert context["code"] == 400 and "accept" in context["message"]
    assert "application/json" in context["message"]


@pytest.mark.parametrize(
    "accept",
    [
        "application/json",
        "Application/JSON; charset=utf-8",
        "*/*",
        "application/*",
        "text/html, application/json;q=0.9",
    ],
)
def test_strict_accepts_json_compatible_accept(emulator_session: Emulator, accept: str) -> None:
    r = post_with_accept(emulator_session, accept, text_body(["x"]))
    assert r.json()["context"]["code"] == 0, r.text


def test_strict_requires_embedding_types(emulator_session: Emulator) -> None:
    body = {k: v for k, v in text_body(["x"]).items() if k != "embedding_types"}
    assert "embedding_types is required" in fg_error(emulator_session, body)


def test_our_client_satisfies_strict_mode(emulator_session: Emulator) -> None:
    with FGClipClient(emulator_session.api_key, base_url=emulator_session.url) as client:
        assert client.embed_texts(["strict"]).embeddings.shape == (1, 768)


def test_lenient_defaults_what_third_party_clients_leave_out(make_emulator: Any) -> None:
    """fgclip-mcp 0.1.2 sends no embedding_types; some clients send no accept."""
    emu = make_emulator(lenient=True)
    body = {k: v for k, v in text_body(["a red apple"]).items() if k != "embedding_types"}
    r = post_with_accept(emu, None, body)
    data = r.json()["data"]
    assert r.json()["context"]["code"] == 0
    assert data["embeddings"]["int8"] is None and len(data["embeddings"]["float"][0]) == 768
    # Same vector as a strict, complete request.
    assert (
        data["embeddings"]["float"] == fg_ok(emu, text_body(["a red apple"]))["embeddings"]["float"]
    )
    # Lenient fills in what is missing; it does not excuse what is wrong.
    assert "accept" in post_with_accept(emu, "text/html", body).json()["context"]["message"]
    assert "embedding_types" in fg_error(emu, {**body, "embedding_types": ["binary"]})


def test_lenient_flag_and_field() -> None:
    assert config_from_args(build_parser().parse_args(["--lenient"])).lenient is True
    assert config_from_args(build_parser().parse_args([])).lenient is False
    with Emulator(lenient=True) as emu:
        assert emu.config.lenient


# ---------------------------------------------------------------- J: reply metadata


def parse_created(value: str) -> float:
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}", value), value
    stamp = dt.datetime.strptime(value, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=CHINA)
    return stamp.timestamp()


def test_created_is_when_processing_began_in_china_time(make_emulator: Any) -> None:
    emu = make_emulator(latency_ms=1200)
    sent = time.time()
    r = fg_post(emu, text_body(["hello"]))
    received = time.time()
    payload = r.json()
    created = parse_created(payload["data"]["created"])
    assert sent - 0.01 <= created <= sent + 0.6, (sent, created)
    timestamp = payload["context"]["timestamp"]
    assert isinstance(timestamp, int) and not isinstance(timestamp, bool)
    assert int(sent + 1.2) <= timestamp <= received


def test_reply_shape_matches_the_spec(emulator_session: Emulator) -> None:
    payload = fg_post(emulator_session, text_body(["x"])).json()
    assert list(payload) == ["context", "data"]
    assert list(payload["context"]) == ["code", "message", "timestamp"]
    data = payload["data"]
    assert list(data) == ["id", "embeddings", "texts", "images", "meta", "created"]
    assert data["meta"] == {
        "api_version": {"version": "2.1.0"},
        "billed_units": {"images": 0, "input_tokens": 1, "output_tokens": 0},
        "latencys": None,
    }


def test_error_replies_carry_a_timestamp(emulator_session: Emulator) -> None:
    before = int(time.time())
    payload = fg_post(emulator_session, {"model": "nope"}).json()
    assert list(payload["context"]) == ["code", "message", "timestamp"]
    assert before <= payload["context"]["timestamp"] <= time.time()
