"""FG-CLIP clients: :class:`FGClipClient` (threads) and :class:`AsyncFGClipClient` (asyncio).

Both share :class:`_FGClipCore`, which validates inputs and plans wire calls; they differ
only in how the calls are run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import httpx
import numpy as np
import numpy.typing as npt
from pydantic import SecretStr

from ..auth import BearerAuth
from ..batching import PlannedCall, arun_calls, plan_chunks, run_calls
from ..errors import APIStatusError, ConfigurationError, InputError, to_caller_indices
from ..inputs import ImageSource, check_text, prepare_image, validate_boxes
from ..protocol import fgclip as proto
from ..protocol._json import dumps
from ..results import EmbeddingResult, Usage, UsageMeter
from ..retry import RetryPolicy
from ..transport import DEFAULT_TIMEOUT, AsyncTransport, Parser, SyncTransport, _TransportCore
from ._config import env_secret, env_str, positive_int

__all__ = ["AsyncFGClipClient", "FGClipClient"]

_BODY_OVERHEAD = 256
_HEADERS = {"accept": "application/json", "Content-Type": "application/json"}
Boxes = Sequence[Sequence[Sequence[float]] | None]


class _FGClipCore:
    """Configuration, validation and call planning shared by both FG-CLIP clients."""

    transport: _TransportCore

    def _configure(
        self,
        api_key: str | SecretStr | None,
        base_url: str | None,
        max_retries: int,
        max_concurrency: int,
        max_body_bytes: int,
        show_progress: bool,
        max_batch_size: int | None = None,
    ) -> tuple[str, BearerAuth, RetryPolicy]:
        key = env_secret(api_key, "FGCLIP_API_KEY")
        if key is None:
            raise ConfigurationError(
                "FG-CLIP API key missing: pass api_key=... or set FGCLIP_API_KEY"
            )
        self.base_url = (
            env_str(base_url, "FGCLIP_BASE_URL", proto.DEFAULT_BASE_URL) or proto.DEFAULT_BASE_URL
        )
        self.max_concurrency = positive_int(max_concurrency, "max_concurrency")
        self.max_body_bytes = positive_int(max_body_bytes, "max_body_bytes", minimum=1024)
        self.show_progress = show_progress
        self._meter = UsageMeter()
        # A caller's smaller batch is honoured; a larger one is capped at the wire limit.
        self.max_items = (
            proto.MAX_ITEMS
            if max_batch_size is None
            else min(positive_int(max_batch_size, "max_batch_size"), proto.MAX_ITEMS)
        )
        return (
            self.base_url,
            BearerAuth(key),
            RetryPolicy(max_retries=positive_int(max_retries, "max_retries", minimum=0)),
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, max_concurrency={self.max_concurrency})"

    @property
    def usage(self) -> Usage:
        """Tokens and images billed over this client's life (every successful wire call)."""
        return self._meter.total

    # ------------------------------------------------------------------ planning

    def _plan_texts(
        self, texts: Sequence[str], embedding_types: Sequence[str], truncate: str, text_box: bool
    ) -> tuple[list[PlannedCall], list[str]]:
        if isinstance(texts, str) or not isinstance(texts, Sequence):
            raise InputError(
                "texts must be a list of str (wrap a single text in a list)", field="texts"
            )
        types = proto.validate_embedding_types(embedding_types)
        mode = proto.validate_truncate(truncate)
        checked = [check_text(t, field="texts", index=i) for i, t in enumerate(texts)]
        sizes = [len(dumps(t)) for t in checked]
        chunks = plan_chunks(
            sizes,
            max_items=self.max_items,
            max_bytes=self.max_body_bytes,
            overhead=_BODY_OVERHEAD,
            field="texts",
        )
        calls = []
        for chunk in chunks:
            body = proto.build_text_body(
                [checked[i] for i in chunk],
                embedding_types=types,
                truncate=mode,
                text_box_flag=bool(text_box),
            )
            idx = np.asarray(chunk, dtype=np.int64)
            calls.append(PlannedCall(items=idx, rows=idx, body=dumps(body)))
        return calls, types

    def _plan_images(
        self, images: Sequence[ImageSource], boxes: Boxes | None, embedding_types: Sequence[str]
    ) -> tuple[list[PlannedCall], list[str]]:
        if isinstance(images, (str, bytes)) or not isinstance(images, Sequence):
            raise InputError(
                "images must be a list (wrap a single image in a list)", field="images"
            )
        types = proto.validate_embedding_types(embedding_types)
        prepared = [prepare_image(img, field="images", index=i) for i, img in enumerate(images)]
        wires = [p.fgclip_wire(field="images", index=i) for i, p in enumerate(prepared)]
        per_image: list[list[list[float]] | None] = [None] * len(images)
        if boxes is not None:
            if (
                isinstance(boxes, (str, bytes))
                or not isinstance(boxes, Sequence)
                or len(boxes) != len(images)
            ):
                raise InputError(
                    "boxes needs one entry per image (None or [] for a whole-image vector)",
                    field="boxes",
                    limit=f"{len(images)} entries",
                )
            for i, entry in enumerate(boxes):
                if entry is not None and len(entry) > 0:
                    per_image[i] = validate_boxes(
                        entry, image_size=prepared[i].size, field="boxes", index=i
                    )
        calls: list[PlannedCall] = []
        # The provider returns box features only when every image of a call has boxes, so
        # whole-image and boxed images go in separate calls (merged back by input index).
        for boxed in (False, True):
            group = [i for i in range(len(images)) if (per_image[i] is not None) == boxed]
            if not group:
                continue
            sizes = [len(wires[i]) + (len(dumps(per_image[i])) if boxed else 0) for i in group]
            for chunk in plan_chunks(
                sizes,
                max_items=self.max_items,
                max_bytes=self.max_body_bytes,
                overhead=_BODY_OVERHEAD,
                field="images",
                indices=group,
            ):
                members = [group[k] for k in chunk]
                chunk_boxes = [per_image[i] or [] for i in members] if boxed else None
                body = proto.build_image_body(
                    [wires[i] for i in members], embedding_types=types, boxes=chunk_boxes
                )
                items = np.asarray(members, dtype=np.int64)
                box_rows: npt.NDArray[np.int64] | None
                if boxed:
                    rows = np.repeat(items, [len(per_image[i] or []) for i in members])
                    box_rows = np.concatenate(
                        [np.arange(len(per_image[i] or []), dtype=np.int64) for i in members]
                    )
                else:
                    rows = items
                    box_rows = np.full(len(items), -1, np.int64) if boxes is not None else None
                calls.append(
                    PlannedCall(
                        items=items,
                        rows=rows,
                        box_rows=box_rows,
                        body=dumps(body),
                        images=len(members),
                    )
                )
        return calls, types

    @staticmethod
    def _parser(call: PlannedCall, types: Sequence[str]) -> Parser[EmbeddingResult]:
        def parse(status: int, content: bytes, retry_after: float | None) -> EmbeddingResult:
            try:
                return proto.parse_response(
                    status,
                    content,
                    expected_rows=len(call.rows),
                    embedding_types=types,
                    retry_after=retry_after,
                )
            except APIStatusError as error:
                raise to_caller_indices(error, call.items.tolist()) from None

        return parse


class FGClipClient(_FGClipCore):
    """Blocking FG-CLIP client.

    Args:
        api_key: the API key; defaults to ``FGCLIP_API_KEY``.
        base_url: defaults to ``FGCLIP_BASE_URL``, else ``https://api.research.360.cn``.
        timeout: seconds or an ``httpx.Timeout`` per request.
        max_retries: retries per wire request (0 turns retries off).
        max_concurrency: wire requests in flight at once (threads).
        max_body_bytes: the largest request body sent (default 4 MB).
        show_progress: show a tqdm bar over inputs.
        max_batch_size: the most inputs per wire request (default and cap: the provider's 32).
        http_client: an ``httpx.Client`` to use (proxies, custom pools, mocks); not closed by us.

    Use as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        api_key: str | SecretStr | None = None,
        *,
        base_url: str | None = None,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        max_retries: int = 3,
        max_concurrency: int = 4,
        max_body_bytes: int = proto.MAX_BODY_BYTES,
        show_progress: bool = False,
        max_batch_size: int | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        url, auth, retry = self._configure(
            api_key,
            base_url,
            max_retries,
            max_concurrency,
            max_body_bytes,
            show_progress,
            max_batch_size,
        )
        self.transport = SyncTransport(
            base_url=url,
            auth=auth,
            retry=retry,
            headers=dict(_HEADERS),
            timeout=timeout,
            http_client=http_client,
        )

    def embed_texts(
        self,
        texts: Sequence[str],
        *,
        embedding_types: Sequence[str] = ("float",),
        truncate: str = "none",
        text_box: bool = False,
    ) -> EmbeddingResult:
        """Embed texts (global features, or *local* features with ``text_box=True``, the ones
        to compare with box features). One row per text, in order."""
        calls, types = self._plan_texts(texts, embedding_types, truncate, text_box)
        return self._run(calls, types, len(texts))

    def embed_images(
        self,
        images: Sequence[ImageSource],
        *,
        boxes: Boxes | None = None,
        embedding_types: Sequence[str] = ("float",),
    ) -> EmbeddingResult:
        """Embed images; with ``boxes`` (one list of ``[x, y, w, h]`` per image, ``None`` or
        ``[]`` for a whole-image vector) the result has one row per box, and
        ``result.input_indices`` / ``result.box_indices`` say which image and box."""
        calls, types = self._plan_images(images, boxes, embedding_types)
        return self._run(calls, types, len(images))

    def _run(self, calls: list[PlannedCall], types: list[str], n: int) -> EmbeddingResult:
        transport = self.transport
        assert isinstance(transport, SyncTransport)

        def send(call: PlannedCall) -> EmbeddingResult:
            return transport.post(proto.PATH, call.body, self._parser(call, types))

        return run_calls(
            calls,
            send,
            n_inputs=n,
            empty=EmbeddingResult.empty(types),
            max_concurrency=self.max_concurrency,
            show_progress=self.show_progress,
            meter=self._meter,
            desc="FG-CLIP",
        )

    def close(self) -> None:
        self.transport.close()  # type: ignore[attr-defined]

    def __enter__(self) -> FGClipClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncFGClipClient(_FGClipCore):
    """Asyncio FG-CLIP client; same arguments and methods as :class:`FGClipClient`, awaited."""

    def __init__(
        self,
        api_key: str | SecretStr | None = None,
        *,
        base_url: str | None = None,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        max_retries: int = 3,
        max_concurrency: int = 4,
        max_body_bytes: int = proto.MAX_BODY_BYTES,
        show_progress: bool = False,
        max_batch_size: int | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        url, auth, retry = self._configure(
            api_key,
            base_url,
            max_retries,
            max_concurrency,
            max_body_bytes,
            show_progress,
            max_batch_size,
        )
        self.transport = AsyncTransport(
            base_url=url,
            auth=auth,
            retry=retry,
            headers=dict(_HEADERS),
            timeout=timeout,
            http_client=http_client,
        )

    async def embed_texts(
        self,
        texts: Sequence[str],
        *,
        embedding_types: Sequence[str] = ("float",),
        truncate: str = "none",
        text_box: bool = False,
    ) -> EmbeddingResult:
        """Async twin of :meth:`FGClipClient.embed_texts`."""
        calls, types = self._plan_texts(texts, embedding_types, truncate, text_box)
        return await self._run(calls, types, len(texts))

    async def embed_images(
        self,
        images: Sequence[ImageSource],
        *,
        boxes: Boxes | None = None,
        embedding_types: Sequence[str] = ("float",),
    ) -> EmbeddingResult:
        """Async twin of :meth:`FGClipClient.embed_images` (files are read off the event loop)."""
        calls, types = await asyncio.to_thread(self._plan_images, images, boxes, embedding_types)
        return await self._run(calls, types, len(images))

    async def _run(self, calls: list[PlannedCall], types: list[str], n: int) -> EmbeddingResult:
        transport = self.transport
        assert isinstance(transport, AsyncTransport)

        async def send(call: PlannedCall) -> EmbeddingResult:
            return await transport.post(proto.PATH, call.body, self._parser(call, types))

        return await arun_calls(
            calls,
            send,
            n_inputs=n,
            empty=EmbeddingResult.empty(types),
            max_concurrency=self.max_concurrency,
            show_progress=self.show_progress,
            meter=self._meter,
            desc="FG-CLIP",
        )

    async def aclose(self) -> None:
        await self.transport.aclose()  # type: ignore[attr-defined]

    async def __aenter__(self) -> AsyncFGClipClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
