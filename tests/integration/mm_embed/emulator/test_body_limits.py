"""Authentication before the body, the body cap enforced while streaming, a body-read
timeout: large or stalled bodies cost the emulator neither memory nor connections."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import orjson
import psutil
import pytest

from mm_embed.emulator import Emulator
from mm_embed.emulator.cli import build_parser, config_from_args
from tests.integration._helpers import (
    FG_PATH,
    VIKING_PATH,
    http_head,
    read_reply,
    reply_json,
    send_until_reply,
    serve_process,
    signed_headers,
    text_body,
    texts,
    vbody,
)

FIFTY_MB = 50 * 1024 * 1024
VIKING_CAP = 4 * 1024 * 1024
FGCLIP_CAP = 16 * 1024 * 1024
JSON = {"Content-Type": "application/json", "accept": "application/json"}


def fg_auth(key: str) -> dict[str, str]:
    return {**JSON, "Authorization": f"Bearer {key}"}


def unauthenticated_heads(n: int) -> list[tuple[str, bytes]]:
    """Half FG-CLIP with a wrong key, half Viking with no usable Authorization."""
    heads = []
    for k in range(n):
        if k % 2:
            heads.append(("fgclip", http_head(FG_PATH, fg_auth("wrong"), FIFTY_MB)))
        else:
            auth = {**JSON, "Authorization": "token=wrong"} if k % 4 else JSON
            heads.append(("viking", http_head(VIKING_PATH, auth, FIFTY_MB)))
    return heads


def test_unauthenticated_large_bodies_are_not_read() -> None:
    """Six clients each start a 50 MB body with bad credentials: each gets its 401 before
    sending most of it, and the server's resident memory barely moves."""
    with serve_process() as served:
        server = psutil.Process(served.proc.pid)
        # Warm every path once (imports, first request) before the baseline.
        for _, head in unauthenticated_heads(2):
            send_until_reply(served.port, head, 1024)
        baseline = server.memory_info().rss
        peak = baseline
        results: list[tuple[str, bytes, int]] = []
        lock = threading.Lock()

        def client(route: str, head: bytes) -> None:
            reply, sent = send_until_reply(served.port, head, FIFTY_MB, wait=30)
            with lock:
                results.append((route, reply, sent))

        threads = [
            threading.Thread(target=client, args=pair, daemon=True)
            for pair in unauthenticated_heads(6)
        ]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while any(t.is_alive() for t in threads) and time.monotonic() < deadline:
            peak = max(peak, server.memory_info().rss)
            time.sleep(0.02)
        for thread in threads:
            thread.join(5)
        grown_mb = (peak - baseline) / 2**20
    assert len(results) == 6
    for route, reply, sent in results:
        status, payload = reply_json(reply)
        assert status == 401, reply[:200]
        if route == "fgclip":
            assert payload["context"]["code"] == 401
        else:
            assert payload["code"] == 1000001
        assert sent < FIFTY_MB // 2, f"{route}: sent {sent} bytes before the 401"
    assert grown_mb < 40, f"server RSS grew {grown_mb:.1f} MB"
    print(f"6 x 50 MB unauthenticated bodies: server RSS grew {grown_mb:.1f} MB")


# Large enough that what the kernel's socket buffers take in (a few MB on loopback)
# cannot be mistaken for the server reading the body.
ANNOUNCED = 64 * 1024 * 1024


def test_over_cap_viking_body_is_refused_from_its_length(emulator: Emulator) -> None:
    headers = signed_headers(emulator, b"{}")
    head = http_head(VIKING_PATH, headers, ANNOUNCED)
    reply, sent = send_until_reply(emulator.port, head, ANNOUNCED)
    status, payload = reply_json(reply)
    assert status == 400 and payload["code"] == 1000003
    assert (
        payload["message"]
        == f"invalid request:request body is {ANNOUNCED} bytes, larger than 4194304"
    )
    assert sent < ANNOUNCED // 2
    assert b"connection: close" in reply.lower()
    (record,) = emulator.log
    assert record.status == 400 and not record.embedded


def test_over_cap_chunked_body_is_cut_while_streaming(emulator: Emulator) -> None:
    headers = signed_headers(emulator, b"{}")
    head = http_head(VIKING_PATH, headers, None)
    reply, sent = send_until_reply(emulator.port, head, ANNOUNCED, chunked=True)
    status, payload = reply_json(reply)
    assert status == 400 and payload["code"] == 1000003
    assert "larger than 4194304" in payload["message"]
    assert sent < ANNOUNCED // 2


def test_over_cap_fgclip_body(emulator: Emulator) -> None:
    head = http_head(FG_PATH, fg_auth(emulator.api_key), ANNOUNCED)
    reply, sent = send_until_reply(emulator.port, head, ANNOUNCED)
    status, payload = reply_json(reply)
    assert status == 413 and payload["context"]["code"] == 413 and payload["data"] is None
    assert str(FGCLIP_CAP) in payload["context"]["message"]
    assert sent < ANNOUNCED // 2


@pytest.mark.parametrize("route", ["fgclip", "viking"])
def test_stalled_body_is_cut_after_the_timeout(make_emulator: Any, route: str) -> None:
    emu = make_emulator(body_timeout_s=0.5)
    if route == "fgclip":
        raw = orjson.dumps(text_body(["hello"]))
        head = http_head(FG_PATH, fg_auth(emu.api_key), len(raw))
    else:
        raw = orjson.dumps(vbody("bge-m3", texts("hello")))
        head = http_head(VIKING_PATH, signed_headers(emu, raw), len(raw))
    with socket.create_connection(("127.0.0.1", emu.port), timeout=10) as sock:
        sock.sendall(head + raw[:10])  # ... and nothing more
        reply = read_reply(sock, wait=10)
    status, payload = reply_json(reply)
    assert status == 408, reply[:300]
    code = payload["context"]["code"] if route == "fgclip" else payload["code"]
    assert code == (408 if route == "fgclip" else 1000003)
    assert b"connection: close" in reply.lower()
    (record,) = emu.log
    assert record.status == 408 and "0.5" in record.message


def test_slow_but_steady_body_within_the_timeout_is_served(make_emulator: Any) -> None:
    emu = make_emulator(body_timeout_s=5)
    raw = orjson.dumps(text_body(["hello"]))
    with socket.create_connection(("127.0.0.1", emu.port), timeout=10) as sock:
        sock.sendall(http_head(FG_PATH, fg_auth(emu.api_key), len(raw)))
        for k in range(0, len(raw), 20):
            sock.sendall(raw[k : k + 20])
            time.sleep(0.05)
        status, payload = reply_json(_one_reply(sock))
    assert status == 200 and payload["context"]["code"] == 0


def _one_reply(sock: socket.socket) -> bytes:
    """Read one keep-alive reply (headers + Content-Length body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def test_body_timeout_flag() -> None:
    config = config_from_args(build_parser().parse_args(["--body-timeout", "2.5"]))
    assert config.body_timeout_s == 2.5
    assert config_from_args(build_parser().parse_args([])).body_timeout_s == 30.0
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--body-timeout", "0"])
