"""FG-CLIP clients: :class:`FGClipClient` (threads) and :class:`AsyncFGClipClient`
(asyncio), sharing :class:`FGClipBase` (configuration and planning) and differing only
in how requests run."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import httpx
import numpy as np
import numpy.typing as npt
from pydantic import SecretStr

from ...auth import BearerAuth
from ...batching import PlannedCall, plan_chunks
from ...budgets import Budget, Quota
from ...budgets.pacing import CallPacer
from ...config import (
    DEFAULTS,
    EnvVar,
    optional_positive,
    positive_int,
    resolve_fgclip_credentials,
    resolve_str,
)
from ...errors import APIStatusError, ConfigurationError, InputError, to_caller_indices
from ...inputs import (
    ImageLimits,
    ImageSource,
    check_text,
    prepare_image,
    reencode_unless,
    validate_boxes,
)
from ...results import EmbeddingResult
from ...transport import AsyncTransport, Pacer, Parser, SyncTransport
from .._client import (
    AsyncClientCore,
    ClientCore,
    HttpClientT,
    Job,
    SyncClientCore,
    TransportT,
    batch_cap,
    transport_settings,
    warn_once,
)
from .._wire import dumps
from . import protocol as proto
from .catalogue import (
    DEFAULT_BASE_URL,
    DEFAULT_MODEL,
    HEADERS,
    IMAGE_FORMATS,
    KNOWN_MODELS,
    MAX_BODY_BYTES,
    MAX_ITEMS,
    PATH,
)

__all__ = ["AsyncFGClipClient", "Boxes", "FGClipBase", "FGClipClient"]

_BODY_OVERHEAD = 256
#: One entry per image: a list of ``[x, y, w, h]`` boxes, or ``None`` / ``[]`` for the
#: whole image.
Boxes = Sequence[Sequence[Sequence[float]] | None]


class FGClipBase(ClientCore[TransportT, HttpClientT]):
    """Configuration, validation and call planning of both FG-CLIP clients.

    Args:
        api_key: the API key; defaults to ``FGCLIP_API_KEY``.
        model: the model name (``"fg-clip"``, the one the page documents today).
        base_url: defaults to ``FGCLIP_BASE_URL``, else ``https://api.research.360.cn``.
        timeout: seconds for each whole request (connect, send, receive); ``None``: unbounded.
        max_retries: retries per wire request (0 turns them off).
        max_concurrency: wire requests in flight at once.
        requests_per_second: an optional request quota (FG-CLIP publishes none); when set,
            every client of the account shares it through ``budget`` and backs off
            together on HTTP 429.
        budget: the shared quota state (see :mod:`mm_embed.budgets`); default
            ``MM_EMBED_BUDGET``, else this process's budget.
        max_body_bytes: the largest request body sent (default 4 MB).
        max_image_pixels: images with more pixels are refused before decoding.
        strict_models: ``False`` sends a model the catalogue does not know (with a
            one-time warning) instead of refusing it.
        show_progress: show a tqdm bar over inputs.
        max_batch_size: the most inputs per wire request (default and cap: 32).
        http_client: an httpx client to use (proxies, custom pools, mocks); not closed by us.

    Use as a context manager, or call ``close()`` / ``aclose()``.
    """

    def __init__(
        self,
        api_key: str | SecretStr | None = None,
        *,
        model: str = DEFAULT_MODEL,
        base_url: str | None = None,
        timeout: float | None = DEFAULTS.timeout,
        max_retries: int = DEFAULTS.max_retries,
        max_concurrency: int = DEFAULTS.fgclip_max_concurrency,
        requests_per_second: float | None = None,
        budget: Budget | str | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
        max_image_pixels: int = DEFAULTS.max_image_pixels,
        strict_models: bool = True,
        show_progress: bool = False,
        max_batch_size: int | None = None,
        http_client: HttpClientT | None = None,
    ) -> None:
        credentials = resolve_fgclip_credentials(api_key)
        self.strict_models = bool(strict_models)
        if model not in KNOWN_MODELS:
            if self.strict_models:
                raise ConfigurationError(
                    f"unknown FG-CLIP model {model!r} (known: {', '.join(sorted(KNOWN_MODELS))}); "
                    "pass strict_models=False to send it anyway"
                )
            warn_once(f"FG-CLIP model {model!r} is not in the catalogue; sent as asked")
        self.model = model
        self.max_body_bytes = positive_int(max_body_bytes, "max_body_bytes", minimum=1024)
        self.image_limits = ImageLimits(
            max_pixels=positive_int(max_image_pixels, "max_image_pixels")
        )
        self.max_items = batch_cap(max_batch_size, MAX_ITEMS)
        rps = optional_positive(requests_per_second, "requests_per_second")
        self._requests_quota = Quota("requests", rps, max(1.0, rps)) if rps else None
        self._setup(
            transport_settings(
                resolve_str(base_url, EnvVar.FGCLIP_BASE_URL, DEFAULT_BASE_URL) or DEFAULT_BASE_URL,
                BearerAuth(credentials.api_key),
                HEADERS,
                timeout=timeout,
                max_retries=max_retries,
            ),
            http_client,
            max_concurrency=max_concurrency,
            show_progress=show_progress,
            budget=budget,
            account=credentials.account,
        )

    # ------------------------------------------------------------------ planning

    def _job(self, calls: list[PlannedCall], types: list[str], n_inputs: int) -> Job:
        def parser(call: PlannedCall) -> Parser[EmbeddingResult]:
            def parse(status: int, content: bytes, retry_after: float | None) -> EmbeddingResult:
                try:
                    return proto.parse_response(
                        status,
                        content,
                        expected_rows=len(call.rows),
                        embedding_types=types,
                        model=self.model,
                        retry_after=retry_after,
                    )
                except APIStatusError as error:
                    raise to_caller_indices(error, call.items.tolist()) from None

            return parse

        return Job(
            calls=calls,
            path=PATH,
            parser=parser,
            pacer=self._pacer,
            empty=EmbeddingResult.empty(types),
            n_inputs=n_inputs,
            desc="FG-CLIP",
        )

    def _pacer(self, call: PlannedCall) -> Pacer | None:
        if self._requests_quota is None:
            return None
        return CallPacer(self.budget, self.account, [(self._requests_quota, 1.0, None)])

    def _plan_texts(
        self, texts: Sequence[str], embedding_types: Sequence[str], truncate: str, text_box: bool
    ) -> Job:
        if isinstance(texts, str) or not isinstance(texts, Sequence):
            raise InputError(
                "texts must be a list of str (wrap a single text in a list)", field="texts"
            )
        types = proto.validate_embedding_types(embedding_types)
        mode = proto.validate_truncate(truncate)
        checked = [check_text(t, field="texts", index=i) for i, t in enumerate(texts)]
        chunks = plan_chunks(
            [len(dumps(t)) for t in checked],
            max_items=self.max_items,
            max_bytes=self.max_body_bytes,
            overhead=_BODY_OVERHEAD,
            field="texts",
        )
        calls = []
        for chunk in chunks:
            body = proto.build_text_body(
                [checked[i] for i in chunk],
                model=self.model,
                embedding_types=types,
                truncate=mode,
                text_box_flag=bool(text_box),
            )
            idx = np.asarray(chunk, dtype=np.int64)
            calls.append(PlannedCall(items=idx, rows=idx, body=dumps(body)))
        return self._job(calls, types, len(texts))

    def _boxes_per_image(
        self, boxes: Boxes | None, sizes: Sequence[tuple[int, int] | None]
    ) -> list[list[list[float]] | None]:
        per_image: list[list[list[float]] | None] = [None] * len(sizes)
        if boxes is None:
            return per_image
        if (
            isinstance(boxes, (str, bytes))
            or not isinstance(boxes, Sequence)
            or len(boxes) != len(sizes)
        ):
            raise InputError(
                "boxes needs one entry per image (None or [] for a whole-image vector)",
                field="boxes",
                limit=f"{len(sizes)} entries",
            )
        for i, entry in enumerate(boxes):
            if entry is not None and len(entry) > 0:
                per_image[i] = validate_boxes(entry, image_size=sizes[i], field="boxes", index=i)
        return per_image

    def _plan_images(
        self, images: Sequence[ImageSource], boxes: Boxes | None, embedding_types: Sequence[str]
    ) -> Job:
        if isinstance(images, (str, bytes)) or not isinstance(images, Sequence):
            raise InputError(
                "images must be a list (wrap a single image in a list)", field="images"
            )
        types = proto.validate_embedding_types(embedding_types)
        prepared = [
            reencode_unless(
                prepare_image(img, field="images", index=i, limits=self.image_limits),
                tuple(IMAGE_FORMATS),
            )
            for i, img in enumerate(images)
        ]
        wires = [proto.image_wire(p, field="images", index=i) for i, p in enumerate(prepared)]
        per_image = self._boxes_per_image(boxes, [p.size for p in prepared])
        calls: list[PlannedCall] = []
        # The provider returns box features only when every image of a call has boxes, so
        # whole-image and boxed images go in separate calls (merged back by input index).
        for boxed in (False, True):
            group = [i for i in range(len(images)) if (per_image[i] is not None) == boxed]
            sizes = [len(wires[i]) + (len(dumps(per_image[i])) if boxed else 0) for i in group]
            for chunk in (
                plan_chunks(
                    sizes,
                    max_items=self.max_items,
                    max_bytes=self.max_body_bytes,
                    overhead=_BODY_OVERHEAD,
                    field="images",
                    indices=group,
                )
                if group
                else []
            ):
                members = [group[k] for k in chunk]
                calls.append(
                    self._image_call(members, wires, per_image, types, boxed, boxes is not None)
                )
        return self._job(calls, types, len(images))

    def _image_call(
        self,
        members: list[int],
        wires: Sequence[str],
        per_image: Sequence[list[list[float]] | None],
        types: list[str],
        boxed: bool,
        any_boxes: bool,
    ) -> PlannedCall:
        body = proto.build_image_body(
            [wires[i] for i in members],
            model=self.model,
            embedding_types=types,
            boxes=[per_image[i] or [] for i in members] if boxed else None,
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
            box_rows = np.full(len(items), -1, np.int64) if any_boxes else None
        return PlannedCall(
            items=items, rows=rows, box_rows=box_rows, body=dumps(body), images=len(members)
        )


class FGClipClient(SyncClientCore, FGClipBase[SyncTransport, httpx.Client]):
    __doc__ = "Blocking FG-CLIP client.\n" + (FGClipBase.__doc__ or "").split("\n", 1)[1]

    def embed_texts(
        self,
        texts: Sequence[str],
        *,
        embedding_types: Sequence[str] = ("float",),
        truncate: str = "none",
        text_box: bool = False,
    ) -> EmbeddingResult:
        """Embed texts (global features, or *local* features with ``text_box=True``, the
        ones to compare with box features). One row per text, in order."""
        return self._run(self._plan_texts(texts, embedding_types, truncate, text_box))

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
        return self._run(self._plan_images(images, boxes, embedding_types))


class AsyncFGClipClient(AsyncClientCore, FGClipBase[AsyncTransport, httpx.AsyncClient]):
    __doc__ = (
        "Asyncio FG-CLIP client; methods are awaited twins of FGClipClient's.\n"
        + (FGClipBase.__doc__ or "").split("\n", 1)[1]
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
        return await self._run(self._plan_texts(texts, embedding_types, truncate, text_box))

    async def embed_images(
        self,
        images: Sequence[ImageSource],
        *,
        boxes: Boxes | None = None,
        embedding_types: Sequence[str] = ("float",),
    ) -> EmbeddingResult:
        """Async twin of :meth:`FGClipClient.embed_images` (files are read off the event loop)."""
        job = await asyncio.to_thread(self._plan_images, images, boxes, embedding_types)
        return await self._run(job)
