"""The client core both providers build on, generic over the transport.

A provider client is three layers: its provider base (configuration and planning:
inputs in, a :class:`Job` of wire requests out), and one of the two runners here,
:class:`SyncClientCore` (threads) or :class:`AsyncClientCore` (asyncio), which send a
job's requests concurrently and merge the replies in the caller's order. The runner
fixes the transport type, so a client's ``transport`` is exactly a
:class:`~mm_embed.transport.SyncTransport` or an
:class:`~mm_embed.transport.AsyncTransport`.
"""

from __future__ import annotations

import threading
import warnings
from abc import abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Self, TypeVar

import httpx

from ..batching import CallBatch, PlannedCall, RunSettings, arun_calls, run_calls
from ..budgets import Budget, resolve_budget
from ..config import non_negative_int, positive_int, redact_url
from ..results import EmbeddingResult, Usage, UsageMeter
from ..retry import RetryPolicy
from ..transport import AsyncTransport, Pacer, Parser, SyncTransport, TransportSettings

__all__ = [
    "AsyncClientCore",
    "ClientCore",
    "Job",
    "SyncClientCore",
    "batch_cap",
    "transport_settings",
    "warn_once",
]

TransportT = TypeVar("TransportT", SyncTransport, AsyncTransport)
HttpClientT = TypeVar("HttpClientT", httpx.Client, httpx.AsyncClient)

_warned: set[str] = set()
_warned_lock = threading.Lock()


def warn_once(message: str, category: type[Warning] = UserWarning) -> None:
    """Warn with ``message`` the first time it occurs in this process."""
    with _warned_lock:
        if message in _warned:
            return
        _warned.add(message)
    warnings.warn(message, category, stacklevel=4)


def transport_settings(
    base_url: str,
    auth: httpx.Auth,
    headers: Mapping[str, str],
    *,
    timeout: float | None,
    max_retries: int,
) -> TransportSettings:
    """Where and how a client sends, with the retry policy of ``max_retries`` (checked)."""
    return TransportSettings(
        base_url=base_url,
        auth=auth,
        retry=RetryPolicy(max_retries=non_negative_int(max_retries, "max_retries")),
        headers=dict(headers),
        timeout=timeout,
    )


def batch_cap(max_batch_size: int | None, wire_limit: int) -> int:
    """The most inputs per wire request: a caller's smaller ``max_batch_size`` is
    honoured, a larger one is capped at the wire limit."""
    if max_batch_size is None:
        return wire_limit
    return min(positive_int(max_batch_size, "max_batch_size"), wire_limit)


@dataclass(kw_only=True)
class Job(CallBatch):
    """The wire requests of one client call and how to send and read each of them."""

    path: str
    parser: Callable[[PlannedCall], Parser[EmbeddingResult]]
    pacer: Callable[[PlannedCall], Pacer | None]


class ClientCore(Generic[TransportT, HttpClientT]):
    """State every client has: its transport, concurrency, budget and usage meter."""

    transport: TransportT
    max_concurrency: int
    show_progress: bool
    budget: Budget
    account: str

    def _setup(
        self,
        settings: TransportSettings,
        http_client: HttpClientT | None,
        *,
        max_concurrency: int,
        show_progress: bool,
        budget: Budget | str | None,
        account: str,
    ) -> None:
        self.max_concurrency = positive_int(max_concurrency, "max_concurrency")
        self.show_progress = bool(show_progress)
        self.budget = resolve_budget(budget)
        self.account = account
        self._meter = UsageMeter()
        self.transport = self._open_transport(settings, http_client)

    @abstractmethod
    def _open_transport(
        self, settings: TransportSettings, http_client: HttpClientT | None
    ) -> TransportT:
        """The transport of this runner (sync or async)."""

    def _run_settings(self) -> RunSettings:
        return RunSettings(self.max_concurrency, self.show_progress, self._meter)

    @property
    def base_url(self) -> str:
        """The endpoint requests go to."""
        return self.transport.base_url

    @property
    def usage(self) -> Usage:
        """Tokens and images billed over this client's life (every successful wire call)."""
        return self._meter.total

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base_url={redact_url(self.base_url)!r}, "
            f"max_concurrency={self.max_concurrency})"
        )

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise TypeError(
            f"{type(self).__name__} holds credentials and open connections and is not "
            "picklable; build a new client where it is needed"
        )


class SyncClientCore(ClientCore[SyncTransport, httpx.Client]):
    """Runs a job's requests on up to ``max_concurrency`` threads."""

    def _open_transport(
        self, settings: TransportSettings, http_client: httpx.Client | None
    ) -> SyncTransport:
        return SyncTransport(settings, http_client)

    def _run(self, job: Job) -> EmbeddingResult:
        transport = self.transport
        transport.ensure_open()

        def send(call: PlannedCall) -> EmbeddingResult:
            return transport.post(job.path, call.body, job.parser(call), job.pacer(call))

        return run_calls(job, send, self._run_settings())

    def close(self) -> None:
        """Close the connections; later calls raise :class:`~mm_embed.ClientClosedError`."""
        self.transport.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncClientCore(ClientCore[AsyncTransport, httpx.AsyncClient]):
    """Runs a job's requests as up to ``max_concurrency`` asyncio tasks, from any loop."""

    def _open_transport(
        self, settings: TransportSettings, http_client: httpx.AsyncClient | None
    ) -> AsyncTransport:
        return AsyncTransport(settings, http_client)

    async def _run(self, job: Job) -> EmbeddingResult:
        transport = self.transport
        transport.ensure_open()

        async def send(call: PlannedCall) -> EmbeddingResult:
            return await transport.post(job.path, call.body, job.parser(call), job.pacer(call))

        return await arun_calls(job, send, self._run_settings())

    async def aclose(self) -> None:
        """Close the connections; later calls raise :class:`~mm_embed.ClientClosedError`."""
        await self.transport.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
