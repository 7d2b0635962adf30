"""Receiving a request body under a size cap and a deadline.

The cap is checked against ``Content-Length`` before a byte is read, then again while
the body streams in (a chunked body has no length), so an oversize body is refused
after at most ``limit`` bytes plus one chunk. The deadline covers the whole body, so a
client that trickles it cannot hold a connection past ``timeout_s``.
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request

__all__ = ["BodyTimeout", "BodyTooLarge", "read_body"]


class BodyTooLarge(Exception):
    """The body is (or announces itself as) larger than the cap."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"request body is {size} bytes, larger than {limit}")
        self.size, self.limit = size, limit


class BodyTimeout(Exception):
    """The body did not arrive in time."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"request body was not received within {seconds:g} s")
        self.seconds = seconds


def _declared_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    return int(value) if value is not None and value.isdigit() else None


async def read_body(request: Request, *, limit: int, timeout_s: float | None) -> bytes:
    """The whole body, or :class:`BodyTooLarge` / :class:`BodyTimeout` (or Starlette's
    ``ClientDisconnect`` when the client goes away). ``timeout_s=None``: no deadline."""
    declared = _declared_length(request)
    if declared is not None and declared > limit:
        raise BodyTooLarge(declared, limit)
    received = bytearray()
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():
                received += chunk
                if len(received) > limit:
                    raise BodyTooLarge(len(received), limit)
    except TimeoutError:
        assert timeout_s is not None  # only a deadline times out
        raise BodyTimeout(timeout_s) from None
    return bytes(received)
