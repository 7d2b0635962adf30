"""The emulator as a server under abuse: malformed JSON, wrong content types, oversize
bodies, bad signatures, a replayed old ``X-Date``, missing auth, broken HTTP, clients
that vanish mid-body and slow clients. Each gets the provider's error code (or a plain
HTTP 400 for what is not HTTP), nothing crashes, the emulator keeps serving, and its
memory stays bounded over hundreds of abusive requests.
"""

from __future__ import annotations

import datetime as dt
import gc
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import orjson
import psutil
import pytest

from mm_embed.emulator import Emulator
from mm_embed.signing import format_x_date
from tests.integration._helpers import (
    FG_PATH,
    VIKING_PATH,
    fg_client,
    fg_headers,
    raw_exchange,
    signed_headers,
)

FG_OK = orjson.dumps(
    {"model": "fg-clip", "input_type": "text", "embedding_types": ["float"], "texts": ["hi"]}
)
VK_OK = orjson.dumps(
    {"model": {"model_name": "bge-m3"}, "data": [{"data_type": "text", "text": "hi"}]}
)
FIVE_MB = 5 * 1024 * 1024
TIMEOUT = httpx.Timeout(20.0)


@dataclass(frozen=True)
class Abuse:
    id: str
    send: Callable[[Emulator, httpx.Client], httpx.Response]
    status: int
    #: The provider code in the JSON body (``None``: the reply is not the provider's JSON).
    code: int | None
    #: Part of the reason the emulator logs (auth failures tell the client only "unauthorized").
    logged: str = ""


Sender = Callable[[Emulator, httpx.Client], httpx.Response]


def fg(body: bytes, headers: dict[str, str] | None = None) -> Sender:
    def send(emu: Emulator, http: httpx.Client) -> httpx.Response:
        sent = fg_headers(emu) if headers is None else headers
        return http.post(emu.url + FG_PATH, content=body, headers=sent)

    return send


def fg_with(content_type: str) -> Sender:
    return lambda emu, http: fg(FG_OK, fg_headers(emu, content_type))(emu, http)


def vk(
    body: bytes,
    *,
    signed_body: bytes | None = None,
    when: dt.datetime | None = None,
    secret_key: str | None = None,
    headers: dict[str, str] | None = None,
) -> Sender:
    def send(emu: Emulator, http: httpx.Client) -> httpx.Response:
        sent = (
            headers
            if headers is not None
            else signed_headers(
                emu,
                body if signed_body is None else signed_body,
                x_date=None if when is None else format_x_date(when),
                secret_key=secret_key,
            )
        )
        return http.post(emu.url + VIKING_PATH, content=body, headers=sent)

    return send


def tampered_signature(emu: Emulator, http: httpx.Client) -> httpx.Response:
    headers = signed_headers(emu, VK_OK)
    auth = headers["Authorization"]
    headers["Authorization"] = auth[:-4] + ("0000" if not auth.endswith("0000") else "1111")
    return http.post(emu.url + VIKING_PATH, content=VK_OK, headers=headers)


HOUR_AGO = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
JSON = {"Content-Type": "application/json"}

ABUSES = [
    # FG-CLIP answers its errors with HTTP 200 and context.code (401 is a real 401).
    Abuse("fg-malformed-json", fg(b'{"model": "fg-clip", "texts": ['), 200, 400, "not valid JSON"),
    Abuse("fg-nesting-bomb", fg(b"[" * 100_000), 200, 400, "not valid JSON"),
    Abuse("fg-invalid-utf8", fg(b'{"texts": ["\xff\xfe"]}'), 200, 400, "not valid JSON"),
    Abuse("fg-json-array", fg(b"[1, 2, 3]"), 200, 400, "JSON object"),
    Abuse("fg-json-null", fg(b"null"), 200, 400, "JSON object"),
    Abuse("fg-empty-body", fg(b""), 200, 400, "not valid JSON"),
    Abuse("fg-text-plain", fg_with("text/plain"), 200, 400, "Content-Type"),
    Abuse(
        "fg-form-encoded", fg_with("application/x-www-form-urlencoded"), 200, 400, "Content-Type"
    ),
    Abuse("fg-5mb-garbage", fg(b"\x00" * FIVE_MB), 200, 400, "not valid JSON"),
    Abuse(
        "fg-5mb-text",
        fg(orjson.dumps({**orjson.loads(FG_OK), "texts": ["word " * (FIVE_MB // 5)]})),
        200,
        400,
        "tokens",
    ),
    Abuse("fg-no-auth", fg(FG_OK, JSON), 401, 401, "Unauthorized"),
    Abuse("fg-wrong-key", fg(FG_OK, {**JSON, "Authorization": "Bearer nope"}), 401, 401),
    Abuse("fg-basic-auth", fg(FG_OK, {**JSON, "Authorization": "Basic dXNlcjpwYXNz"}), 401, 401),
    # Viking: 1000003 (HTTP 400) for bad bodies, 1000001 (HTTP 401) for auth.
    Abuse("vk-malformed-json", vk(b'{"model": {'), 400, 1000003, "not valid JSON"),
    Abuse("vk-nesting-bomb", vk(b"{" * 100_000), 400, 1000003, "not valid JSON"),
    Abuse("vk-json-string", vk(b'"text"'), 400, 1000003, "JSON object"),
    Abuse("vk-5mb-body", vk(b" " * FIVE_MB), 400, 1000003, "larger than 4194304"),
    Abuse("vk-bad-signature", tampered_signature, 401, 1000001, "signature mismatch"),
    Abuse("vk-wrong-secret", vk(VK_OK, secret_key="not-the-secret"), 401, 1000001, "mismatch"),
    Abuse("vk-body-swapped", vk(VK_OK, signed_body=b"{}"), 401, 1000001, "X-Content-Sha256"),
    Abuse("vk-replayed-old-x-date", vk(VK_OK, when=HOUR_AGO), 401, 1000001, "clock skew"),
    Abuse("vk-no-auth", vk(VK_OK, headers=JSON), 401, 1000001, "no Authorization"),
    Abuse(
        "vk-garbage-auth",
        vk(VK_OK, headers={**JSON, "Authorization": "HMAC-SHA256 x"}),
        401,
        1000001,
    ),
    Abuse(
        "vk-wrong-token",
        vk(VK_OK, headers={**JSON, "Authorization": "token=nope"}),
        401,
        1000001,
        "wrong token",
    ),
]


def serves_normally(emu: Emulator) -> None:
    with fg_client(emu, timeout=5.0) as client:
        assert client.embed_texts(["still alive"]).embeddings.shape == (1, 768)
    assert emu._thread is not None and emu._thread.is_alive()


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=TIMEOUT) as client:
        yield client


@pytest.mark.parametrize("abuse", ABUSES, ids=[a.id for a in ABUSES])
def test_abusive_request_gets_the_provider_error(
    emu: Emulator, http: httpx.Client, abuse: Abuse
) -> None:
    emu.clear_log()
    response = abuse.send(emu, http)
    assert response.status_code == abuse.status, response.text[:300]
    payload = response.json()
    if abuse.id.startswith("fg-"):
        assert payload["data"] is None and payload["context"]["code"] == abuse.code
    else:
        assert payload["code"] == abuse.code and payload["request_id"]
        if abuse.status == 401:
            assert payload["message"] == "unauthorized"  # the reason stays server-side
    (record,) = emu.log
    assert record.status == abuse.status and record.code == abuse.code
    assert not record.embedded
    assert abuse.logged in record.message
    serves_normally(emu)


def test_every_route_refuses_other_methods_and_paths(emu: Emulator) -> None:
    assert httpx.get(emu.url + FG_PATH).status_code == 405
    assert httpx.put(emu.url + VIKING_PATH, content=b"{}").status_code == 405
    assert httpx.post(emu.url + "/no/such/route", content=b"{}").status_code == 404
    serves_normally(emu)


# ------------------------------------------------------------------ below HTTP


RAW = {
    "not-http": b"NOT HTTP AT ALL\r\n\r\n",
    "negative-content-length": b"POST /models/interface HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    "bad-chunked": b"POST /models/interface HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\n",
    "two-content-lengths": b"POST /models/interface HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
    "binary-request-line": bytes(range(256)) + b"\r\n\r\n",
}


@pytest.mark.parametrize("name", sorted(RAW))
def test_broken_http_gets_400_and_the_server_lives(emu: Emulator, name: str) -> None:
    reply = raw_exchange(emu.host, emu.port, RAW[name])
    assert reply.startswith(b"HTTP/1.1 400 "), reply[:200]
    serves_normally(emu)


def test_huge_header_is_answered(emu: Emulator) -> None:
    request = (
        b"POST /models/interface HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"X-Big: " + b"a" * 100_000 + b"\r\n\r\n"
    )
    reply = raw_exchange(emu.host, emu.port, request)
    # Answered (uvicorn's h11 takes a 100 kB header); never a hang or a crash.
    assert reply.startswith((b"HTTP/1.1 401 ", b"HTTP/1.1 400 ", b"HTTP/1.1 431 ")), reply[:200]
    serves_normally(emu)


@pytest.mark.parametrize("path", [FG_PATH, VIKING_PATH])
def test_client_vanishing_mid_body_is_logged_not_crashed(
    emu: Emulator, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    emu.clear_log()
    # Authenticated, so the emulator starts reading the body (it refuses bad credentials
    # before reading any).
    if path == FG_PATH:
        headers = {**fg_headers(emu), "accept": "application/json"}
    else:
        headers = signed_headers(emu, b'{"model": ')
    head = f"POST {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    if "Host" not in headers:
        head += "Host: x\r\n"
    with caplog.at_level(logging.ERROR):
        with socket.create_connection((emu.host, emu.port), timeout=5) as sock:
            sock.sendall(head.encode() + b"Content-Length: 1000\r\n\r\n" + b'{"model": ')
            time.sleep(0.2)
        assert _wait(lambda: len(emu.log) == 1)
    (record,) = emu.log
    assert record.status == 499 and "disconnected" in record.message
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    serves_normally(emu)


def _wait(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not condition():
        time.sleep(0.02)
    return condition()


# ------------------------------------------------------------------ slow and idle clients

SLOW_CLIENTS = 20
IDLE_CLIENTS = 50


def test_slow_and_idle_clients_do_not_block_others(emu: Emulator) -> None:
    """Twenty clients trickle a body a byte at a time and fifty sit idle; normal requests
    are still answered fast. Each slow client finally gets its proper answer."""
    emu.clear_log()
    body = FG_OK
    head = (
        f"POST {FG_PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"accept: application/json\r\n"
        f"Authorization: Bearer {emu.api_key}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    replies: list[bytes] = []
    lock = threading.Lock()

    def slow_client() -> None:
        with socket.create_connection((emu.host, emu.port), timeout=10) as sock:
            sock.sendall(head)
            for k in range(len(body)):
                sock.sendall(body[k : k + 1])
                time.sleep(0.02)
            received = sock.recv(65536)
        with lock:
            replies.append(received)

    idle = [socket.create_connection((emu.host, emu.port), timeout=10) for _ in range(IDLE_CLIENTS)]
    threads = [threading.Thread(target=slow_client, daemon=True) for _ in range(SLOW_CLIENTS)]
    try:
        for thread in threads:
            thread.start()
        time.sleep(0.3)  # the slow clients are mid-body now
        latencies = []
        for _ in range(5):
            started = time.perf_counter()
            serves_normally(emu)
            latencies.append(time.perf_counter() - started)
        assert max(latencies) < 1.0, latencies
        print(f"slow clients: normal request latency max {max(latencies) * 1000:.0f} ms")
        assert any(t.is_alive() for t in threads), "the slow clients should still be sending"
    finally:
        for sock in idle:
            sock.close()
        for thread in threads:
            thread.join(timeout=15)
    assert len(replies) == SLOW_CLIENTS
    assert all(reply.startswith(b"HTTP/1.1 200 ") for reply in replies)
    assert sum(1 for r in emu.log if r.embedded) == SLOW_CLIENTS + 5


# ------------------------------------------------------------------ memory

ROUNDS = 200
MEMORY_BOUND_MB = 50


def test_memory_stays_bounded_under_abuse(emu: Emulator, http: httpx.Client) -> None:
    """200 abusive requests (a fifth of them 5 MB bodies, about 200 MB sent in all):
    the process's resident memory grows by less than 50 MB."""
    process = psutil.Process()
    for abuse in ABUSES:  # warm every path (imports, caches, buffers) first
        abuse.send(emu, http)
    gc.collect()
    before = process.memory_info().rss
    statuses: set[int] = set()
    for k in range(ROUNDS):
        statuses.add(ABUSES[k % len(ABUSES)].send(emu, http).status_code)
    gc.collect()
    grown_mb = (process.memory_info().rss - before) / 2**20
    assert grown_mb < MEMORY_BOUND_MB, f"RSS grew {grown_mb:.1f} MB over {ROUNDS} abusive requests"
    assert statuses == {200, 400, 401}
    serves_normally(emu)
    print(f"abuse memory: {ROUNDS} requests, RSS grew {grown_mb:.1f} MB")
