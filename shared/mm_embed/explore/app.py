"""The explorer's web app (Starlette): the page, the picture search and the script."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from ..emulator.body import BodyTooLarge, read_body
from ..errors import InputError, MMEmbedError
from .page import CSP, SCRIPT, render_error, render_image_results, render_page, render_text_results
from .search import Explorer

__all__ = ["MAX_UPLOAD_BYTES", "create_app"]

#: Uploaded pictures larger than this are refused unread (FG-CLIP takes far smaller).
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _failure(exc: MMEmbedError) -> tuple[str, int]:
    # Bad input is the user's to fix (400); anything else failed upstream (502).
    return render_error(str(exc)), 400 if isinstance(exc, InputError) else 502


def create_app(explorer: Explorer, where: Mapping[str, str]) -> Starlette:
    """The app over ``explorer``; ``where`` says which API or emulator each provider uses."""

    def page(query: str = "", results: str = "", status: int = 200) -> HTMLResponse:
        body = render_page(
            explorer.collections,
            where,
            query=query,
            results=results,
            image_search=explorer.searches_images,
        )
        return HTMLResponse(body, status_code=status, headers=_HEADERS)

    async def index(request: Request) -> Response:
        query = request.query_params.get("q", "")
        if not query.strip():
            return page(query)
        try:
            found = await run_in_threadpool(explorer.search_text, query)
        except MMEmbedError as exc:
            message, status = _failure(exc)
            return page(query, message, status)
        return page(query, render_text_results(found))

    async def search_image(request: Request) -> Response:
        try:
            data = await read_body(request, limit=MAX_UPLOAD_BYTES, timeout_s=None)
        except BodyTooLarge:
            message = f"the picture is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB"
            return HTMLResponse(render_error(message), status_code=413, headers=_HEADERS)
        if not data:
            return HTMLResponse(render_error("no picture sent"), status_code=400, headers=_HEADERS)
        try:
            found = await run_in_threadpool(explorer.search_image, data)
        except MMEmbedError as exc:
            message, status = _failure(exc)
            return HTMLResponse(message, status_code=status, headers=_HEADERS)
        return HTMLResponse(render_image_results(found), headers=_HEADERS)

    async def script(request: Request) -> Response:
        return Response(SCRIPT, media_type="text/javascript", headers=_HEADERS)

    return Starlette(
        routes=[
            Route("/", index),
            Route("/search/image", search_image, methods=["POST"]),
            Route("/explore.js", script),
        ]
    )
