"""Small request helpers for the emulator tests (plain httpx + the project's signer)."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import http.server
import io
import os
import queue
import re
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
from PIL import Image

from mm_embed.emulator import Emulator
from mm_embed.signing import format_x_date, sign

FG_PATH = "/models/interface"
VIKING_PATH = "/api/data/embedding/version/2"
TIMEOUT = httpx.Timeout(20.0)


def fg_post(
    emu: Emulator, body: Any, *, key: str | None = None, headers: dict[str, str] | None = None
) -> httpx.Response:
    sent = {"accept": "application/json"}
    if key != "":
        sent["Authorization"] = f"Bearer {emu.api_key if key is None else key}"
    sent.update(headers or {})
    return httpx.post(emu.url + FG_PATH, json=body, headers=sent, timeout=TIMEOUT)


def fg_ok(emu: Emulator, body: dict[str, Any]) -> dict[str, Any]:
    r = fg_post(emu, body)
    payload = r.json()
    assert r.status_code == 200, r.text
    assert payload["context"]["code"] == 0, payload["context"]
    return payload["data"]  # type: ignore[no-any-return]


def fg_error(emu: Emulator, body: Any, *, status: int = 200, code: int = 400) -> str:
    r = fg_post(emu, body)
    payload = r.json()
    assert r.status_code == status, r.text
    assert payload["data"] is None
    assert payload["context"]["code"] == code, payload
    assert isinstance(payload["context"]["timestamp"], int)
    return payload["context"]["message"]  # type: ignore[no-any-return]


def text_body(texts: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "model": "fg-clip",
        "input_type": "text",
        "embedding_types": ["float"],
        "texts": texts,
        **extra,
    }


def image_body(images: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "model": "fg-clip",
        "input_type": "image",
        "embedding_types": ["float"],
        "images": images,
        **extra,
    }


def png(
    colour: tuple[int, int, int] = (220, 30, 30), size: tuple[int, int] = (64, 48), fmt: str = "PNG"
) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format=fmt)
    return buffer.getvalue()


def data_uri(data: bytes, kind: str = "png") -> str:
    return f"data:image/{kind};base64," + base64.b64encode(data).decode()


def b64_media(data: bytes) -> str:
    return "base64://" + base64.b64encode(data).decode()


def signed_headers(
    emu: Emulator,
    raw: bytes,
    *,
    access_key: str | None = None,
    secret_key: str | None = None,
    x_date: str | None = None,
    query: dict[str, str] | None = None,
    session_token: str | None = None,
    method: str = "POST",
    path: str = VIKING_PATH,
) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "Host": emu.viking_host}
    parts = sign(
        access_key=access_key or emu.access_key,
        secret_key=secret_key or emu.secret_key,
        region=emu.region,
        service="air",
        method=method,
        path=path,
        headers=headers,
        body=raw,
        x_date=x_date or format_x_date(dt.datetime.now(dt.UTC)),
        query=query,
        session_token=session_token,
    )
    return {**headers, **parts.headers_added}


def viking_post(
    emu: Emulator,
    body: Any = None,
    *,
    raw: bytes | None = None,
    send_raw: bytes | None = None,
    token: str | None = None,
    query: dict[str, str] | None = None,
    **sign_args: Any,
) -> httpx.Response:
    """Sign ``raw`` (default: ``body`` as JSON) and send ``send_raw`` (default: the same)."""
    data = raw if raw is not None else orjson.dumps(body)
    if token is not None:
        headers = {"Content-Type": "application/json", "Authorization": f"token={token}"}
    else:
        headers = signed_headers(emu, data, query=query, **sign_args)
    url = emu.url + VIKING_PATH
    return httpx.post(
        url,
        content=send_raw if send_raw is not None else data,
        headers=headers,
        params=query,
        timeout=TIMEOUT,
    )


def viking_ok(emu: Emulator, body: Any) -> dict[str, Any]:
    r = viking_post(emu, body)
    payload = r.json()
    assert r.status_code == 200, r.text
    assert payload["code"] == 0 and payload["message"] == "success"
    assert payload["request_id"]
    return payload["data"]  # type: ignore[no-any-return]


def viking_error(emu: Emulator, body: Any, *, code: int, status: int, **kwargs: Any) -> str:
    r = viking_post(emu, body, **kwargs)
    payload = r.json()
    assert r.status_code == status, r.text
    assert payload["code"] == code, payload
    assert payload["request_id"]
    return payload["message"]  # type: ignore[no-any-return]


def vbody(model: str, data: list[dict[str, Any]], **params: Any) -> dict[str, Any]:
    return {"model": {"model_name": model, "params": params}, "data": data}


def texts(*values: str) -> list[dict[str, Any]]:
    return [{"data_type": "text", "text": v} for v in values]


class ImageHost:
    """A tiny HTTP server on loopback serving fixed replies: ``routes[path] = (status,
    body)``; any other path is a 404. ``with ImageHost(routes) as host: host.port``."""

    def __init__(self, routes: dict[str, tuple[int, bytes]]) -> None:
        self.routes = routes
        self.hits: list[str] = []
        host = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                host.hits.append(self.path)
                status, body = host.routes.get(self.path, (404, b"not found"))
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def __enter__(self) -> ImageHost:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)


def silent_listener() -> socket.socket:
    """A loopback socket that completes TCP handshakes but never answers (close it after)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    return sock


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def send_until_reply(
    port: int,
    head: bytes,
    body_size: int,
    *,
    chunk: int = 256 * 1024,
    chunked: bool = False,
    wait: float = 10.0,
) -> tuple[bytes, int]:
    """Send ``head`` then up to ``body_size`` body bytes in chunks (framed as HTTP chunks
    when ``chunked``), stopping as soon as the server answers (or drops the connection).
    Returns (reply, body bytes sent)."""
    sent = 0
    block = b"x" * chunk
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        sock.sendall(head)
        try:
            while sent < body_size:
                readable, _, _ = select.select([sock], [], [], 0)
                if readable:
                    break
                piece = block[: min(chunk, body_size - sent)]
                sock.sendall(b"%x\r\n%b\r\n" % (len(piece), piece) if chunked else piece)
                sent += len(piece)
        except OSError:  # the server closed the connection while we were sending
            pass
        return read_reply(sock, wait), sent


def read_reply(sock: socket.socket, wait: float = 10.0) -> bytes:
    """Everything the server sends until it closes (or ``wait`` passes)."""
    received = b""
    deadline = time.monotonic() + wait
    sock.settimeout(wait)
    while time.monotonic() < deadline:
        try:
            data = sock.recv(65536)
        except (TimeoutError, ConnectionResetError):
            break
        if not data:
            break
        received += data
    return received


def http_head(path: str, headers: dict[str, str], length: int | None) -> bytes:
    """A request head (``length=None``: chunked)."""
    lines = [f"POST {path} HTTP/1.1"]
    if not any(k.lower() == "host" for k in headers):
        lines.append("Host: 127.0.0.1")
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines.append("Transfer-Encoding: chunked" if length is None else f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def reply_json(reply: bytes) -> tuple[int, Any]:
    """(HTTP status, JSON body) of a raw reply with a Content-Length body."""
    head, _, body = reply.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, orjson.loads(body)


SHARED = str(Path(__file__).resolve().parents[2] / "shared")


@dataclass
class Served:
    """``python -m mm_embed.emulator`` running in a child process."""

    url: str
    port: int
    proc: subprocess.Popen[str]
    out: queue.Queue[str]
    err: queue.Queue[str]

    def stderr_so_far(self) -> str:
        text = ""
        while not self.err.empty():
            text += self.err.get_nowait()
        return text


def _pump(stream: Any, lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line)


@contextlib.contextmanager
def serve_process(*argv: str, env_extra: dict[str, str] | None = None) -> Iterator[Served]:
    """Start the emulator CLI on a free loopback port; stop it afterwards."""
    env = {**os.environ, "PYTHONPATH": SHARED + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.update(env_extra or {})
    proc = subprocess.Popen(
        [sys.executable, "-m", "mm_embed.emulator", "--port", "0", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    out: queue.Queue[str] = queue.Queue()
    err: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_pump, args=(proc.stdout, out), daemon=True).start()
    threading.Thread(target=_pump, args=(proc.stderr, err), daemon=True).start()
    try:
        first = out.get(timeout=30)
        match = re.fullmatch(r"listening on (http://127\.0\.0\.1:(\d+))\n", first)
        assert match, first
        yield Served(match.group(1), int(match.group(2)), proc, out, err)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
