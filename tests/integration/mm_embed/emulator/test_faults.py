"""Fault injection, each kind observed by a plain httpx client."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import orjson
import pytest

from mm_embed.emulator import Emulator
from tests.integration._helpers import fg_post, text_body, texts, vbody, viking_post

VBODY = vbody("bge-m3", texts("hello"))


@pytest.mark.parametrize("status", [429, 500, 503])
def test_status_faults_fgclip(emulator: Emulator, status: int) -> None:
    emulator.queue_faults(str(status))
    r = fg_post(emulator, text_body(["x"]))
    assert r.status_code == status
    payload = r.json()
    assert payload["data"] is None and payload["context"]["code"] == status
    assert "Retry-After" not in r.headers
    assert fg_post(emulator, text_body(["x"])).status_code == 200  # the queue is used up


@pytest.mark.parametrize(("status", "code"), [(429, 1000029), (500, 1000028), (503, 1000028)])
def test_status_faults_viking(emulator: Emulator, status: int, code: int) -> None:
    emulator.queue_faults(str(status))
    r = viking_post(emulator, VBODY)
    assert r.status_code == status
    payload = r.json()
    assert payload["code"] == code and payload["message"] and payload["request_id"]


def test_retry_after_option(make_emulator: Any) -> None:
    emu = make_emulator(retry_after=0)
    emu.queue_faults("429", "429")
    assert fg_post(emu, text_body(["x"])).headers["Retry-After"] == "0"
    assert viking_post(emu, VBODY).headers["Retry-After"] == "0"


@pytest.mark.parametrize("route", ["fgclip", "viking"])
def test_reset_drops_the_connection(emulator: Emulator, route: str) -> None:
    emulator.queue_faults("reset")
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        fg_post(emulator, text_body(["x"])) if route == "fgclip" else viking_post(emulator, VBODY)
    record = emulator.log[-1]
    assert record.fault == "reset" and record.status is None and not record.embedded
    # The server is fine afterwards.
    assert fg_post(emulator, text_body(["x"])).status_code == 200


@pytest.mark.parametrize("route", ["fgclip", "viking"])
def test_malformed_body(emulator: Emulator, route: str) -> None:
    emulator.queue_faults("malformed")
    r = fg_post(emulator, text_body(["x"])) if route == "fgclip" else viking_post(emulator, VBODY)
    assert r.status_code == 200
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(r.content)


def test_timeout_fault(make_emulator: Any) -> None:
    emu = make_emulator(timeout_fault_s=3)
    emu.queue_faults("timeout")
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(emu.url + "/models/interface", json=text_body(["x"]), timeout=0.5)
    assert time.monotonic() - started < 2


def test_timeout_fault_is_cut_short_by_shutdown() -> None:
    emu = Emulator(timeout_fault_s=60).start()
    emu.queue_faults("timeout")
    outcome: list[BaseException | int] = []

    def call() -> None:
        try:
            outcome.append(
                httpx.post(
                    emu.url + "/models/interface", json=text_body(["x"]), timeout=30
                ).status_code
            )
        except httpx.HTTPError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    time.sleep(0.5)  # let the request reach its sleep (it is logged only when it ends)
    started = time.monotonic()
    emu.stop()
    thread.join(15)
    assert time.monotonic() - started < 8
    assert not thread.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], httpx.HTTPError)


def test_latency(make_emulator: Any) -> None:
    emu = make_emulator(latency_ms=250)
    started = time.monotonic()
    assert fg_post(emu, text_body(["x"])).status_code == 200
    assert time.monotonic() - started >= 0.25


def outcome_of(emu: Emulator) -> str:
    try:
        r = fg_post(emu, text_body(["x"]))
    except httpx.HTTPError as exc:
        return type(exc).__name__
    return str(r.status_code)


def test_fault_rate_is_seeded(make_emulator: Any) -> None:
    config = {"fault_rate": 0.5, "faults": ("500", "503", "reset"), "seed": 7}
    a, b = make_emulator(**config), make_emulator(**config)
    first = [outcome_of(a) for _ in range(30)]
    second = [outcome_of(b) for _ in range(30)]
    assert first == second
    faulted = sum(o != "200" for o in first)
    assert 5 <= faulted <= 25
    assert {"500", "503", "RemoteProtocolError"} & set(first)
    assert a.counters["faults"] == faulted
    other = make_emulator(**{**config, "seed": 8})
    assert [outcome_of(other) for _ in range(30)] != first


def test_fault_rate_zero_and_one(make_emulator: Any) -> None:
    always = make_emulator(fault_rate=1.0, faults=("503",))
    assert {outcome_of(always) for _ in range(5)} == {"503"}
    never = make_emulator(fault_rate=0.0)
    assert {outcome_of(never) for _ in range(5)} == {"200"}


def test_faults_skip_ping_and_samples(make_emulator: Any) -> None:
    emu = make_emulator(fault_rate=1.0, faults=("503",))
    assert httpx.get(emu.url + "/api/viking_db/data/ping", timeout=10).status_code == 200
    assert httpx.get(emu.sample_url(), timeout=10).status_code == 200


def test_queue_rejects_unknown_kind(emulator: Emulator) -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        emulator.queue_faults("418")
    emulator.queue_faults("none", "500")
    assert outcome_of(emulator) == "200"
    assert outcome_of(emulator) == "500"
