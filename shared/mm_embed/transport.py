"""Sending requests: httpx I/O, timeouts and the retry loop (sync and async).

The two transports share every decision (what to retry, how long to wait, how to map
httpx errors) through :class:`_TransportCore`; only the sending and sleeping differ.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from asyncio import CancelledError, ensure_future, gather, shield
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import anyio
import httpx

from .errors import APIConnectionError, APITimeoutError, MMEmbedError
from .retry import RetryPolicy, parse_retry_after

__all__ = ["AsyncTransport", "AttemptHooks", "SyncTransport", "TransportStats"]

logger = logging.getLogger("mm_embed")

T = TypeVar("T")
#: Parses one reply: HTTP status, body bytes, Retry-After seconds -> a result, or raises.
Parser = Callable[[int, bytes, "float | None"], T]

#: Reply headers that carry a request id, read when the body has none.
REQUEST_ID_HEADERS = ("x-request-id", "x-tt-logid")
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
USER_AGENT = "mm-embed/0.1.0"


#: Longest single sleep before asking ``before`` again: a budget refund that arrives
#: meanwhile is noticed within this long.
RECHECK_S = 0.05


@dataclass
class AttemptHooks(Generic[T]):
    """Called around every attempt: ``before`` returns seconds to wait (rate limits) and
    is asked again after each sleep until it returns 0, so a wait can shrink (a refund
    arrived) while the caller sleeps; it must not take budget twice for one attempt."""

    before: Callable[[], float] | None = None
    after: Callable[[T | None, MMEmbedError | None], None] | None = None


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


async def _cancel_safely(send: Callable[[], Awaitable[httpx.Response]]) -> httpx.Response:
    """Await ``send()`` so that cancelling the caller never strands a pooled connection.

    httpcore shields its clean-up with anyio cancel scopes, which hold off anyio
    cancellation but not a plain ``task.cancel()``: one that lands while httpcore closes
    a response (it takes a lock there) skips the pool's bookkeeping, and the connection
    stays "active", holding a pool slot and a socket until the client is closed
    (measured: 6 of 10 cancellations right after a small reply's headers; the family of
    encode/httpcore#1093). So the request runs in a child task inside an anyio cancel
    scope; cancelling the caller cancels that scope, waits for the shielded clean-up,
    then re-raises.
    """
    scope = anyio.CancelScope()

    async def run() -> httpx.Response | None:
        with scope:
            return await send()
        return None  # reached only when the scope was cancelled

    task = ensure_future(run())
    try:
        response = await shield(task)
    except CancelledError:
        scope.cancel()
        await gather(task, return_exceptions=True)
        raise
    assert response is not None
    return response


def _release_stream(response: httpx.Response) -> None:
    """Drop the link from a read response to its (closed) body stream.

    httpx links the two both ways, so every reply body (hundreds of KB for a batch of
    vectors) lives until a full garbage collection, which a long run of requests seldom
    triggers: memory grew by ~10 MB per 100,000 texts embedded, without bound in sight.
    """
    response.stream = httpx.ByteStream(b"")


class _TransportCore:
    def __init__(
        self,
        *,
        base_url: str,
        auth: httpx.Auth,
        retry: RetryPolicy,
        headers: dict[str, str],
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.retry = retry
        self.headers = {"User-Agent": USER_AGENT, **headers}
        self.stats = TransportStats()

    def url(self, path: str) -> str:
        return self.base_url + path

    @staticmethod
    def map_exception(exc: httpx.HTTPError) -> MMEmbedError:
        if isinstance(exc, httpx.TimeoutException):
            return APITimeoutError(f"request timed out ({type(exc).__name__})")
        return APIConnectionError(f"connection failed: {type(exc).__name__}: {exc}")

    @staticmethod
    def with_request_id(error: MMEmbedError, response: httpx.Response) -> MMEmbedError:
        """Fill a reply error's missing request id from the reply's headers.

        FG-CLIP puts its id in ``data.id``, which an error body may lack (``data: null``);
        users quote the id to support, so a header id is better than none.
        """
        if getattr(error, "request_id", "") is None:
            for name in REQUEST_ID_HEADERS:
                value = response.headers.get(name)
                if value:
                    error.request_id = value  # type: ignore[attr-defined]
                    break
        return error

    def next_delay(self, attempt: int, error: MMEmbedError) -> float | None:
        """Seconds before the next attempt, or ``None`` to give up and raise."""
        self.stats.add(requests=1)
        if attempt >= self.retry.max_retries or not self.retry.is_retryable(error):
            self.stats.add(failures=1)
            return None
        self.stats.add(retries=1)
        delay = self.retry.delay(attempt + 1, error)
        logger.info(
            "retrying after %s (retry %d of %d, in %.2fs)",
            type(error).__name__,
            attempt + 1,
            self.retry.max_retries,
            delay,
        )
        return delay


class SyncTransport(_TransportCore):
    """Blocking transport over an ``httpx.Client`` (injected or owned)."""

    def __init__(
        self,
        *,
        base_url: str,
        auth: httpx.Auth,
        retry: RetryPolicy,
        headers: dict[str, str],
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        http_client: httpx.Client | None = None,
    ) -> None:
        super().__init__(base_url=base_url, auth=auth, retry=retry, headers=headers)
        self._owns_client = http_client is None
        self.client = http_client or httpx.Client(
            timeout=timeout, limits=httpx.Limits(max_connections=64, max_keepalive_connections=32)
        )

    def post(
        self, path: str, body: bytes, parse: Parser[T], hooks: AttemptHooks[T] | None = None
    ) -> T:
        hooks = hooks or AttemptHooks()
        attempt = 0
        while True:
            if hooks.before is not None:
                while (wait := hooks.before()) > 0:
                    time.sleep(min(wait, RECHECK_S))
            error: MMEmbedError
            try:
                response = self.client.post(
                    self.url(path), content=body, headers=self.headers, auth=self.auth
                )
                _release_stream(response)
                logger.debug(
                    "POST %s -> %d (%d bytes)", path, response.status_code, len(response.content)
                )
                result = parse(
                    response.status_code, response.content, parse_retry_after(response.headers)
                )
            except httpx.HTTPError as exc:
                error = self.map_exception(exc)
            except MMEmbedError as exc:
                # Only the parser raises MMEmbedError here, so ``response`` is this attempt's.
                error = self.with_request_id(exc, response)
            else:
                self.stats.add(requests=1)
                if hooks.after is not None:
                    hooks.after(result, None)
                return result
            if hooks.after is not None:
                hooks.after(None, error)
            delay = self.next_delay(attempt, error)
            if delay is None:
                raise error
            attempt += 1
            time.sleep(delay)

    def get(self, path: str) -> httpx.Response:
        return self.client.get(self.url(path), headers=self.headers, auth=self.auth)

    def close(self) -> None:
        if self._owns_client:
            self.client.close()


class AsyncTransport(_TransportCore):
    """Asyncio transport over an ``httpx.AsyncClient`` (injected or owned)."""

    def __init__(
        self,
        *,
        base_url: str,
        auth: httpx.Auth,
        retry: RetryPolicy,
        headers: dict[str, str],
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(base_url=base_url, auth=auth, retry=retry, headers=headers)
        self._owns_client = http_client is None
        self.client = http_client or httpx.AsyncClient(
            timeout=timeout, limits=httpx.Limits(max_connections=64, max_keepalive_connections=32)
        )

    async def post(
        self, path: str, body: bytes, parse: Parser[T], hooks: AttemptHooks[T] | None = None
    ) -> T:
        hooks = hooks or AttemptHooks()
        attempt = 0
        while True:
            if hooks.before is not None:
                # Polled, not awaited on an Event: the budget is shared with threads.
                while (wait := hooks.before()) > 0:  # noqa: ASYNC110
                    await asyncio.sleep(min(wait, RECHECK_S))
            error: MMEmbedError
            try:
                response = await _cancel_safely(
                    lambda: self.client.post(
                        self.url(path), content=body, headers=self.headers, auth=self.auth
                    )
                )
                _release_stream(response)
                logger.debug(
                    "POST %s -> %d (%d bytes)", path, response.status_code, len(response.content)
                )
                result = parse(
                    response.status_code, response.content, parse_retry_after(response.headers)
                )
            except httpx.HTTPError as exc:
                error = self.map_exception(exc)
            except MMEmbedError as exc:
                # Only the parser raises MMEmbedError here, so ``response`` is this attempt's.
                error = self.with_request_id(exc, response)
            else:
                self.stats.add(requests=1)
                if hooks.after is not None:
                    hooks.after(result, None)
                return result
            if hooks.after is not None:
                hooks.after(None, error)
            delay = self.next_delay(attempt, error)
            if delay is None:
                raise error
            attempt += 1
            await asyncio.sleep(delay)

    async def get(self, path: str) -> httpx.Response:
        return await _cancel_safely(
            lambda: self.client.get(self.url(path), headers=self.headers, auth=self.auth)
        )

    async def aclose(self) -> None:
        if self._owns_client:
            await self.client.aclose()
