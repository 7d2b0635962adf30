"""Fault injection: which request gets which fault, and how each fault reaches the wire.

Faults are drawn from a ``random.Random(seed)`` under a lock, so a run with the same
seed and the same request order injects the same faults. Faults queued explicitly
(:meth:`FaultInjector.queue`) are served first, one per request, in order.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections import deque
from collections.abc import Iterable
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from .config import FAULT_KINDS

__all__ = ["ABORT_KEY", "MALFORMED_BODY", "DropConnection", "FaultInjector", "abort_transport"]

#: Scope key under which the outer ASGI wrapper stores the connection's abort function.
ABORT_KEY = "mm_embed.emulator.abort"
#: What a ``malformed`` fault sends: a JSON document cut in the middle.
MALFORMED_BODY = (
    b'{"context": {"code": 0, "message": "OK"}, "data": {"embeddings": {"float": [[0.0123, -0.04'
)


class FaultInjector:
    """Picks the fault (or none) for each embedding request; thread-safe."""

    def __init__(self, rate: float, kinds: Iterable[str], seed: int) -> None:
        self.rate = rate
        self.kinds = tuple(kinds)
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._queue: deque[str] = deque()

    def queue(self, *kinds: str) -> None:
        """Give the next ``len(kinds)`` embedding requests these faults, in order
        (``"none"`` lets one request through untouched)."""
        for kind in kinds:
            if kind not in (*FAULT_KINDS, "none"):
                raise ValueError(
                    f"unknown fault {kind!r}; choose from {', '.join(FAULT_KINDS)} or 'none'"
                )
        with self._lock:
            self._queue.extend(kinds)

    def pick(self) -> str | None:
        """The fault for the next request, or ``None``."""
        with self._lock:
            if self._queue:
                kind = self._queue.popleft()
                return None if kind == "none" else kind
            if self.rate <= 0 or not self.kinds:
                return None
            if self._rng.random() >= self.rate:
                return None
            return self._rng.choice(self.kinds)


def abort_transport(send: Send) -> Any:
    """A function that drops the connection behind uvicorn's ``send``, or ``None``.

    uvicorn gives the app no handle on the socket, but its ``send`` is a bound method of
    the request cycle, which holds the transport. Aborting it makes the client see the
    connection close with no response at all.
    """
    cycle: Any = getattr(send, "__self__", None)
    transport: Any = getattr(cycle, "transport", None)
    if cycle is None or transport is None or not hasattr(transport, "abort"):
        return None

    def abort() -> None:
        transport.abort()
        if hasattr(cycle, "disconnected"):
            # Stops uvicorn from trying to write its own 500 on the dead connection.
            cycle.disconnected = True

    return abort


class DropConnection(Response):
    """A "response" that closes the connection without answering."""

    def __init__(self) -> None:
        super().__init__(content=b"", status_code=500)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        abort = scope.get(ABORT_KEY)
        if abort is not None:
            abort()
            await asyncio.sleep(0)
            return
        # Not under uvicorn's h11 cycle: promise a body and stop short instead.
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"1000")],
            }
        )
        await send({"type": "http.response.body", "body": b"{", "more_body": True})
        raise ConnectionAbortedError("emulated connection reset")
