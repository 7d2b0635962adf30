"""Viking embedding v2 clients: :class:`VikingClient` (threads) and
:class:`AsyncVikingClient` (asyncio), sharing :class:`VikingBase` (configuration and
planning) and differing only in how requests run."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Literal

import httpx
import numpy as np
from pydantic import SecretStr

from ...auth import VikingTokenAuth, VolcengineSignatureAuth
from ...batching import PlannedCall, plan_chunks
from ...budgets import Budget, Quota
from ...budgets.pacing import CallPacer, Charge
from ...config import (
    DEFAULTS,
    EnvVar,
    VikingCredentials,
    optional_positive,
    positive_int,
    resolve_str,
    resolve_viking_credentials,
)
from ...errors import InputError
from ...inputs import (
    FullModalItem,
    ImageItem,
    ImageLimits,
    ImageSource,
    Item,
    PreparedImage,
    TextImageItem,
    TextItem,
    VideoItem,
    fit_image,
    prepare_image,
    prepare_video,
    reencode_unless,
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
    DEFAULT_IMAGES_PER_SECOND,
    DEFAULT_REGION,
    DEFAULT_TOKENS_PER_MINUTE,
    FULL_MODAL,
    HEADERS,
    IMAGE_FORMATS,
    MAX_BODY_BYTES,
    MAX_ITEMS,
    MODELS,
    PATH,
    PING_PATH,
    SERVICE,
)

__all__ = ["AsyncVikingClient", "VikingBase", "VikingClient"]

_BODY_OVERHEAD = 512
#: ``tokens_per_minute="auto"``: each model's default from the catalogue.
AUTO: Literal["auto"] = "auto"


def viking_auth(credentials: VikingCredentials, region: str) -> httpx.Auth:
    """The ``httpx.Auth`` for resolved credentials: the HMAC signer or the token."""
    if credentials.token is not None:
        return VikingTokenAuth(credentials.token)
    assert credentials.access_key is not None and credentials.secret_key is not None
    return VolcengineSignatureAuth(
        credentials.access_key,
        credentials.secret_key,
        region=region,
        service=SERVICE,
        session_token=credentials.session_token,
    )


class VikingBase(ClientCore[TransportT, HttpClientT]):
    """Configuration, quota pacing, validation and call planning of both Viking clients.

    Args:
        access_key, secret_key: Volcengine AK/SK for signed requests; default to
            ``VOLC_ACCESSKEY`` / ``VOLC_SECRETKEY``.
        token: a pre-issued token (``Authorization: token=...``); defaults to
            ``VIKING_TOKEN`` when no AK/SK pair is found.
        session_token: the session token of temporary (STS) credentials, signed into
            each request as ``X-Security-Token``; defaults to ``VOLC_SESSIONTOKEN``.
        base_url: defaults to ``VIKING_BASE_URL``, else ``https://api-vikingdb.volces.com``.
        region: the signing region (``cn-north-1``).
        timeout: seconds for each whole request (connect, send, receive); ``None``: unbounded.
        max_retries: retries per wire request (0 turns them off).
        max_concurrency: wire requests in flight at once.
        tokens_per_minute: the per-model token quota; ``"auto"`` (default): the
            model's catalogue default (120,000; 5,000 for doubao-embedding,
            doubao-embedding-large and doubao-embedding-vision); ``None``: no pacing.
        images_per_second: the image upload quota (provider: 15); ``None``: no pacing.
            One request carries at most half of it, so arrival jitter cannot trip it.
        budget: the shared quota state: a :class:`~mm_embed.budgets.Budget` or a URL
            (``memory://``, ``file:///path``, ``redis://host:port/db``); default
            ``MM_EMBED_BUDGET``, else this process's budget (shared by every client
            with the same credentials).
        max_body_bytes: the largest request body sent (default 4 MB).
        image_max_bytes: images above this are re-encoded and, if needed, downscaled
            (never below 0.30 of their sides) as the provider advises (default 1 MiB;
            ``None`` turns it off).
        max_image_pixels: images with more pixels are refused before decoding.
        strict_models: ``False`` sends a model, version or dimension the catalogue does
            not know (with a one-time warning) instead of refusing it.
        show_progress: show a tqdm bar over inputs.
        max_batch_size: the most inputs per wire request (default and cap: 100).
        http_client: an httpx client to use (not closed by us).
    """

    def __init__(
        self,
        access_key: str | SecretStr | None = None,
        secret_key: str | SecretStr | None = None,
        *,
        token: str | SecretStr | None = None,
        session_token: str | SecretStr | None = None,
        base_url: str | None = None,
        region: str = DEFAULT_REGION,
        timeout: float | None = DEFAULTS.timeout,
        max_retries: int = DEFAULTS.max_retries,
        max_concurrency: int = DEFAULTS.viking_max_concurrency,
        tokens_per_minute: int | Literal["auto"] | None = AUTO,
        images_per_second: float | None = DEFAULT_IMAGES_PER_SECOND,
        budget: Budget | str | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
        image_max_bytes: int | None = DEFAULTS.viking_image_max_bytes,
        max_image_pixels: int = DEFAULTS.max_image_pixels,
        strict_models: bool = True,
        show_progress: bool = False,
        max_batch_size: int | None = None,
        http_client: HttpClientT | None = None,
    ) -> None:
        credentials = resolve_viking_credentials(
            access_key, secret_key, token=token, session_token=session_token
        )
        self.region = region
        self.max_body_bytes = positive_int(max_body_bytes, "max_body_bytes", minimum=4096)
        self.image_max_bytes = (
            None if image_max_bytes is None else positive_int(image_max_bytes, "image_max_bytes")
        )
        self.image_limits = ImageLimits(
            max_pixels=positive_int(max_image_pixels, "max_image_pixels")
        )
        self.strict_models = bool(strict_models)
        self.max_items = batch_cap(max_batch_size, MAX_ITEMS)
        if tokens_per_minute not in (AUTO, None):
            tokens_per_minute = positive_int(tokens_per_minute, "tokens_per_minute")
        self.tokens_per_minute = tokens_per_minute
        ips = optional_positive(images_per_second, "images_per_second")
        # At most half a second's images per request, and a burst of one request: a
        # request arriving a little early (network jitter) still finds the provider's
        # per-second bucket holding enough.
        self._images_per_call = max(1, int(ips // 2)) if ips else None
        self._images_quota = (
            Quota("images", ips, float(self._images_per_call))
            if ips and self._images_per_call
            else None
        )
        self._setup(
            transport_settings(
                resolve_str(base_url, EnvVar.VIKING_BASE_URL, DEFAULT_BASE_URL) or DEFAULT_BASE_URL,
                viking_auth(credentials, region),
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

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f", region={self.region!r})"

    # ------------------------------------------------------------------ quota

    def tokens_quota(self, model: str) -> Quota | None:
        """The token quota of ``model`` (the provider counts per model), or ``None``."""
        if self.tokens_per_minute is None:
            return None
        if self.tokens_per_minute == AUTO:
            spec = MODELS.get(model)
            amount = spec.default_tokens_per_minute if spec else DEFAULT_TOKENS_PER_MINUTE
        else:
            amount = self.tokens_per_minute
        return Quota.per_minute(f"tokens:{model}", amount)

    def _pacer(self, call: PlannedCall, model: str) -> Pacer | None:
        charges: list[Charge] = []
        tokens = self.tokens_quota(model)
        if tokens is not None:
            charges.append((tokens, call.tokens, _billed_tokens))
        if self._images_quota is not None and call.images:
            charges.append((self._images_quota, call.images, None))
        return CallPacer(self.budget, self.account, charges) if charges else None

    # ------------------------------------------------------------------ loading

    def _image(self, source: ImageSource, field: str, index: int) -> PreparedImage:
        prepared = prepare_image(source, field=field, index=index, limits=self.image_limits)
        prepared = reencode_unless(prepared, IMAGE_FORMATS)
        if self.image_max_bytes is not None:
            prepared = fit_image(
                prepared,
                self.image_max_bytes,
                field=field,
                index=index,
                reason=f"image_max_bytes={self.image_max_bytes} (the provider advises under 1 MB)",
            )
        max_media = self.max_body_bytes - _BODY_OVERHEAD - 1024
        return fit_image(prepared, max_media, field=field, index=index, base64_size=True)

    def _load(self, item: object, index: int) -> object:
        """``item`` with its images and videos read and checked (files are read here)."""
        if isinstance(item, ImageItem):
            return ImageItem(self._image(item.image, "inputs", index))
        if isinstance(item, TextImageItem):
            return TextImageItem(item.text, self._image(item.image, "inputs", index))
        if not isinstance(item, FullModalItem):
            return item
        where = f"inputs[{index}].parts"
        parts: list[str | TextItem | ImageItem | VideoItem] = []
        try:
            for j, part in enumerate(proto.full_modal_parts(item, index)):
                if isinstance(part, ImageItem):
                    part = ImageItem(self._image(part.image, where, j))
                elif isinstance(part, VideoItem):
                    part = VideoItem(prepare_video(part.video, field=where, index=j), part.fps)
                parts.append(part)
        except InputError as error:
            error.index = index
            error.input_indices = error.failed_indices = (index,)
            raise
        return FullModalItem(parts)

    # ------------------------------------------------------------------ planning

    def _plan(
        self,
        inputs: Sequence[Item],
        *,
        model: str,
        model_version: str | None,
        dimension: int | None,
        return_dense: bool,
        return_sparse: bool | None,
        return_token_usage: bool,
        return_model_token_usage: bool,
    ) -> Job:
        if isinstance(inputs, (str, bytes)) or not isinstance(inputs, Sequence):
            raise InputError(
                "inputs must be a list (wrap a single input in a list)", field="inputs"
            )
        request = proto.resolve_request(
            model=model,
            model_version=model_version,
            dimension=dimension,
            return_dense=return_dense,
            return_sparse=return_sparse,
            # The budget settles with the reply's usage, so ask for it when pacing tokens.
            return_token_usage=return_token_usage or self.tokens_per_minute is not None,
            return_model_token_usage=return_model_token_usage,
            strict=self.strict_models,
        )
        for note in request.notes:
            warn_once(note)
        for i, item in enumerate(inputs):
            proto.check_kind(item, i, request)  # cheap checks before any file is read
        items = [proto.build_item(self._load(item, i), i, request) for i, item in enumerate(inputs)]
        calls = [
            PlannedCall(
                items=np.asarray(chunk, dtype=np.int64),
                rows=np.asarray(chunk, dtype=np.int64),
                body=dumps(proto.build_body(request, [items[i] for i in chunk])),
                tokens=sum(items[i].est_tokens for i in chunk),
                images=sum(items[i].images for i in chunk),
            )
            for chunk in self._chunks(items)
        ]

        def parser(call: PlannedCall) -> Parser[EmbeddingResult]:
            def parse(status: int, content: bytes, retry_after: float | None) -> EmbeddingResult:
                return proto.parse_response(
                    status,
                    content,
                    expected_rows=len(call.rows),
                    request=request,
                    retry_after=retry_after,
                )

            return parse

        return Job(
            calls=calls,
            path=PATH,
            parser=parser,
            pacer=lambda call: self._pacer(call, request.spec.name),
            empty=_empty(request),
            n_inputs=len(inputs),
            desc=model,
        )

    def _chunks(self, items: Sequence[proto.WireItem]) -> list[list[int]]:
        """Wire requests as lists of input positions, in input order. A full-modal item
        goes alone (exactly one per request, never mixed)."""
        singles = [i for i, w in enumerate(items) if w.data_type == FULL_MODAL]
        group = [i for i, w in enumerate(items) if w.data_type != FULL_MODAL]
        chunks = (
            [
                [group[k] for k in chunk]
                for chunk in plan_chunks(
                    [items[i].encoded_size for i in group],
                    max_items=self.max_items,
                    max_bytes=self.max_body_bytes,
                    overhead=_BODY_OVERHEAD,
                    field="inputs",
                    indices=group,
                    # More images in one request than the images quota allows per request
                    # could never keep to it, however long the budget waits.
                    weights=[items[i].images for i in group],
                    max_weight=self._images_per_call,
                )
            ]
            if group
            else []
        )
        for i in singles:
            if items[i].encoded_size + _BODY_OVERHEAD > self.max_body_bytes:
                raise InputError(
                    "full-modal item is over the body limit once encoded",
                    field="inputs",
                    index=i,
                    limit=f"{self.max_body_bytes} bytes",
                )
            chunks.append([i])
        return sorted(chunks, key=lambda chunk: chunk[0])


def _billed_tokens(result: object) -> float | None:
    assert isinstance(result, EmbeddingResult)
    return float(result.usage.total_tokens) if result.usage.total_tokens else None


def _empty(request: proto.ResolvedRequest) -> EmbeddingResult:
    result = EmbeddingResult.empty(("float",) if request.return_dense else ())
    result.sparse = [] if request.return_sparse else None
    result.model = request.spec.name
    return result


class VikingClient(SyncClientCore, VikingBase[SyncTransport, httpx.Client]):
    __doc__ = (
        "Blocking Viking embedding v2 client.\n" + (VikingBase.__doc__ or "").split("\n", 1)[1]
    )

    def embed(
        self,
        inputs: Sequence[Item],
        *,
        model: str,
        model_version: str | None = None,
        dimension: int | None = None,
        return_dense: bool = True,
        return_sparse: bool | None = None,
        return_token_usage: bool = False,
        return_model_token_usage: bool = False,
    ) -> EmbeddingResult:
        """Embed texts (``str``), :class:`~mm_embed.ImageItem`, :class:`~mm_embed.TextImageItem`
        and :class:`~mm_embed.FullModalItem` inputs with ``model``: one row per input, in
        order. ``return_sparse=None`` follows the model (on for sparse models);
        ``return_model_token_usage`` fills ``result.model_usage`` (usage per underlying
        model of the ``*-and-m3`` hybrids)."""
        return self._run(
            self._plan(
                inputs,
                model=model,
                model_version=model_version,
                dimension=dimension,
                return_dense=return_dense,
                return_sparse=return_sparse,
                return_token_usage=return_token_usage,
                return_model_token_usage=return_model_token_usage,
            )
        )

    def ping(self) -> bool:
        """``True`` when the service answers its ping route with HTTP 200."""
        try:
            return self.transport.get(PING_PATH).status_code == 200
        except httpx.HTTPError:
            return False


class AsyncVikingClient(AsyncClientCore, VikingBase[AsyncTransport, httpx.AsyncClient]):
    __doc__ = (
        "Asyncio Viking embedding v2 client; methods are awaited twins of VikingClient's.\n"
        + (VikingBase.__doc__ or "").split("\n", 1)[1]
    )

    async def embed(
        self,
        inputs: Sequence[Item],
        *,
        model: str,
        model_version: str | None = None,
        dimension: int | None = None,
        return_dense: bool = True,
        return_sparse: bool | None = None,
        return_token_usage: bool = False,
        return_model_token_usage: bool = False,
    ) -> EmbeddingResult:
        """Async twin of :meth:`VikingClient.embed` (files are read off the event loop)."""
        job = await asyncio.to_thread(
            self._plan,
            inputs,
            model=model,
            model_version=model_version,
            dimension=dimension,
            return_dense=return_dense,
            return_sparse=return_sparse,
            return_token_usage=return_token_usage,
            return_model_token_usage=return_model_token_usage,
        )
        return await self._run(job)

    async def ping(self) -> bool:
        """``True`` when the service answers its ping route with HTTP 200."""
        try:
            return (await self.transport.get(PING_PATH)).status_code == 200
        except httpx.HTTPError:
            return False
