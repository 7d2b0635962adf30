"""Plumbing shared by both routes: JSON responses, the per-request record, fault replies,
and :func:`handle`, the order every embedding request goes through."""

from __future__ import annotations

import abc
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from .body import BodyTimeout, BodyTooLarge, read_body
from .faults import MALFORMED_BODY, DropConnection
from .state import EmulatorState, RequestRecord

__all__ = [
    "CLIENT_CLOSED",
    "Exchange",
    "FaultBody",
    "Refusal",
    "RouteHandler",
    "client_gone",
    "fault_response",
    "format_seconds",
    "handle",
    "json_object",
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


def json_object(raw: bytes) -> dict[str, Any] | None:
    """``raw`` parsed as a JSON object; ``None`` when it is not one."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return body if isinstance(body, dict) else None


@dataclass
class Exchange:
    """What is known about one request so far; becomes a :class:`RequestRecord`."""

    route: str
    method: str
    path: str
    request_id: str
    started: float = field(default_factory=time.perf_counter)
    #: Wall-clock arrival time (FG-CLIP's ``created`` is when processing began).
    arrived: float = field(default_factory=time.time)
    status: int | None = None
    code: int | None = None
    message: str = ""
    fault: str | None = None
    model: str | None = None
    item_hashes: tuple[str, ...] = ()
    embedded: bool = False
    auth: str | None = None

    def finish(self, state: EmulatorState) -> None:
        # Every field but the two clocks goes to the record as it is.
        known = {k: v for k, v in vars(self).items() if k not in ("started", "arrived")}
        record = RequestRecord(
            time=time.time(),
            items=len(self.item_hashes),
            duration_ms=round((time.perf_counter() - self.started) * 1000, 3),
            **known,
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


class Refusal(Exception):
    """A refusal a route renders in its provider's error shape."""

    def __init__(self, code: int, status: int, message: str) -> None:
        super().__init__(message)
        self.code, self.status, self.message = code, status, message


FaultBody = Callable[[int, str], tuple[int | None, Any]]


class RouteHandler(abc.ABC):
    """What differs between the two embedding routes; :func:`handle` does the rest."""

    name: str
    #: Largest body the route reads.
    max_body_bytes: int

    @abc.abstractmethod
    def new_request_id(self) -> str: ...

    @abc.abstractmethod
    def check_headers(self, request: Request, state: EmulatorState, exchange: Exchange) -> None:
        """Everything that can be refused before reading the body (authentication first)."""

    @abc.abstractmethod
    def item_hashes(self, raw: bytes) -> tuple[tuple[str, ...], str | None]:
        """(item hashes, model name) for the log; never raises."""

    @abc.abstractmethod
    def fault_body(self, exchange: Exchange) -> FaultBody: ...

    @abc.abstractmethod
    async def serve(
        self, request: Request, raw: bytes, state: EmulatorState, exchange: Exchange
    ) -> Response:
        """Check what needs the body (a body signature), then validate and embed."""

    @abc.abstractmethod
    def too_large(self, exc: BodyTooLarge) -> Refusal: ...

    @abc.abstractmethod
    def timed_out(self, exc: BodyTimeout) -> Refusal: ...

    @abc.abstractmethod
    def render(self, refusal: Refusal, state: EmulatorState, exchange: Exchange) -> Response: ...


#: Sent with a refusal that leaves the body unread: the rest of it is never read.
CLOSE = {"connection": "close"}


async def handle(request: Request, route: RouteHandler) -> Response:
    """One embedding request: fault draw, header checks (authentication) before any body
    byte, the body under its cap and deadline, latency, then the route's own work."""
    state: EmulatorState = request.app.state.emulator
    cfg = state.config
    exchange = Exchange(route.name, request.method, request.url.path, route.new_request_id())
    body_read = False
    try:
        # A fault models the provider's front door (load balancer, quota gate): it
        # answers before credentials are looked at, as it always has.
        fault = state.injector.pick()
        if fault is None:
            route.check_headers(request, state, exchange)
        raw = await read_body(request, limit=route.max_body_bytes, timeout_s=cfg.body_timeout_s)
        body_read = True
        exchange.item_hashes, exchange.model = route.item_hashes(raw)
        if cfg.latency_ms:
            await state.sleep(cfg.latency_ms / 1000)
        if fault:
            return await fault_response(fault, state, exchange, route.fault_body(exchange))
        return await route.serve(request, raw, state, exchange)
    except ClientDisconnect:
        return client_gone(exchange)
    except BodyTooLarge as exc:
        return _refuse(route, route.too_large(exc), state, exchange, close=True)
    except BodyTimeout as exc:
        return _refuse(route, route.timed_out(exc), state, exchange, close=True)
    except Refusal as exc:
        return _refuse(route, exc, state, exchange, close=not body_read)
    finally:
        if exchange.status is None and exchange.fault is None:
            exchange.status, exchange.message = 500, "internal error"
        exchange.finish(state)


def _refuse(
    route: RouteHandler, refusal: Refusal, state: EmulatorState, exchange: Exchange, *, close: bool
) -> Response:
    exchange.status, exchange.code = refusal.status, refusal.code
    exchange.message = exchange.message or refusal.message
    response = route.render(refusal, state, exchange)
    if close:
        response.headers.update(CLOSE)
    return response
