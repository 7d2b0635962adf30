"""How a bulk run talks to each provider: which items go in one call, how they are
turned into client inputs, and what a call is expected to cost (for budgets and the
per-item token shares)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Protocol

from ..errors import ConfigurationError, MMEmbedError
from ..inputs import ImageItem, Item, TextImageItem
from ..providers.fgclip import AsyncFGClipClient, FGClipClient
from ..providers.fgclip import catalogue as fgclip_catalogue
from ..providers.viking import AsyncVikingClient, VikingClient
from ..providers.viking import catalogue as viking_catalogue
from ..providers.viking import protocol as viking_proto
from ..ratelimit import RateLimiter
from ..results import EmbeddingResult
from ..transport import TransportStats
from .items import BulkItem

__all__ = ["Provider", "Unsupported", "make_provider"]

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
    tokens = viking_proto.estimate_tokens(item.text) if item.text else 0
    return tokens + (viking_proto.IMAGE_TOKEN_ESTIMATE if item.image is not None else 0)


class _Viking:
    name = "viking"
    boxes = False

    def __init__(
        self,
        client: VikingClient,
        *,
        model: str | None,
        model_version: str | None,
        dimension: int | None,
        dense: bool,
        sparse: bool,
    ) -> None:
        if not model:
            raise ConfigurationError(
                "Viking needs a model (e.g. doubao-embedding, bge-m3); known: "
                + ", ".join(sorted(viking_catalogue.MODELS))
            )
        # Validates model, version, dimension and sparse support once, before reading.
        request = viking_proto.resolve_request(
            model=model,
            model_version=model_version,
            dimension=dimension,
            return_dense=dense,
            return_sparse=sparse,
        )
        self.client = client
        self.model, self.model_version = model, model_version
        self.dense, self.sparse = dense, request.return_sparse
        self.requested_dimension = dimension
        self.dimension = (dimension or request.version.dimension) if dense else None
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
        inputs: list[Item] = []
        for item in items:
            if item.image is None:
                inputs.append(item.text or "")
            elif item.text is None:
                inputs.append(ImageItem(item.image))
            else:
                inputs.append(TextImageItem(item.text, item.image))
        return self.client.embed(
            inputs,
            model=self.model,
            model_version=self.model_version,
            dimension=self.requested_dimension,
            return_dense=self.dense,
            return_sparse=self.sparse,
            return_token_usage=True,
        )

    weight = staticmethod(_weight)


class _FGClip:
    name = "fgclip"
    boxes = True
    sparse = False
    dense = True

    def __init__(
        self,
        client: FGClipClient,
        *,
        model: str | None,
        model_version: str | None,
        dimension: int | None,
        dense: bool,
        sparse: bool,
        tokens_per_minute: int | None,
    ) -> None:
        if model not in (None, fgclip_catalogue.DEFAULT_MODEL):
            raise ConfigurationError(
                f"FG-CLIP has one model, {fgclip_catalogue.DEFAULT_MODEL!r}; got model {model!r}"
            )
        for name, value in (("model_version", model_version), ("dimension", dimension)):
            if value is not None:
                raise ConfigurationError(f"FG-CLIP takes no {name} (the model fixes it)")
        if sparse:
            raise ConfigurationError(
                "FG-CLIP has no sparse vectors; sparse needs Viking (bge-m3, *-and-m3)"
            )
        if not dense:
            raise ConfigurationError("FG-CLIP returns dense vectors only; dense cannot be off")
        self.client = client
        self.model = fgclip_catalogue.DEFAULT_MODEL
        # Read from the first reply (the provider may change it), then checked on each.
        self.dimension: int | None = None
        self.fallback_dimension = _FGCLIP_DIMENSION
        self.max_batch = client.max_items
        self.max_concurrency = client.max_concurrency
        self.stats = client.transport.stats
        # The FG-CLIP client has no token budget of its own; a bulk run may set one.
        self.limiter = RateLimiter.per_minute(tokens_per_minute) if tokens_per_minute else None
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
        if self.limiter is not None:
            self.limiter.acquire(estimate)
        used = 0
        try:
            if kind == "text":
                result = self.client.embed_texts([i.text or "" for i in items])
            else:
                boxes = [i.boxes for i in items] if any(i.boxes for i in items) else None
                result = self.client.embed_images([i.image for i in items], boxes=boxes)  # type: ignore[misc]
            used = result.usage.total_tokens
            return result
        except MMEmbedError as error:
            if error.partial_result is not None:
                used = error.partial_result.usage.total_tokens
            raise
        finally:
            if self.limiter is not None:
                self.limiter.adjust(used - estimate)

    weight = staticmethod(_weight)


def make_provider(
    client: object,
    *,
    model: str | None = None,
    model_version: str | None = None,
    dimension: int | None = None,
    dense: bool = True,
    sparse: bool = False,
    tokens_per_minute: int | None = None,
) -> Provider:
    """The provider adapter for a blocking client."""
    if isinstance(client, (AsyncVikingClient, AsyncFGClipClient)):
        raise TypeError(
            "bulk embedding runs calls on threads: pass the blocking VikingClient or FGClipClient"
        )
    if isinstance(client, VikingClient):
        if tokens_per_minute is not None:
            raise ConfigurationError(
                "the Viking budget is the client's: VikingClient(tokens_per_minute=...)"
            )
        return _Viking(
            client,
            model=model,
            model_version=model_version,
            dimension=dimension,
            dense=dense,
            sparse=sparse,
        )
    if isinstance(client, FGClipClient):
        return _FGClip(
            client,
            model=model,
            model_version=model_version,
            dimension=dimension,
            dense=dense,
            sparse=sparse,
            tokens_per_minute=tokens_per_minute,
        )
    raise TypeError(f"expected a VikingClient or FGClipClient, got {type(client).__name__}")
