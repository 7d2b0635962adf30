"""The Starlette application of the emulator: routes, startup, and the connection hook."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ..providers.viking.catalogue import PATH as VIKING_PATH
from ..providers.viking.catalogue import PING_PATH
from ..samples.pictures import SAMPLES, sample_png
from . import encoders, fgclip, viking
from .config import EmulatorConfig
from .faults import ABORT_KEY, abort_transport
from .state import EmulatorState
from .wire import json_response

__all__ = ["EmulatorApp", "create_app"]


async def _samples_index(request: Request) -> Response:
    base = str(request.base_url).rstrip("/")
    return json_response(
        [
            {
                "name": s.name,
                "url": f"{base}/samples/{s.name}.png",
                "width": s.width,
                "height": s.height,
                "description": s.description,
                "shapes": [{"colour": c, "shape": k, "box": list(b)} for c, k, b in s.shapes],
            }
            for s in SAMPLES.values()
        ]
    )


async def _sample(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in SAMPLES:
        return Response(b"not found", 404, media_type="text/plain")
    return Response(sample_png(name), 200, media_type="image/png")


class EmulatorApp:
    """ASGI app: the Starlette routes, plus a per-connection abort handle in the scope
    (uvicorn's ``send`` is only reachable here, before Starlette wraps it)."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state

        @contextlib.asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            state.bind_loop()
            encoders.warm_up()
            yield

        self.starlette = Starlette(
            routes=[
                Route(fgclip.PATH, fgclip.endpoint, methods=["POST"]),
                Route(VIKING_PATH, viking.endpoint, methods=["POST", "GET"]),
                Route(PING_PATH, viking.ping, methods=["GET", "POST"]),
                Route("/samples", _samples_index, methods=["GET"]),
                Route("/samples/{name}.png", _sample, methods=["GET"]),
            ],
            lifespan=lifespan,
        )
        self.starlette.state.emulator = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            abort = abort_transport(send)
            if abort is not None:
                scope[ABORT_KEY] = abort
        await self.starlette(scope, receive, send)


def create_app(config: EmulatorConfig | None = None, state: EmulatorState | None = None) -> ASGIApp:
    """A fresh emulator app (give ``state`` to share its log with the caller)."""
    return EmulatorApp(state or EmulatorState(config or EmulatorConfig()))
