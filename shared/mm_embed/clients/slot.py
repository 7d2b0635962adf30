"""Core clients built on first use, for objects that are configured before they run
(framework adapters): one blocking client, one async client per event loop."""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

__all__ = ["ClientSlot"]


class _Closable(Protocol):
    def close(self) -> None: ...


class _AsyncClosable(Protocol):
    async def aclose(self) -> None: ...


S = TypeVar("S", bound=_Closable)
A = TypeVar("A", bound=_AsyncClosable)


class ClientSlot(Generic[S, A]):
    """A lazily built blocking client and one async client per event loop.

    An ``httpx.AsyncClient`` is bound to the loop it first ran on, and frameworks run
    some sync APIs through ``asyncio.run`` (a new loop each time), so async clients are
    kept per loop (those of closed loops are dropped). A slot pickles and deep-copies as
    an empty slot: clients hold sockets and credentials, and a copy builds its own.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sync: S | None = None
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, A] = (
            weakref.WeakKeyDictionary()
        )

    def sync(self, build: Callable[[], S]) -> S:
        """The blocking client, built by ``build`` on first use."""
        with self._lock:
            if self._sync is None:
                self._sync = build()
            return self._sync

    def for_running_loop(self, build: Callable[[], A]) -> A:
        """The async client of the running event loop, built by ``build`` on first use."""
        loop = asyncio.get_running_loop()
        with self._lock:
            for old in [old for old in self._async if old.is_closed()]:
                del self._async[old]
            client = self._async.get(loop)
            if client is None:
                client = self._async[loop] = build()
            return client

    def close(self) -> None:
        """Close the blocking client (a later call builds a new one)."""
        with self._lock:
            client, self._sync = self._sync, None
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        """Close the async client of the running loop (a later call builds a new one)."""
        with self._lock:
            client = self._async.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()

    def __getstate__(self) -> dict[str, Any]:
        # Not empty: pickle skips __setstate__ for a falsy state.
        return {"rebuild": True}

    def __setstate__(self, state: dict[str, Any]) -> None:
        ClientSlot.__init__(self)
