"""Plumbing shared by both routes: JSON responses, the per-request record, fault replies."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.responses import Response

from .faults import MALFORMED_BODY, DropConnection
from .state import EmulatorState, RequestRecord

__all__ = [
    "CLIENT_CLOSED",
    "Exchange",
    "client_gone",
    "fault_response",
    "format_seconds",
    "json_response",
    "logger",
]

logger = logging.getLogger("mm_embed.emulator")

#: Status recorded when the client went away before its body arrived (nginx's 499).
CLIENT_CLOSED = 499


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """``body`` as JSON (numpy arrays serialised natively)."""
    return Response(
        content=orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY),
        status_code=status,
        headers=dict(headers or {}),
        media_type="application/json",
    )


@dataclass
class Exchange:
    """What is known about one request so far; becomes a :class:`RequestRecord`."""

    route: str
    method: str
    path: str
    request_id: str
    started: float = field(default_factory=time.perf_counter)
    status: int | None = None
    code: int | None = None
    message: str = ""
    fault: str | None = None
    model: str | None = None
    item_hashes: tuple[str, ...] = ()
    embedded: bool = False
    auth: str | None = None

    def finish(self, state: EmulatorState) -> None:
        record = RequestRecord(
            time=time.time(),
            route=self.route,
            method=self.method,
            path=self.path,
            request_id=self.request_id,
            status=self.status,
            code=self.code,
            message=self.message,
            fault=self.fault,
            model=self.model,
            items=len(self.item_hashes),
            item_hashes=self.item_hashes,
            embedded=self.embedded,
            auth=self.auth,
            duration_ms=round((time.perf_counter() - self.started) * 1000, 3),
        )
        state.log.add(record)
        # Never headers, keys or bodies: only what the record holds.
        logger.info(
            "%s %s -> %s code=%s fault=%s items=%d id=%s",
            record.route,
            record.path,
            record.status,
            record.code,
            record.fault,
            record.items,
            record.request_id,
        )


async def fault_response(
    kind: str,
    state: EmulatorState,
    exchange: Exchange,
    error_body: Callable[[int, str], tuple[int | None, Any]],
) -> Response:
    """The reply for an injected fault. ``error_body(http_status, message)`` gives the
    route's (provider code, body) for 429 / 5xx."""
    exchange.fault = kind
    if kind in ("429", "500", "503"):
        status = int(kind)
        message = {
            429: "Too Many Requests",
            500: "Internal Server Error",
            503: "Service Unavailable",
        }[status]
        exchange.code, body = error_body(status, message)
        exchange.status, exchange.message = status, message
        headers = {"x-request-id": exchange.request_id}
        if status == 429 and state.config.retry_after is not None:
            headers["Retry-After"] = format_seconds(state.config.retry_after)
        return json_response(body, status, headers)
    if kind == "malformed":
        exchange.status, exchange.message = 200, "malformed body"
        return Response(MALFORMED_BODY, 200, media_type="application/json")
    if kind == "timeout":
        await state.sleep(state.config.timeout_fault_s)
    # "reset", and a "timeout" whose sleep ended: close without an answer.
    exchange.message = "connection dropped"
    return DropConnection()


def format_seconds(seconds: float) -> str:
    """``Retry-After`` value: whole seconds when integral."""
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


def client_gone(exchange: Exchange) -> Response:
    """The client closed the connection mid-body: record it; the reply goes nowhere."""
    exchange.status, exchange.message = CLIENT_CLOSED, "client disconnected before sending its body"
    return Response(status_code=CLIENT_CLOSED)
