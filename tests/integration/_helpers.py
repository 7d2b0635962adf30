"""Helpers of the integration tree (``tests/integration``): raw requests to the emulator,
small loopback servers and sockets, clients wired to an emulator, child processes, the
Ray tests' corpora and checks, the hybrid stores' checks, the framework tests' settings,
corpus and LlamaIndex hybrid indexes, the explorer process, and the benchmark scripts. Fixtures are in the conftest files.

The bulk tests share their command-line plumbing with ``benchmarks/bulk_resume.py``: it
lives in ``benchmarks/_bulk_harness.py`` and is imported from there (the benchmarks
never import the tests); this module puts ``benchmarks/`` on ``sys.path``, once.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import http.server
import inspect
import io
import os
import queue
import re
import select
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import numpy as np
import orjson
import pytest
from PIL import Image

from mm_embed import (
    AsyncFGClipClient,
    AsyncVikingClient,
    EmbeddingResult,
    FGClipClient,
    VikingClient,
)
from mm_embed.budgets import Budget, LocalBudget, Quota
from mm_embed.config import EnvVar
from mm_embed.emulator import Emulator, RequestRecord, sample_png
from mm_embed.emulator.encoders import COLOUR_NAMES, PALETTE
from mm_embed.hybrid import fuse
from mm_embed.retry import RetryPolicy
from mm_embed.samples import SampleQuery
from mm_embed.signing import format_x_date, sign
from mm_embed.transport import TransportStats
from tests.unit._helpers import FakeClock, noisy_png

if TYPE_CHECKING:
    import pyarrow as pa
    from llama_index.core import StorageContext, VectorStoreIndex
    from llama_index.vector_stores.qdrant import QdrantVectorStore

T = TypeVar("T")

#: The repository's root directory, its core package's folder and its benchmarks.
REPO = Path(__file__).resolve().parents[2]
SHARED = REPO / "shared"
BENCHMARKS = REPO / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.append(str(BENCHMARKS))  # after everything else: it shadows nothing

from _bulk_harness import (  # noqa: E402  (found through the path entry just added)
    cli_env,
    durable_batches,
    embed_command,
    emulator_settings,
    kill_and_resume,
    run_cli,
    viking_text_hash,
    write_corpus,
)
from _harness import RedisServer, text_token_weights  # noqa: E402

__all__ = [
    "FakeClock",
    "RedisServer",
    "cli_env",
    "durable_batches",
    "embed_command",
    "emulator_settings",
    "kill_and_resume",
    "noisy_png",
    "run_cli",
    "text_token_weights",
    "viking_text_hash",
    "write_corpus",
]

# --------------------------------------------------------------------------- environment

#: Provider credentials and endpoints (every variable mm-embed reads but the budget's).
PROVIDER_VARIABLES = tuple(f"{v}" for v in EnvVar if v is not EnvVar.MM_EMBED_BUDGET)


def offline_env() -> dict[str, str]:
    """This process's environment without provider credentials."""
    return {k: v for k, v in os.environ.items() if k not in PROVIDER_VARIABLES}


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment for a child Python that imports ``mm_embed`` from
    this checkout (``shared/`` first on its path), plus ``extra``."""
    path = str(SHARED) + os.pathsep + os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": path, **extra}


def python_output(code: str, **env: str) -> str:
    """What ``python -c code`` prints, run in a child process (``env`` added to its
    environment); a non-zero exit fails."""
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=child_env(**env),
        timeout=60,
        check=True,
    )
    return done.stdout


# --------------------------------------------------------------------------- images


def solid_png(
    colour: str | tuple[int, int, int] = "red",
    size: tuple[int, int] = (64, 48),
    fmt: str = "PNG",
) -> bytes:
    """An image of one colour (a name from :data:`COLOURS` or RGB), ``fmt``-encoded."""
    rgb = COLOURS[colour] if isinstance(colour, str) else colour
    buffer = io.BytesIO()
    Image.new("RGB", size, rgb).save(buffer, format=fmt)
    return buffer.getvalue()


#: Named colours of :func:`solid_png`, and the size of the framework tests' tiles. The
#: tiles are five of the emulator's own named colours, so its image encoder tells them apart.
TILE = (64, 64)
COLOURS = {
    name: (int(r), int(g), int(b))
    for name, (r, g, b) in zip(COLOUR_NAMES, PALETTE, strict=True)
    if name in ("red", "green", "blue", "yellow", "purple")
}


def data_uri(data: bytes, kind: str = "png") -> str:
    return f"data:image/{kind};base64," + base64.b64encode(data).decode()


def sample_data_uri(name: str) -> str:
    """One of the emulator's sample pictures as a PNG data URI."""
    return data_uri(sample_png(name))


def b64_media(data: bytes) -> str:
    return "base64://" + base64.b64encode(data).decode()


# --------------------------------------------------------------------------- raw requests

FG_PATH = "/models/interface"
VIKING_PATH = "/api/data/embedding/version/2"
TIMEOUT = httpx.Timeout(20.0)


def fg_headers(emu: Emulator, content_type: str = "application/json") -> dict[str, str]:
    return {"Authorization": f"Bearer {emu.api_key}", "Content-Type": content_type}


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


def fg_body(input_type: str, **fields: Any) -> dict[str, Any]:
    """An FG-CLIP request body of ``input_type`` asking for float vectors, plus ``fields``."""
    return {"model": "fg-clip", "input_type": input_type, "embedding_types": ["float"], **fields}


def text_body(texts: list[str], **extra: Any) -> dict[str, Any]:
    return fg_body("text", texts=texts, **extra)


def image_body(images: list[str], **extra: Any) -> dict[str, Any]:
    return fg_body("image", images=images, **extra)


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
    """Headers of a Viking request signed over ``raw`` (``x_date`` defaults to now)."""
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


def records(emu: Emulator, route: str, since: int = 0) -> list[RequestRecord]:
    """The emulator's log entries of ``route`` (``fgclip``/``viking``) after ``since``."""
    return [r for r in emu.log[since:] if r.route == route]


async def logged_while(
    emu: Emulator, route: str, call: Awaitable[T]
) -> tuple[T, list[RequestRecord]]:
    """Await ``call`` (a coroutine not yet started) and return its result with the log
    entries of ``route`` that ``emu`` wrote meanwhile (others' earlier entries left out)."""
    since = len(emu.log)
    result = await call
    return result, records(emu, route, since)


def embed_requests(emu: Emulator, route: str) -> list[RequestRecord]:
    """Embedding requests of ``route`` that returned vectors, oldest first."""
    return [r for r in records(emu, route) if r.embedded]


# --------------------------------------------------------------------------- sockets


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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


def raw_exchange(host: str, port: int, data: bytes, wait: float = 5.0) -> bytes:
    """Send raw bytes, read until the server closes (or ``wait`` passes)."""
    with socket.create_connection((host, port), timeout=wait) as sock:
        sock.sendall(data)
        return read_reply(sock, wait)


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


# --------------------------------------------------------------------------- the emulator's CLI


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
    proc = subprocess.Popen(
        [sys.executable, "-m", "mm_embed.emulator", "--port", "0", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(**(env_extra or {})),
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


# --------------------------------------------------------------------------- clients

#: Retries fast enough for thousands of faults in CI, but still exponential with jitter.
FAST_RETRY = RetryPolicy(max_retries=8, initial_delay=0.01, max_delay=0.05)


def fast(client: Any, policy: RetryPolicy = FAST_RETRY) -> Any:
    """Give ``client`` a fast retry schedule (the public ``transport.retry`` slot)."""
    client.transport.retry = policy
    return client


def fg_client(
    emu: Emulator, *, asynchronous: bool = False, api_key: str | None = None, **options: Any
) -> Any:
    """An FG-CLIP client (sync or async) for ``emu`` with fast retries."""
    cls = AsyncFGClipClient if asynchronous else FGClipClient
    return fast(cls(api_key or emu.api_key, base_url=options.pop("base_url", emu.url), **options))


def viking_client(
    emu: Emulator,
    *,
    asynchronous: bool = False,
    access_key: str | None = None,
    secret_key: str | None = None,
    **options: Any,
) -> Any:
    """A Viking client (sync or async, AK/SK signing) for ``emu`` with fast retries."""
    cls = AsyncVikingClient if asynchronous else VikingClient
    # The emulator enforces no budget by default; client-side pacing would only slow us.
    options.setdefault("tokens_per_minute", None)
    options.setdefault("images_per_second", None)
    options.setdefault("base_url", emu.url)
    return fast(cls(access_key or emu.access_key, secret_key or emu.secret_key, **options))


class Caller:
    """One client behind an awaitable ``embed(texts)``, whatever its flavour: the
    blocking client runs on a worker thread so the test's event loop stays free."""

    def __init__(self, emu: Emulator, route: str, asynchronous: bool, **options: Any) -> None:
        self.route, self.asynchronous = route, asynchronous
        if route == "fgclip":
            self.client = fg_client(emu, asynchronous=asynchronous, **options)
        else:
            self.client = viking_client(emu, asynchronous=asynchronous, **options)

    async def embed(self, texts: Sequence[str]) -> EmbeddingResult:
        if self.route == "fgclip":
            method, kwargs = self.client.embed_texts, {}
        else:
            method, kwargs = self.client.embed, {"model": "bge-m3"}
        if self.asynchronous:
            return await method(texts, **kwargs)  # type: ignore[no-any-return]
        return await asyncio.to_thread(method, texts, **kwargs)

    @property
    def stats(self) -> TransportStats:
        return self.client.transport.stats  # type: ignore[no-any-return]

    async def close(self) -> None:
        if self.asynchronous:
            await self.client.aclose()
        else:
            self.client.close()


class Twin:
    """A client of either flavour whose methods are all awaited."""

    def __init__(self, client: Any) -> None:
        self.client = client

    @property
    def transport(self) -> Any:
        return self.client.transport

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)
        if not callable(method):
            return method

        async def call(*args: Any, **kwargs: Any) -> Any:
            out = method(*args, **kwargs)
            return await out if inspect.isawaitable(out) else out

        return call

    async def shut(self) -> None:
        closing = getattr(self.client, "aclose", None) or self.client.close
        out = closing()
        if inspect.isawaitable(out):
            await out


class Clients:
    """Builds clients of one flavour pointed at an emulator; closes them after the test."""

    def __init__(self, flavour: str) -> None:
        self.flavour = flavour
        self.made: list[Twin] = []

    @property
    def is_async(self) -> bool:
        return self.flavour == "async"

    def fgclip(self, emu: Emulator, **options: Any) -> Twin:
        options.setdefault("api_key", emu.api_key)
        cls = AsyncFGClipClient if self.is_async else FGClipClient
        options.setdefault("base_url", emu.url)
        return self._keep(cls(**options))

    def viking(self, emu: Emulator, *, mode: str = "hmac", **options: Any) -> Twin:
        cls = AsyncVikingClient if self.is_async else VikingClient
        if mode == "token":
            options.setdefault("token", emu.token)
        else:
            options.setdefault("access_key", emu.access_key)
            options.setdefault("secret_key", emu.secret_key)
        options.setdefault("base_url", emu.url)
        # One budget per client: tests share the emulator's account, not its quota.
        options.setdefault("budget", LocalBudget())
        return self._keep(cls(region=emu.region, **options))

    def _keep(self, client: Any) -> Twin:
        twin = Twin(client)
        self.made.append(twin)
        return twin

    async def close(self) -> None:
        for twin in self.made:
            await twin.shut()


def same_result(got: EmbeddingResult, want: EmbeddingResult, what: str) -> None:
    """Bitwise-equal dense matrices, equal sparse maps, indices, in the same order."""
    assert sorted(got.dense) == sorted(want.dense), what
    for name, matrix in want.dense.items():
        assert got.dense[name].dtype == matrix.dtype, what
        assert got.dense[name].shape == matrix.shape, what
        assert got.dense[name].tobytes() == matrix.tobytes(), f"{what}: {name} vectors differ"
    assert np.array_equal(got.input_indices, want.input_indices), what
    if want.box_indices is None:
        assert got.box_indices is None, what
    else:
        assert got.box_indices is not None and np.array_equal(got.box_indices, want.box_indices)
    if want.sparse is None:
        assert got.sparse is None, what
    else:
        assert got.sparse is not None and len(got.sparse) == len(want.sparse), what
        for k, (a, b) in enumerate(zip(got.sparse, want.sparse, strict=True)):
            assert dict(a.weights) == dict(b.weights), f"{what}: sparse row {k} differs"


def wait_for(condition: Callable[[], bool], timeout: float = 10.0, step: float = 0.02) -> bool:
    """Poll ``condition`` until true or ``timeout`` seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


def wait_until(condition: Callable[[], Any], limit_s: float, what: str) -> None:
    """Poll ``condition`` until true; fail naming ``what`` after ``limit_s`` seconds."""
    assert wait_for(condition, limit_s, 0.05), f"timed out waiting for {what}"


# --------------------------------------------------------------------------- budgets

BACKENDS = ("local", "file", "redis")
BudgetFactory = Callable[[str, FakeClock], Budget]


# --------------------------------------------------------------------------- Ray

#: The Viking model of the Ray tests, and the provider's "quota exceeded" code.
RAY_MODEL = "bge-m3"
QUOTA_CODE = 1000029


@dataclass(frozen=True)
class RayCluster:
    """The session's local Ray instance."""

    address: str
    namespace: str

    def budget_name(self) -> str:
        return f"budget-{uuid.uuid4().hex[:8]}"


def uniform_texts(n: int) -> list[str]:
    """``n`` distinct texts of one length and two emulator tokens each.

    One length gives every item the same token estimate, so each item's share of its
    request's billed tokens (``tokens``) is exactly its own count however items are
    grouped into requests: outputs of engines that group differently compare equal."""
    return [f"w{i:05d} river" for i in range(n)]


def text_records(texts: list[str]) -> list[dict[str, str]]:
    return [{"id": f"doc-{i:05d}", "text": t} for i, t in enumerate(texts)]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


@dataclass
class Reference:
    """Vectors from one ``VikingClient`` in this process, in input order."""

    dense: np.ndarray
    sparse_indices: list[np.ndarray]
    sparse_values: list[np.ndarray]


def reference(texts: list[str]) -> Reference:
    with (
        Emulator() as emu,
        VikingClient(
            emu.access_key, emu.secret_key, base_url=emu.url, tokens_per_minute=None
        ) as client,
    ):
        result = client.embed(texts, model=RAY_MODEL, return_sparse=True)
    assert result.sparse is not None
    return Reference(
        np.asarray(result.embeddings, np.float32),
        [np.asarray(v.indices, np.int32) for v in result.sparse],
        [np.asarray(v.values, np.float32) for v in result.sparse],
    )


def assert_matches(table: pa.Table, ref: Reference, ids: list[str]) -> None:
    """``table`` (any row order) holds exactly ``ids`` once each, with the reference's
    vectors bit for bit."""
    table = table.sort_by("id")
    assert table.column("id").to_pylist() == sorted(ids)
    order = np.argsort(np.asarray(ids))
    dense = table.column("dense").combine_chunks()
    got = dense.values.to_numpy().reshape(len(table), -1)
    assert got.dtype == np.float32
    assert np.array_equal(got.view(np.uint32), ref.dense[order].view(np.uint32))
    for name, expected in (
        ("sparse_indices", ref.sparse_indices),
        ("sparse_values", ref.sparse_values),
    ):
        column = table.column(name).combine_chunks()
        offsets = column.offsets.to_numpy()
        values = column.values.to_numpy()
        for row, k in enumerate(order):
            assert np.array_equal(values[offsets[row] : offsets[row + 1]], expected[k]), name


def spend_the_first_minute(emu: Emulator, budget: Budget, client: VikingClient) -> Quota:
    """Empty both buckets (the emulator's and the budget's): what follows is paced."""
    quota = client.tokens_quota(RAY_MODEL)
    assert quota is not None
    with VikingClient(
        emu.access_key, emu.secret_key, base_url=emu.url, tokens_per_minute=None
    ) as spender:
        spender.embed([" ".join(f"w{i}" for i in range(int(quota.capacity)))], model=RAY_MODEL)
    budget.adjust(client.account, quota, quota.capacity)
    return quota


@contextlib.contextmanager
def budget_held_empty(
    budget: Budget, account: str, quota: Quota, limit_s: float = 120.0
) -> Iterator[None]:
    """Keep ``budget`` empty until its first ticket is taken: the minutes Ray spends
    starting actors do not pile up a burst in the budget (the emulator's bucket, which
    is not held, only ever holds more)."""
    stop = threading.Event()

    def hold() -> None:
        deadline = time.monotonic() + limit_s
        while not stop.wait(0.05) and time.monotonic() < deadline:
            state = budget.state(account, quota)
            if state.reserved > 0:
                return
            if state.balance > 0:
                budget.adjust(account, quota, state.balance)

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)


@dataclass
class Pace:
    rate: float
    seconds: float
    refusals_after_warmup: int
    refusals: int


def pace(log: list[Any], weights: dict[str, int], started: float, warmup: float) -> Pace:
    """Billed tokens per second over the replies sent ``warmup`` seconds after the first
    reply of the run, and the quota refusals after that point."""
    embeds = sorted(
        (r for r in log if r.route == "viking" and r.time >= started and r.item_hashes),
        key=lambda r: r.time,
    )
    answered = [r for r in embeds if r.embedded]
    boundary = answered[0].time + warmup
    window = [r for r in answered if r.time >= boundary]
    seconds = window[-1].time - window[0].time if len(window) > 1 else 0.0
    tokens = sum(weights[h] for r in window[1:] for h in r.item_hashes)
    refused = [r for r in embeds if r.code == QUOTA_CODE]
    return Pace(
        rate=tokens / seconds if seconds else 0.0,
        seconds=seconds,
        refusals_after_warmup=sum(1 for r in refused if r.time >= boundary),
        refusals=len(refused),
    )


def alive_actors(class_part: str) -> list[dict[str, Any]]:
    """The live actors whose class name contains ``class_part`` (Ray's GCS table: the
    state API needs the dashboard, which the tests do not start)."""
    import ray

    table = ray._private.state.actors()
    return [
        a for a in table.values() if class_part in a["ActorClassName"] and a["State"] == "ALIVE"
    ]


def actor_handle(actor_id: str) -> Any:
    """A handle to an actor of someone else's (a Ray Data pool's), by id."""
    import ray
    from ray._raylet import ActorID

    worker = ray._private.worker.global_worker
    return worker.core_worker.get_actor_handle(ActorID.from_hex(actor_id))


# --------------------------------------------------------------------------- hybrid stores


def assert_server_rrf_equals_fuse(store: Any, queries: Sequence[SampleQuery], rel: float) -> None:
    """For each query, the store's own RRF over its dense and sparse candidates (top 10)
    gives the scores ``fuse`` (k=60) gives over the same two rankings (top 40 each), to
    ``rel``. Equal scores are common and each database orders them its own way, so the
    reference keeps the database's order (score = -position)."""
    for query in queries:
        server = store.search(query.text, top_k=10)
        lists = [store.search(query.text, top_k=40, mode=m) for m in ("dense", "sparse")]
        ref = dict(fuse([[(h.id, -i) for i, h in enumerate(hits)] for hits in lists], k=60))
        assert {h.id: h.score for h in server} == pytest.approx(
            {h.id: ref[h.id] for h in server}, rel=rel
        ), query.id
        top = sorted(ref.values(), reverse=True)[:10]
        assert sorted((h.score for h in server), reverse=True) == pytest.approx(top, rel=rel)


# --------------------------------------------------------------------------- frameworks


def fg_kwargs(emu: Emulator) -> dict[str, Any]:
    return {"api_key": emu.api_key, "base_url": emu.url}


def viking_kwargs(emu: Emulator) -> dict[str, Any]:
    return {"access_key": emu.access_key, "secret_key": emu.secret_key, "base_url": emu.url}


#: A small corpus whose texts share few words, so retrieval order is predictable with
#: the emulator's n-gram (dense) and weighted-token (sparse) stand-in encoders.
FACTS = {
    "banana": "Bananas are long yellow fruit that grow in tropical bunches.",
    "volcano": "Volcanoes erupt molten lava and ash from deep underground chambers.",
    "penguin": "Penguins are flightless seabirds that swim in icy southern oceans.",
    "violin": "The violin is a bowed string instrument with four tuned strings.",
    "glacier": "Glaciers are slow rivers of compacted snow carving mountain valleys.",
    "bakery": "A bakery sells fresh bread, croissants and pastries every morning.",
    "comet": "Comets are icy bodies that grow glowing tails near the sun.",
    "chess": "Chess is a strategy board game played with kings, queens and pawns.",
    "coffee": "Coffee beans are roasted seeds brewed into a dark bitter drink.",
    "tulip": "Tulips are spring flowers with cup shaped petals in bright colours.",
}

#: (query, key of the fact of :data:`FACTS` that must rank first)
QUERIES = [
    ("yellow bananas in tropical bunches", "banana"),
    ("which instrument has four strings and a bow", "violin"),
    ("molten lava erupts from volcanoes", "volcano"),
]


def synthetic(n: int) -> list[str]:
    """``n`` distinct texts, each with its own rare words."""
    return [f"Entry {i} records specimen code{i}x and label tag{i * 7}y." for i in range(n)]


#: A LlamaIndex store's sparse functions, ``(doc_fn, query_fn)``: as ``viking_hybrid_fns``
#: or ``qdrant_sparse_fns`` give them.
SparseFns = tuple[Callable[..., Any], Callable[..., Any]]


def qdrant_hybrid_index(
    embed_model: Any, sparse_fns: SparseFns, texts: list[str], ids: list[str] | None = None
) -> VectorStoreIndex:
    """A LlamaIndex index over its own Qdrant store in hybrid mode (a fresh in-memory
    Qdrant, collection ``"hybrid"``), built from one document per text (``ids`` their ids,
    if given): ``embed_model`` embeds the dense side, ``sparse_fns`` the sparse one."""
    from llama_index.core import Document, VectorStoreIndex
    from qdrant_client import QdrantClient

    store = _qdrant_hybrid_store(sparse_fns, client=QdrantClient(":memory:"))
    named = ids if ids is not None else [None] * len(texts)
    documents = [
        Document(text=t) if i is None else Document(text=t, id_=i)
        for t, i in zip(texts, named, strict=True)
    ]
    return VectorStoreIndex.from_documents(
        documents, storage_context=_storage(store), embed_model=embed_model
    )


async def qdrant_hybrid_index_async(
    embed_model: Any, sparse_fns: SparseFns, texts: list[str]
) -> VectorStoreIndex:
    """The async twin of :func:`qdrant_hybrid_index`: Qdrant through its async client, an
    empty index filled by ``ainsert_nodes``."""
    from llama_index.core import VectorStoreIndex
    from llama_index.core.schema import TextNode
    from qdrant_client import AsyncQdrantClient

    store = _qdrant_hybrid_store(sparse_fns, aclient=AsyncQdrantClient(":memory:"))
    index = VectorStoreIndex(nodes=[], storage_context=_storage(store), embed_model=embed_model)
    await index.ainsert_nodes([TextNode(text=t) for t in texts])
    return index


def _qdrant_hybrid_store(sparse_fns: SparseFns, **connection: Any) -> QdrantVectorStore:
    from llama_index.vector_stores.qdrant import QdrantVectorStore

    doc_fn, query_fn = sparse_fns
    return QdrantVectorStore(
        "hybrid", **connection, enable_hybrid=True, sparse_doc_fn=doc_fn, sparse_query_fn=query_fn
    )


def _storage(store: QdrantVectorStore) -> StorageContext:
    from llama_index.core import StorageContext

    return StorageContext.from_defaults(vector_store=store)


# --------------------------------------------------------------------------- the explorer

START_TIMEOUT_S = 60.0
LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:\d+)$")


@contextlib.contextmanager
def explorer_process(store: Path, *extra: str) -> Iterator[tuple[str, list[str]]]:
    """Run ``mm-embed explore --store STORE --port 0`` and yield its URL and the lines it
    printed on start; stopped with Ctrl-C (SIGINT) on exit, which must end it with
    status 0."""
    process = subprocess.Popen(
        [sys.executable, "-m", "mm_embed", "explore", "--store", str(store), "--port", "0", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=offline_env(),
    )
    try:
        first = _first_line(process)
        match = LISTENING.match(first)
        assert match, f"first line {first!r}; stderr: {_rest(process)}"
        yield match.group(1), [first]
    except BaseException:
        process.kill()
        process.wait(timeout=30)
        raise
    process.send_signal(signal.SIGINT)  # Ctrl-C: a graceful stop, exit status 0
    try:
        status = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert status == 0, _rest(process)


def _first_line(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and process.poll() is None:
            if selector.select(timeout=0.5):
                return process.stdout.readline().rstrip("\n")
    return ""


def _rest(process: subprocess.Popen[str]) -> str:
    if process.poll() is None:
        return "(still running)"
    assert process.stderr is not None
    return process.stderr.read()[-2000:]


# --------------------------------------------------------------------------- benchmarks

#: The closing line of every benchmark script (kept apart from ``_harness.RATIO_PATTERN``
#: on purpose: a test compares the two).
RATIO = re.compile(r"^RATIO [a-z0-9_]+ = [0-9]+\.[0-9]+ \(target (>=|<=) [0-9.]+\) (MET|MISSED)$")


def run_benchmark(script: str, *args: str, workdir: Path, timeout: float) -> list[str]:
    """Run ``benchmarks/SCRIPT ARGS`` in ``workdir`` (also its ``HOME``: nothing a
    library caches lands in the real one) to a zero exit; its printed lines, the first
    naming the machine and the last a ``RATIO`` line."""
    env = {**os.environ, "HOME": str(workdir), "OPENBLAS_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=workdir,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    assert lines and lines[0].startswith("machine: "), done.stdout + done.stderr[-2000:]
    assert RATIO.match(lines[-1]), lines[-1]
    return lines
