"""How a bulk run talks to each provider: which items go in one call, how they are
turned into client inputs, and what a call is expected to cost (for budgets and the
per-item token shares)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Protocol

from PIL import Image

from .. import (
    VIKING_MODELS,
    AsyncFGClipClient,
    AsyncVikingClient,
    EmbeddingResult,
    FGClipClient,
    ImageItem,
    TextImageItem,
    VikingClient,
)
from ..budgets import resolve_budget
from ..errors import ConfigurationError, InputError, MMEmbedError
from ._core import (
    FGCLIP_MODEL,
    IMAGE_TOKEN_ESTIMATE,
    Quota,
    TransportStats,
    VikingItem,
    estimate_tokens,
    resolve_viking_request,
)
from .items import BulkItem
from .options import EngineOptions

__all__ = ["Provider", "Unsupported", "call_client", "make_provider"]

#: FG-CLIP's documented dimension, used only for an output with no rows at all.
_FGCLIP_DIMENSION = 768


class Unsupported(Exception):
    """The provider cannot embed this item at all (rejected, not sent)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


class Provider(Protocol):
    """What the engine needs from a provider."""

    name: str
    model: str
    max_batch: int
    dense: bool
    sparse: bool
    #: Dense dimension, when known before the first reply.
    dimension: int | None
    #: The dimension an output with no rows at all is given.
    fallback_dimension: int
    #: Adds a ``box`` column (FG-CLIP: one row per box).
    boxes: bool
    max_concurrency: int
    stats: TransportStats

    def kind(self, item: BulkItem) -> str:
        """The call kind of ``item`` (items of one kind share calls); raises :class:`Unsupported`."""

    def embed(self, kind: str, items: Sequence[BulkItem]) -> EmbeddingResult:
        """Embed ``items`` (all of ``kind``) in one client call."""

    def weight(self, item: BulkItem) -> int:
        """Estimated tokens of ``item``."""


def _weight(item: BulkItem) -> int:
    tokens = estimate_tokens(item.text) if item.text else 0
    return tokens + (IMAGE_TOKEN_ESTIMATE if item.image is not None else 0)


def call_client(call: Callable[[], EmbeddingResult]) -> EmbeddingResult:
    """Run one client call. An image Pillow refuses as a decompression bomb while the
    client decodes it (a source the engine could not look at first) becomes the
    ``InputError`` the engine isolates and rejects, never a crash of the run."""
    try:
        return call()
    except Image.DecompressionBombError as exc:
        raise InputError(f"image too large to decode safely: {exc}", field="images") from exc


class _Viking:
    name = "viking"
    boxes = False

    def __init__(self, client: VikingClient, options: EngineOptions) -> None:
        if not options.model:
            raise ConfigurationError(
                "Viking needs a model (e.g. doubao-embedding, bge-m3); known: "
                + ", ".join(sorted(VIKING_MODELS))
            )
        if options.tokens_per_minute is not None:
            raise ConfigurationError(
                "the Viking budget is the client's: VikingClient(tokens_per_minute=...)"
            )
        # Validates model, version, dimension and sparse support once, before reading.
        request = resolve_viking_request(
            model=options.model,
            model_version=options.model_version,
            dimension=options.dimension,
            return_dense=options.dense,
            return_sparse=options.sparse,
        )
        self.client = client
        self.model, self.model_version = options.model, options.model_version
        self.dense, self.sparse = options.dense, request.return_sparse
        self.requested_dimension = options.dimension
        dimension = options.dimension or request.version.dimension
        self.dimension = dimension if self.dense else None
        self.fallback_dimension = self.dimension or 0
        self.max_batch = client.max_items
        self.max_concurrency = client.max_concurrency
        self.stats = client.transport.stats

    def kind(self, item: BulkItem) -> str:
        if item.boxes:
            raise Unsupported(
                "boxes", "Viking has no box (region) features; use the fgclip provider for boxes"
            )
        return "viking"

    def embed(self, kind: str, items: Sequence[BulkItem]) -> EmbeddingResult:
        inputs: list[VikingItem] = []
        for item in items:
            if item.image is None:
                inputs.append(item.text or "")
            elif item.text is None:
                inputs.append(ImageItem(item.image))
            else:
                inputs.append(TextImageItem(item.text, item.image))
        return call_client(
            lambda: self.client.embed(
                inputs,
                model=self.model,
                model_version=self.model_version,
                dimension=self.requested_dimension,
                return_dense=self.dense,
                return_sparse=self.sparse,
                return_token_usage=True,
            )
        )

    weight = staticmethod(_weight)


class _FGClip:
    name = "fgclip"
    boxes = True
    sparse = False
    dense = True

    def __init__(self, client: FGClipClient, options: EngineOptions) -> None:
        if options.model not in (None, FGCLIP_MODEL):
            raise ConfigurationError(
                f"FG-CLIP has one model, {FGCLIP_MODEL!r}; got model {options.model!r}"
            )
        for name in ("model_version", "dimension"):
            if getattr(options, name) is not None:
                raise ConfigurationError(f"FG-CLIP takes no {name} (the model fixes it)")
        if options.sparse:
            raise ConfigurationError(
                "FG-CLIP has no sparse vectors; sparse needs Viking (bge-m3, *-and-m3)"
            )
        if not options.dense:
            raise ConfigurationError("FG-CLIP returns dense vectors only; dense cannot be off")
        self.client = client
        self.model = FGCLIP_MODEL
        # Read from the first reply (the provider may change it), then checked on each.
        self.dimension: int | None = None
        self.fallback_dimension = _FGCLIP_DIMENSION
        self.max_batch = client.max_items
        self.max_concurrency = client.max_concurrency
        self.stats = client.transport.stats
        # The FG-CLIP client paces no tokens of its own; a bulk run may, in the client's
        # (account-wide) budget.
        per_minute = options.tokens_per_minute
        self.quota = Quota.per_minute(f"tokens:{self.model}", per_minute) if per_minute else None
        self._lock = threading.Lock()

    def kind(self, item: BulkItem) -> str:
        if item.text is not None and item.image is not None:
            raise Unsupported(
                "image",
                "FG-CLIP embeds a text or an image per item, not both; split it into two items",
            )
        return "text" if item.image is None else "image"

    def embed(self, kind: str, items: Sequence[BulkItem]) -> EmbeddingResult:
        estimate = sum(_weight(i) for i in items)
        budget, account = self.client.budget, self.client.account
        ticket = budget.acquire(account, self.quota, estimate) if self.quota else None
        used = 0
        try:
            result = call_client(lambda: self._embed(kind, items))
            used = result.usage.total_tokens
            return result
        except MMEmbedError as error:
            if error.partial_result is not None:
                used = error.partial_result.usage.total_tokens
            raise
        finally:
            if ticket is not None:
                budget.settle(ticket, used)

    def _embed(self, kind: str, items: Sequence[BulkItem]) -> EmbeddingResult:
        if kind == "text":
            return self.client.embed_texts([i.text or "" for i in items])
        boxes = [i.boxes for i in items] if any(i.boxes for i in items) else None
        return self.client.embed_images([i.image for i in items], boxes=boxes)  # type: ignore[misc]

    weight = staticmethod(_weight)


def quota_per_minute(client: object, model: str | None) -> int | None:
    """The tokens per minute a Viking client paces ``model`` at (for the summary)."""
    if isinstance(client, VikingClient) and model:
        quota = client.tokens_quota(model)
        return round(quota.capacity) if quota is not None else None
    return None


def make_provider(client: object, options: EngineOptions) -> Provider:
    """The provider adapter for a blocking client; checks ``options`` against it."""
    if isinstance(client, (AsyncVikingClient, AsyncFGClipClient)):
        raise TypeError(
            "bulk embedding runs calls on threads: pass the blocking VikingClient or FGClipClient"
        )
    if not isinstance(client, (VikingClient, FGClipClient)):
        raise TypeError(f"expected a VikingClient or FGClipClient, got {type(client).__name__}")
    if options.budget is not None:
        client.budget = resolve_budget(options.budget)
    if isinstance(client, VikingClient):
        return _Viking(client, options)
    return _FGClip(client, options)
