"""The in-process server: context managers, fixtures, request log and counters."""

from __future__ import annotations

from collections import Counter

import httpx
import pytest

from mm_embed.emulator import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_API_KEY,
    DEFAULT_SECRET_KEY,
    DEFAULT_TOKEN,
    SAMPLES,
    AsyncEmulator,
    Emulator,
    EmulatorConfig,
)
from tests.integration._helpers import fg_post, text_body, texts, vbody, viking_post


def test_defaults(emulator: Emulator) -> None:
    assert (
        (emulator.api_key, emulator.access_key, emulator.secret_key, emulator.token)
        == (
            DEFAULT_API_KEY,
            DEFAULT_ACCESS_KEY,
            DEFAULT_SECRET_KEY,
            DEFAULT_TOKEN,
        )
        == ("emulator-key", "AKLTemulator", "emulator-secret", "emulator-token")
    )
    assert emulator.url.startswith("http://127.0.0.1:") and emulator.port > 0
    assert emulator.viking_host == f"127.0.0.1:{emulator.port}"


def test_start_stop_and_port_is_freed() -> None:
    with Emulator() as emu:
        url = emu.url
        assert fg_post(emu, text_body(["x"])).status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/samples", timeout=2)
    with pytest.raises(RuntimeError):
        _ = emu.url


def test_config_object_and_overrides() -> None:
    config = EmulatorConfig(port=0, api_key="k1")
    with Emulator(config, api_key="k2") as emu:
        assert emu.api_key == "k2"
        assert fg_post(emu, text_body(["x"]), key="k2").status_code == 200
    with pytest.raises(ValueError, match="unknown fault"):
        EmulatorConfig(faults=("boom",))


async def test_async_context_manager() -> None:
    async with AsyncEmulator() as emu:
        async with httpx.AsyncClient(timeout=10) as client:
            r = await client.post(
                emu.url + "/models/interface",
                json=text_body(["x"]),
                headers={"Authorization": f"Bearer {emu.api_key}"},
            )
        assert r.status_code == 200
        # A blocking client inside an async test cannot stall the server (own thread).
        assert fg_post(emu, text_body(["y"])).status_code == 200


def test_samples_served(emulator: Emulator) -> None:
    index = httpx.get(emulator.url + "/samples", timeout=10).json()
    assert {s["name"] for s in index} == set(SAMPLES)
    for entry in index:
        r = httpx.get(entry["url"], timeout=10)
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert httpx.get(emulator.url + "/samples/nope.png", timeout=10).status_code == 404


def test_log_records_and_counters(emulator: Emulator) -> None:
    fg_post(emulator, text_body(["a", "b"]))
    viking_post(emulator, vbody("bge-m3", texts("a", "c")))
    viking_post(emulator, vbody("nope", texts("a")))
    emulator.queue_faults("500")
    fg_post(emulator, text_body(["z"]))
    log = emulator.log
    assert [(r.route, r.status, r.code, r.items, r.embedded) for r in log] == [
        ("fgclip", 200, 0, 2, True),
        ("viking", 200, 0, 2, True),
        ("viking", 404, 1000025, 1, False),
        ("fgclip", 500, 500, 1, False),
    ]
    assert log[3].fault == "500" and log[0].model == "fg-clip" and log[1].model == "bge-m3"
    assert all(r.request_id and r.duration_ms >= 0 for r in log)
    assert log[0].item_hashes[0] != log[0].item_hashes[1]
    counters = emulator.counters
    assert counters["requests"] == 4 and counters["items_embedded"] == 4
    assert counters["route:viking"] == 2 and counters["fault:500"] == 1
    emulator.clear_log()
    assert emulator.log == [] and emulator.counters == {}


def test_no_item_embedded_twice_pattern(emulator: Emulator) -> None:
    """How a client test proves it never re-embeds an item: count embedded hashes."""
    fg_post(emulator, text_body(["a", "b"]))
    fg_post(emulator, text_body(["c"]))
    fg_post(emulator, text_body(["a"]))
    embedded = Counter(h for r in emulator.log if r.embedded for h in r.item_hashes)
    assert sorted(embedded.values()) == [1, 1, 2]
