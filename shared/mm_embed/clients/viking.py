"""Viking embedding v2 clients: :class:`VikingClient` (threads) and
:class:`AsyncVikingClient` (asyncio), sharing :class:`_VikingCore`."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import httpx
import numpy as np
from pydantic import SecretStr

from ..auth import VikingTokenAuth, VolcengineSignatureAuth
from ..batching import PlannedCall, arun_calls, plan_chunks, run_calls
from ..errors import ConfigurationError, InputError, MMEmbedError
from ..inputs import VikingItem
from ..protocol import viking as proto
from ..protocol._json import dumps
from ..ratelimit import RateLimiter
from ..results import EmbeddingResult, Usage, UsageMeter
from ..retry import RetryPolicy
from ..transport import (
    DEFAULT_TIMEOUT,
    AsyncTransport,
    AttemptHooks,
    Parser,
    SyncTransport,
    _TransportCore,
)
from ._config import env_secret, env_str, positive_int

__all__ = ["AsyncVikingClient", "VikingClient"]

_BODY_OVERHEAD = 512
_HEADERS = {"Accept": "application/json", "Content-Type": "application/json"}


class _VikingCore:
    """Configuration, budgets, validation and call planning shared by both Viking clients."""

    transport: _TransportCore

    def _configure(
        self,
        access_key: str | SecretStr | None,
        secret_key: str | SecretStr | None,
        token: str | SecretStr | None,
        base_url: str | None,
        region: str,
        max_retries: int,
        max_concurrency: int,
        tokens_per_minute: int | None,
        images_per_second: float | None,
        max_body_bytes: int,
        show_progress: bool,
        max_batch_size: int | None = None,
    ) -> tuple[str, httpx.Auth, RetryPolicy]:
        auth: httpx.Auth
        explicit_token = token.get_secret_value() if isinstance(token, SecretStr) else token
        if explicit_token:
            auth = VikingTokenAuth(explicit_token)
        else:
            ak = env_secret(access_key, "VOLC_ACCESSKEY")
            sk = env_secret(secret_key, "VOLC_SECRETKEY")
            env_token = env_secret(None, "VIKING_TOKEN")
            if ak and sk:
                auth = VolcengineSignatureAuth(ak, sk, region=region, service=proto.SERVICE)
            elif (ak or sk) and not env_token:
                missing = "VOLC_SECRETKEY (secret_key=)" if ak else "VOLC_ACCESSKEY (access_key=)"
                raise ConfigurationError(f"Viking credentials incomplete: {missing} is missing")
            elif env_token:
                auth = VikingTokenAuth(env_token)
            else:
                raise ConfigurationError(
                    "Viking credentials missing: pass access_key= and secret_key= (or token=), "
                    "or set VOLC_ACCESSKEY and VOLC_SECRETKEY (or VIKING_TOKEN)"
                )
        self.base_url = (
            env_str(base_url, "VIKING_BASE_URL", proto.DEFAULT_BASE_URL) or proto.DEFAULT_BASE_URL
        )
        self.region = region
        self.max_concurrency = positive_int(max_concurrency, "max_concurrency")
        self.max_body_bytes = positive_int(max_body_bytes, "max_body_bytes", minimum=4096)
        self.show_progress = show_progress
        self._meter = UsageMeter()
        # A caller's smaller batch is honoured; a larger one is capped at the wire limit.
        self.max_items = (
            proto.MAX_ITEMS
            if max_batch_size is None
            else min(positive_int(max_batch_size, "max_batch_size"), proto.MAX_ITEMS)
        )
        self.tokens_per_minute = tokens_per_minute
        self._token_limiters: dict[str, RateLimiter] = {}
        self._limiters_lock = threading.Lock()
        # At most half a second's images per request, and a burst of one request: a
        # request arriving a little early (network jitter) still finds the provider's
        # per-second bucket holding enough. Full-second requests would need the bucket
        # exactly full on arrival, and any jitter turns them into 1000029 refusals.
        self._images_per_call = max(1, int(images_per_second // 2)) if images_per_second else None
        self.image_limiter = (
            RateLimiter(images_per_second, self._images_per_call)
            if images_per_second and self._images_per_call
            else None
        )
        retry = RetryPolicy(max_retries=positive_int(max_retries, "max_retries", minimum=0))
        return self.base_url, auth, retry

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, region={self.region!r}, max_concurrency={self.max_concurrency})"

    @property
    def usage(self) -> Usage:
        """Tokens and images billed over this client's life (every successful wire call)."""
        return self._meter.total

    def token_limiter(self, model: str) -> RateLimiter | None:
        """The tokens-per-minute budget of ``model`` (the provider counts per model)."""
        if not self.tokens_per_minute:
            return None
        # Worker threads ask at once on a client's first call: one budget, not one each.
        with self._limiters_lock:
            if model not in self._token_limiters:
                self._token_limiters[model] = RateLimiter.per_minute(self.tokens_per_minute)
            return self._token_limiters[model]

    def _plan(
        self,
        inputs: Sequence[VikingItem],
        model: str,
        model_version: str | None,
        dimension: int | None,
        return_dense: bool,
        return_sparse: bool | None,
        return_token_usage: bool,
    ) -> tuple[list[PlannedCall], proto.ResolvedRequest]:
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
            # The budget is corrected with the reply's usage, so ask for it when budgeting.
            return_token_usage=return_token_usage or bool(self.tokens_per_minute),
        )
        max_media = self.max_body_bytes - _BODY_OVERHEAD - 1024
        items = [
            proto.build_item(item, i, request, max_media_bytes=max_media)
            for i, item in enumerate(inputs)
        ]
        calls: list[PlannedCall] = []
        # full_modal_seq goes alone (exactly one item per request, never mixed).
        singles = [i for i, w in enumerate(items) if w.data_type == proto.FULL_MODAL]
        group = [i for i, w in enumerate(items) if w.data_type != proto.FULL_MODAL]
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
                    # More images in one request than a second's budget could never
                    # keep to it, however long the limiter waits before sending.
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
        chunks.sort(key=lambda c: c[0])
        for chunk in chunks:
            wire = [items[i] for i in chunk]
            idx = np.asarray(chunk, dtype=np.int64)
            calls.append(
                PlannedCall(
                    items=idx,
                    rows=idx,
                    body=dumps(proto.build_body(request, wire)),
                    tokens=sum(w.est_tokens for w in wire),
                    images=sum(w.images for w in wire),
                )
            )
        return calls, request

    def _parser(self, call: PlannedCall, request: proto.ResolvedRequest) -> Parser[EmbeddingResult]:
        def parse(status: int, content: bytes, retry_after: float | None) -> EmbeddingResult:
            return proto.parse_response(
                status,
                content,
                expected_rows=len(call.rows),
                return_dense=request.return_dense,
                return_sparse=request.return_sparse,
                retry_after=retry_after,
                model=request.spec.name,
            )

        return parse

    def _hooks(
        self, call: PlannedCall, request: proto.ResolvedRequest
    ) -> AttemptHooks[EmbeddingResult]:
        tokens = self.token_limiter(request.spec.name)
        images = self.image_limiter if call.images else None
        if tokens is None and images is None:
            return AttemptHooks()

        # Tickets of the current attempt: tokens first; images are taken only once the
        # tokens are due, so the image budget sees (about) the real sending time.
        tickets: dict[str, float] = {}

        def before() -> float:
            if tokens is not None:
                if "tokens" not in tickets:
                    tickets["tokens"] = tokens.take(call.tokens)
                wait = tokens.due_in(tickets["tokens"])
                if wait > 0:
                    return wait
            if images is not None:
                if "images" not in tickets:
                    tickets["images"] = images.take(call.images)
                wait = images.due_in(tickets["images"])
                if wait > 0:
                    return wait
            tickets.clear()  # a retry takes fresh ones
            return 0.0

        def after(result: EmbeddingResult | None, error: MMEmbedError | None) -> None:
            if tokens is None:
                return
            if result is not None and result.usage.total_tokens:
                tokens.adjust(result.usage.total_tokens - call.tokens)
            elif error is not None and getattr(error, "code", None) != proto.RATE_LIMITED_CODE:
                tokens.adjust(
                    -call.tokens
                )  # nothing was consumed; a quota refusal keeps it as backoff

        return AttemptHooks(before=before, after=after)


_DOC_ARGS = """
    Args:
        access_key, secret_key: Volcengine AK/SK for signed requests; default to
            ``VOLC_ACCESSKEY`` / ``VOLC_SECRETKEY``.
        token: a pre-issued token (``Authorization: token=...``); defaults to
            ``VIKING_TOKEN`` when no AK/SK are found.
        base_url: defaults to ``VIKING_BASE_URL``, else ``https://api-vikingdb.volces.com``.
        region: the signing region (``cn-north-1``).
        timeout, max_retries, max_concurrency: per request; 0 retries turns them off.
        tokens_per_minute: the per-model token budget (provider: 120,000); ``None`` = off.
        images_per_second: the image upload budget (provider: 15); ``None`` = off. One
            request carries at most half of it, so arrival jitter cannot trip the quota.
        max_body_bytes: the largest request body sent (default 4 MB).
        show_progress: show a tqdm bar over inputs.
        max_batch_size: the most inputs per wire request (default and cap: the provider's 100).
        http_client: an httpx client to use (not closed by us).
"""


class VikingClient(_VikingCore):
    __doc__ = "Blocking Viking embedding v2 client.\n" + _DOC_ARGS

    def __init__(
        self,
        access_key: str | SecretStr | None = None,
        secret_key: str | SecretStr | None = None,
        *,
        token: str | SecretStr | None = None,
        base_url: str | None = None,
        region: str = proto.DEFAULT_REGION,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        max_retries: int = 3,
        max_concurrency: int = 8,
        tokens_per_minute: int | None = proto.DEFAULT_TOKENS_PER_MINUTE,
        images_per_second: float | None = proto.DEFAULT_IMAGES_PER_SECOND,
        max_body_bytes: int = proto.MAX_BODY_BYTES,
        show_progress: bool = False,
        max_batch_size: int | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        url, auth, retry = self._configure(
            access_key,
            secret_key,
            token,
            base_url,
            region,
            max_retries,
            max_concurrency,
            tokens_per_minute,
            images_per_second,
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

    def embed(
        self,
        inputs: Sequence[VikingItem],
        *,
        model: str,
        model_version: str | None = None,
        dimension: int | None = None,
        return_dense: bool = True,
        return_sparse: bool | None = None,
        return_token_usage: bool = False,
    ) -> EmbeddingResult:
        """Embed texts (``str``), :class:`ImageItem`, :class:`TextImageItem` and
        :class:`FullModalItem` inputs with ``model``. ``return_sparse=None`` follows the
        model (on for sparse models). One row per input, in order."""
        calls, request = self._plan(
            inputs, model, model_version, dimension, return_dense, return_sparse, return_token_usage
        )
        transport = self.transport
        assert isinstance(transport, SyncTransport)

        def send(call: PlannedCall) -> EmbeddingResult:
            return transport.post(
                proto.PATH, call.body, self._parser(call, request), self._hooks(call, request)
            )

        return run_calls(
            calls,
            send,
            n_inputs=len(inputs),
            empty=_empty(request),
            max_concurrency=self.max_concurrency,
            show_progress=self.show_progress,
            meter=self._meter,
            desc=model,
        )

    def ping(self) -> bool:
        """``True`` when the service answers its ping route with HTTP 200."""
        assert isinstance(self.transport, SyncTransport)
        try:
            return self.transport.get(proto.PING_PATH).status_code == 200
        except httpx.HTTPError:
            return False

    def close(self) -> None:
        self.transport.close()  # type: ignore[attr-defined]

    def __enter__(self) -> VikingClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncVikingClient(_VikingCore):
    __doc__ = (
        "Asyncio Viking embedding v2 client; methods are awaited twins of VikingClient's.\n"
        + _DOC_ARGS
    )

    def __init__(
        self,
        access_key: str | SecretStr | None = None,
        secret_key: str | SecretStr | None = None,
        *,
        token: str | SecretStr | None = None,
        base_url: str | None = None,
        region: str = proto.DEFAULT_REGION,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        max_retries: int = 3,
        max_concurrency: int = 8,
        tokens_per_minute: int | None = proto.DEFAULT_TOKENS_PER_MINUTE,
        images_per_second: float | None = proto.DEFAULT_IMAGES_PER_SECOND,
        max_body_bytes: int = proto.MAX_BODY_BYTES,
        show_progress: bool = False,
        max_batch_size: int | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        url, auth, retry = self._configure(
            access_key,
            secret_key,
            token,
            base_url,
            region,
            max_retries,
            max_concurrency,
            tokens_per_minute,
            images_per_second,
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

    async def embed(
        self,
        inputs: Sequence[VikingItem],
        *,
        model: str,
        model_version: str | None = None,
        dimension: int | None = None,
        return_dense: bool = True,
        return_sparse: bool | None = None,
        return_token_usage: bool = False,
    ) -> EmbeddingResult:
        """Async twin of :meth:`VikingClient.embed`."""
        import asyncio

        calls, request = await asyncio.to_thread(
            self._plan,
            inputs,
            model,
            model_version,
            dimension,
            return_dense,
            return_sparse,
            return_token_usage,
        )
        transport = self.transport
        assert isinstance(transport, AsyncTransport)

        async def send(call: PlannedCall) -> EmbeddingResult:
            return await transport.post(
                proto.PATH, call.body, self._parser(call, request), self._hooks(call, request)
            )

        return await arun_calls(
            calls,
            send,
            n_inputs=len(inputs),
            empty=_empty(request),
            max_concurrency=self.max_concurrency,
            show_progress=self.show_progress,
            meter=self._meter,
            desc=model,
        )

    async def ping(self) -> bool:
        """``True`` when the service answers its ping route with HTTP 200."""
        assert isinstance(self.transport, AsyncTransport)
        try:
            return (await self.transport.get(proto.PING_PATH)).status_code == 200
        except httpx.HTTPError:
            return False

    async def aclose(self) -> None:
        await self.transport.aclose()  # type: ignore[attr-defined]

    async def __aenter__(self) -> AsyncVikingClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _empty(request: proto.ResolvedRequest) -> EmbeddingResult:
    result = EmbeddingResult.empty(("float",) if request.return_dense else ())
    result.sparse = [] if request.return_sparse else None
    result.model = request.spec.name
    return result
