"""Sending requests: httpx I/O, whole-request deadlines and the retry loop.

The retry loop is written once, sans-I/O (:meth:`Transport._attempts`): a generator
that asks its driver to *sleep* or to *send*, and is told what the send produced. The
blocking :class:`SyncTransport` and the asyncio :class:`AsyncTransport` only perform
those two actions, so every decision (pacing, what to retry, how long to wait, how to
map httpx errors) is shared.

``timeout`` bounds each whole request -- connect, send, and receiving the full body --
not each network read: a server that drips its reply cannot stretch a call. A whole
call with retries takes at most ``(max_retries + 1) * timeout`` plus the backoff sleeps
(each at most ``RetryPolicy.max_delay``, or a ``Retry-After`` capped at
``RetryPolicy.max_retry_after``) plus any wait for the quota budget.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from asyncio import CancelledError, ensure_future, gather, shield
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Generic, Protocol, TypeVar

import anyio
import httpx

from ._version import __version__ as _version
from .config import DEFAULTS, redact_url
from .deadline import DeadlineHTTPTransport, deadline
from .errors import (
    APIConnectionError,
    APITimeoutError,
    ClientClosedError,
    ConfigurationError,
    MMEmbedError,
)
from .retry import RetryPolicy, parse_retry_after

__all__ = ["AsyncTransport", "Pacer", "SyncTransport", "TransportSettings", "TransportStats"]

logger = logging.getLogger("mm_embed")

T = TypeVar("T")
#: Parses one reply: HTTP status, body bytes, Retry-After seconds -> a result, or raises.
Parser = Callable[[int, bytes, "float | None"], T]

#: Reply headers that carry a request id, read when the body has none.
REQUEST_ID_HEADERS = ("x-request-id", "x-tt-logid")
USER_AGENT = f"mm-embed/{_version}"
#: Longest single sleep before asking the pacer again: a budget refund that arrives
#: meanwhile is noticed within this long.
RECHECK_S = 0.05
_LIMITS = httpx.Limits(max_connections=128, max_keepalive_connections=64)
# The drivers' two ways to wait (module attributes, so tests can record the waits).
_sleep = time.sleep
_asleep = asyncio.sleep


class Pacer(Protocol):
    """Paces the attempts of one wire request against a quota (see :mod:`mm_embed.budgets`).

    ``before`` returns the seconds still to wait and is asked again after each short
    sleep until it returns 0 (a wait can shrink while the caller sleeps); ``after``
    learns how the attempt ended, to settle what ``before`` reserved. ``blocking``: the
    calls do I/O (a file or a Redis server), so an event loop runs them in a thread.
    """

    @property
    def blocking(self) -> bool: ...

    def before(self) -> float: ...

    def after(self, result: object | None, error: MMEmbedError | None) -> None: ...


@dataclass(frozen=True)
class TransportSettings:
    """Where and how to send: endpoint, auth, retry policy, headers, deadline."""

    base_url: str
    auth: httpx.Auth
    retry: RetryPolicy
    headers: dict[str, str]
    #: Seconds for each whole request; ``None``: unbounded.
    timeout: float | None = DEFAULTS.timeout

    def __post_init__(self) -> None:
        timeout = self.timeout
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0
        ):
            raise ConfigurationError(
                f"timeout must be seconds > 0 for each whole request (or None), got {timeout!r}; "
                "for per-phase httpx timeouts pass http_client=httpx.Client(timeout=...)"
            )

    def httpx_timeout(self) -> httpx.Timeout:
        """Per-operation timeouts for an owned client (the deadline bounds them all)."""
        if self.timeout is None:
            return httpx.Timeout(None, connect=DEFAULTS.connect_timeout)
        return httpx.Timeout(self.timeout, connect=min(DEFAULTS.connect_timeout, self.timeout))


@dataclass
class TransportStats:
    """Counters over the life of a transport (thread-safe)."""

    requests: int = 0
    retries: int = 0
    failures: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, *, requests: int = 0, retries: int = 0, failures: int = 0) -> None:
        with self._lock:
            self.requests += requests
            self.retries += retries
            self.failures += failures


@dataclass(frozen=True)
class _Sleep:
    seconds: float


class _Send:
    """Ask the driver to send the request once and report the outcome."""


@dataclass(frozen=True)
class _Pace:
    """Ask the driver to run one budget step (``run()``) and report its result."""

    run: Callable[[], object]
    blocking: bool


_SEND = _Send()
#: What a driver reports after sending: the response (body read) or the httpx error.
Outcome = httpx.Response | httpx.HTTPError
Step = _Sleep | _Send | _Pace
Attempts = Generator[Step, object, T]


class _Run(Generic[T]):
    """One run of the retry loop, stepped by a driver: :meth:`step` is the next action
    (``None`` once :attr:`result` is set); :attr:`reply` is what the last one produced."""

    result: T

    def __init__(self, attempts: Attempts[T]) -> None:
        self._attempts = attempts
        self.reply: object = None

    def step(self) -> Step | None:
        try:
            return self._attempts.send(self.reply)
        except StopIteration as done:
            self.result = done.value
            return None


class Transport:
    """The I/O-free part of sending: URLs, headers, the retry loop, error mapping."""

    def __init__(self, settings: TransportSettings) -> None:
        self.settings = settings
        self.base_url = settings.base_url.rstrip("/")
        self.headers = {"User-Agent": USER_AGENT, **settings.headers}
        self.stats = TransportStats()
        self._closed = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={redact_url(self.base_url)!r})"

    def url(self, path: str) -> str:
        return self.base_url + path

    @property
    def auth(self) -> httpx.Auth:
        """The ``httpx.Auth`` that signs or authorises each attempt."""
        return self.settings.auth

    @auth.setter
    def auth(self, auth: httpx.Auth) -> None:
        self.settings = replace(self.settings, auth=auth)

    @property
    def retry(self) -> RetryPolicy:
        """The retry policy (replace it to tune backoff: ``transport.retry = RetryPolicy(...)``)."""
        return self.settings.retry

    @retry.setter
    def retry(self, policy: RetryPolicy) -> None:
        self.settings = replace(self.settings, retry=policy)

    def ensure_open(self) -> None:
        """Raise :class:`ClientClosedError` when the transport was closed."""
        if self._closed:
            raise ClientClosedError(
                "this client is closed; create a new one (or use it as a context manager "
                "and make calls inside the block)"
            )

    @staticmethod
    def map_exception(exc: httpx.HTTPError) -> MMEmbedError:
        if isinstance(exc, httpx.TimeoutException):
            return APITimeoutError(f"request timed out ({type(exc).__name__}: {exc})")
        return APIConnectionError(f"connection failed: {type(exc).__name__}: {exc}")

    @staticmethod
    def _with_request_id(error: MMEmbedError, response: httpx.Response) -> MMEmbedError:
        """Fill a reply error's missing request id from the reply's headers (FG-CLIP puts
        its id in ``data.id``, which an error body may lack; users quote the id)."""
        if hasattr(error, "request_id") and error.request_id is None:
            for name in REQUEST_ID_HEADERS:
                value = response.headers.get(name)
                if value:
                    error.request_id = value
                    break
        return error

    def _next_delay(self, attempt: int, error: MMEmbedError) -> float | None:
        """Seconds before the next attempt, or ``None`` to give up and raise."""
        self.stats.add(requests=1)
        retry = self.retry
        if attempt >= retry.max_retries or not retry.is_retryable(error):
            self.stats.add(failures=1)
            return None
        self.stats.add(retries=1)
        delay = retry.delay(attempt + 1, error)
        logger.info(
            "retrying after %s (retry %d of %d, in %.2fs)",
            type(error).__name__,
            attempt + 1,
            retry.max_retries,
            delay,
        )
        return delay

    def _run(self, path: str, parse: Parser[T], pacer: Pacer | None) -> _Run[T]:
        """A run of the retry loop for one request (the transport must be open)."""
        self.ensure_open()
        return _Run(self._attempts(path, parse, pacer))

    def _attempts(self, path: str, parse: Parser[T], pacer: Pacer | None) -> Attempts[T]:
        """The retry loop, sans-I/O: yields sleeps and sends, returns the parsed result."""
        attempt = 0
        blocking = pacer is not None and pacer.blocking
        while True:
            while pacer is not None:
                wait = yield _Pace(pacer.before, blocking)
                assert isinstance(wait, (int, float))
                if wait <= 0:
                    break
                yield _Sleep(min(wait, RECHECK_S))
            outcome = yield _SEND
            error: MMEmbedError
            if isinstance(outcome, httpx.HTTPError):
                error = self.map_exception(outcome)
            else:
                assert isinstance(outcome, httpx.Response)
                logger.debug(
                    "POST %s -> %d (%d bytes)", path, outcome.status_code, len(outcome.content)
                )
                try:
                    result = parse(
                        outcome.status_code, outcome.content, parse_retry_after(outcome.headers)
                    )
                except MMEmbedError as exc:
                    error = self._with_request_id(exc, outcome)
                else:
                    self.stats.add(requests=1)
                    if pacer is not None:
                        yield _Pace(partial(pacer.after, result, None), blocking)
                    return result
            if pacer is not None:
                yield _Pace(partial(pacer.after, None, error), blocking)
            delay = self._next_delay(attempt, error)
            if delay is None:
                raise error
            attempt += 1
            yield _Sleep(delay)


def _release_stream(response: httpx.Response) -> None:
    """Drop the link from a read response to its (closed) body stream.

    httpx links the two both ways, so every reply body (hundreds of KB for a batch of
    vectors) lives until a full garbage collection, which a long run of requests seldom
    triggers: memory grew by ~10 MB per 100,000 texts embedded, without bound in sight.
    """
    response.stream = httpx.ByteStream(b"")


class SyncTransport(Transport):
    """Blocking transport over an ``httpx.Client`` (owned, or injected and not closed by us).

    An owned client enforces the whole-request deadline at the socket; an injected one
    is checked between body chunks (a stalled read then ends at its own read timeout).
    """

    def __init__(
        self, settings: TransportSettings, http_client: httpx.Client | None = None
    ) -> None:
        super().__init__(settings)
        self._owns_client = http_client is None
        self.client = http_client or httpx.Client(
            timeout=settings.httpx_timeout(), transport=DeadlineHTTPTransport(limits=_LIMITS)
        )

    def _send(self, path: str, body: bytes) -> Outcome:
        try:
            with deadline(self.settings.timeout):
                if self._owns_client:
                    response = self.client.post(
                        self.url(path), content=body, headers=self.headers, auth=self.auth
                    )
                else:
                    response = self._send_injected(path, body)
        except httpx.HTTPError as exc:
            return exc
        _release_stream(response)
        return response

    def _send_injected(self, path: str, body: bytes) -> httpx.Response:
        """Send through an injected client, checking the deadline between body chunks."""
        timeout, started = self.settings.timeout, time.monotonic()
        with self.client.stream(
            "POST", self.url(path), content=body, headers=self.headers, auth=self.auth
        ) as response:
            chunks = []
            for chunk in response.iter_bytes():
                chunks.append(chunk)
                if timeout is not None and time.monotonic() - started > timeout:
                    raise httpx.ReadTimeout(
                        "the request's deadline has passed", request=response.request
                    )
        headers = [
            (name, value)
            for name, value in response.headers.multi_items()
            if name.lower() not in ("content-encoding", "content-length", "transfer-encoding")
        ]
        return httpx.Response(
            response.status_code,
            headers=headers,
            content=b"".join(chunks),
            request=response.request,
        )

    def post(self, path: str, body: bytes, parse: Parser[T], pacer: Pacer | None = None) -> T:
        """Send ``body`` to ``path`` with retries; return what ``parse`` made of the reply."""
        run = self._run(path, parse, pacer)
        while (step := run.step()) is not None:
            run.reply = self._perform(step, path, body)
        return run.result

    def _perform(self, step: Step, path: str, body: bytes) -> object:
        """Do what ``step`` asks; return what to report back to the retry loop."""
        if isinstance(step, _Sleep):
            _sleep(step.seconds)
            return None
        if isinstance(step, _Pace):
            return step.run()
        return self._send(path, body)

    def get(self, path: str) -> httpx.Response:
        """A plain GET (health checks), one attempt."""
        self.ensure_open()
        with deadline(self.settings.timeout):
            return self.client.get(self.url(path), headers=self.headers, auth=self.auth)

    def close(self) -> None:
        """Close the owned connection pool; later calls raise :class:`ClientClosedError`."""
        self._closed = True
        if self._owns_client:
            self.client.close()


A = TypeVar("A")


async def _cancel_safely(send: Callable[[], Awaitable[A]], timeout: float | None) -> A:  # noqa: ASYNC109
    """Await ``send()`` within ``timeout`` so that cancelling the caller never strands a
    pooled connection.

    httpcore shields its clean-up with anyio cancel scopes, which hold off anyio
    cancellation but not a plain ``task.cancel()``: one that lands while httpcore closes
    a response (it takes a lock there) skips the pool's bookkeeping, and the connection
    stays "active" until the client is closed (measured: 6 of 10 cancellations right
    after a small reply's headers; the family of encode/httpcore#1093). So the request
    runs in a child task inside an anyio cancel scope (which also carries the deadline);
    cancelling the caller cancels that scope, waits for the clean-up, then re-raises.
    """
    scope = anyio.CancelScope(deadline=anyio.current_time() + timeout if timeout else float("inf"))

    async def run() -> A | None:
        with scope:
            return await send()
        return None  # reached only when the scope was cancelled

    task = ensure_future(run())
    try:
        result = await shield(task)
    except CancelledError:
        scope.cancel()
        await gather(task, return_exceptions=True)
        raise
    if scope.cancelled_caught:
        raise httpx.ReadTimeout("the request's deadline has passed")
    assert result is not None
    return result


class AsyncTransport(Transport):
    """Asyncio transport over ``httpx.AsyncClient``: one owned client per event loop, so
    one transport serves any loop (an ``httpx.AsyncClient`` is bound to the loop it
    first ran on). An injected client is used as it is, on its own loop only.
    """

    def __init__(
        self, settings: TransportSettings, http_client: httpx.AsyncClient | None = None
    ) -> None:
        super().__init__(settings)
        self._injected = http_client
        self._injected_loop: asyncio.AbstractEventLoop | None = None
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    @property
    def client(self) -> httpx.AsyncClient:
        """The ``httpx.AsyncClient`` of the running event loop (built on first use)."""
        loop = asyncio.get_running_loop()
        if self._injected is not None:
            if self._injected_loop is None:
                self._injected_loop = loop
            elif self._injected_loop is not loop and not self._injected_loop.is_closed():
                raise ConfigurationError(
                    "the injected http_client is bound to the event loop it first ran on; "
                    "use this client from that loop, or let mm-embed own its HTTP clients "
                    "(one per event loop)"
                )
            self._injected_loop = loop
            return self._injected
        with self._lock:
            for old in [old for old in self._clients if old.is_closed()]:
                del self._clients[old]
            client = self._clients.get(loop)
            if client is None:
                client = self._clients[loop] = httpx.AsyncClient(
                    timeout=self.settings.httpx_timeout(), limits=_LIMITS
                )
            return client

    async def _send(self, path: str, body: bytes) -> Outcome:
        client = self.client

        async def send() -> httpx.Response:
            return await client.post(
                self.url(path), content=body, headers=self.headers, auth=self.auth
            )

        try:
            response = await _cancel_safely(send, self.settings.timeout)
        except httpx.HTTPError as exc:
            return exc
        _release_stream(response)
        return response

    async def post(self, path: str, body: bytes, parse: Parser[T], pacer: Pacer | None = None) -> T:
        """Async twin of :meth:`SyncTransport.post`."""
        run = self._run(path, parse, pacer)
        while (step := run.step()) is not None:
            run.reply = await self._perform(step, path, body)
        return run.result

    async def _perform(self, step: Step, path: str, body: bytes) -> object:
        """Async twin of :meth:`SyncTransport._perform`."""
        if isinstance(step, _Sleep):
            await _asleep(step.seconds)
            return None
        if isinstance(step, _Pace):
            # A file or Redis budget answers over I/O: not on the event loop.
            return await asyncio.to_thread(step.run) if step.blocking else step.run()
        return await self._send(path, body)

    async def get(self, path: str) -> httpx.Response:
        """A plain GET (health checks), one attempt."""
        self.ensure_open()
        client = self.client
        return await _cancel_safely(
            lambda: client.get(self.url(path), headers=self.headers, auth=self.auth),
            self.settings.timeout,
        )

    async def aclose(self) -> None:
        """Close the owned clients; later calls raise :class:`ClientClosedError`."""
        self._closed = True
        with self._lock:
            clients = list(self._clients.items())
            self._clients.clear()
        running = asyncio.get_running_loop()
        for loop, client in clients:
            if loop is running:
                await client.aclose()
            elif not loop.is_closed() and loop.is_running():
                # Another live loop's client is closed on that loop.
                asyncio.run_coroutine_threadsafe(client.aclose(), loop)
