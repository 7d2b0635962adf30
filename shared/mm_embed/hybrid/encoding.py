"""Text encoders for hybrid stores: one provider call per batch gives both vector kinds.

An encoder turns texts into an :class:`Encoded` batch (a dense matrix and, when the model
has them, sparse vectors). :class:`VikingHybridEncoder` asks Viking for dense *and*
sparse in the same request (``return_dense=True, return_sparse=True``), so a hybrid
index costs one provider request per text, not two. :class:`FGClipEncoder` is dense only
and also embeds images and boxes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from ..inputs import ImageSource
from ..pairing import PairRequest, fetch_pairs
from ..providers.fgclip import FGClipClient
from ..providers.viking import VikingClient
from ..providers.viking import protocol as viking_proto
from ..results import EmbeddingResult, SparseVector

__all__ = [
    "Encoded",
    "FGClipEncoder",
    "TextEncoder",
    "VikingHybridEncoder",
]


@dataclass(frozen=True)
class Encoded:
    """A batch of texts encoded once: ``dense`` float32 ``(n, d)``, ``sparse`` or None,
    and the provider request ids it took (one per wire request)."""

    dense: npt.NDArray[np.float32]
    sparse: list[SparseVector] | None
    request_ids: tuple[str, ...] = ()

    def __len__(self) -> int:
        return int(self.dense.shape[0])


@runtime_checkable
class TextEncoder(Protocol):
    """What the hybrid stores need from an embedding model."""

    @property
    def name(self) -> str:
        """A short model name, recorded in collection metadata and errors."""
        ...

    @property
    def dimension(self) -> int | None:
        """The dense dimension when known before any call, else ``None``."""
        ...

    @property
    def has_sparse(self) -> bool:
        """Whether :meth:`encode_documents` returns sparse vectors."""
        ...

    def encode_documents(self, texts: Sequence[str]) -> Encoded:
        """Encode documents (one provider request per batch, both kinds at once)."""
        ...

    def encode_queries(self, texts: Sequence[str]) -> Encoded:
        """Encode queries."""
        ...


def _dense(result: EmbeddingResult) -> npt.NDArray[np.float32]:
    return np.asarray(result.embeddings, dtype=np.float32)


class VikingHybridEncoder:
    """Dense + sparse from one Viking request per batch.

    Args:
        client: a :class:`~mm_embed.VikingClient`.
        model: a Viking model; sparse vectors need a sparse model (``bge-m3``,
            ``doubao-embedding-and-m3``, ...).
        model_version: the model version (default: the provider's).
        dimension: a reduced dense dimension the model supports (default: its full one).
        sparse: ask for sparse vectors (default: when the model has them).
    """

    def __init__(
        self,
        client: VikingClient,
        model: str = "bge-m3",
        *,
        model_version: str | None = None,
        dimension: int | None = None,
        sparse: bool | None = None,
    ) -> None:
        #: What every request of this encoder asks for.
        self._request = PairRequest(model=model, model_version=model_version, dimension=dimension)
        resolved = viking_proto.resolve_request(
            **self._request, return_dense=True, return_sparse=sparse
        )
        self.client = client
        self.model = model
        self.model_version = model_version
        self._dimension = resolved.expected_dimension or resolved.version.dimension
        self._sparse = resolved.return_sparse

    def __repr__(self) -> str:
        return (
            f"VikingHybridEncoder(model={self.model!r}, dimension={self._dimension}, "
            f"sparse={self._sparse})"
        )

    @property
    def name(self) -> str:
        return self.model

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def has_sparse(self) -> bool:
        return self._sparse

    def encode_documents(self, texts: Sequence[str]) -> Encoded:
        if self._sparse:
            result = fetch_pairs(self.client, texts, **self._request)
        else:
            result = self.client.embed(list(texts), **self._request, return_sparse=False)
        return Encoded(
            _dense(result), result.sparse if self._sparse else None, tuple(result.request_ids)
        )

    def encode_queries(self, texts: Sequence[str]) -> Encoded:
        # Viking embeds queries and documents alike (no instruction prefix in v2).
        return self.encode_documents(texts)


class FGClipEncoder:
    """FG-CLIP as a hybrid-store encoder: dense texts, images and boxes, no sparse.

    ``box_queries=True`` makes :meth:`encode_queries` return the texts' *local* features
    (``text_box_flag``), the ones to compare with box vectors.
    """

    has_sparse = False
    name = "fg-clip"

    def __init__(self, client: FGClipClient) -> None:
        self.client = client

    def __repr__(self) -> str:
        return "FGClipEncoder()"

    @property
    def dimension(self) -> None:
        # FG-CLIP's dimension is read from the first response, never hard-coded.
        return None

    def encode_documents(self, texts: Sequence[str]) -> Encoded:
        result = self.client.embed_texts(list(texts))
        return Encoded(_dense(result), None, tuple(result.request_ids))

    def encode_queries(self, texts: Sequence[str], *, box_queries: bool = False) -> Encoded:
        result = self.client.embed_texts(list(texts), text_box=box_queries)
        return Encoded(_dense(result), None, tuple(result.request_ids))

    def encode_images(
        self,
        images: Sequence[ImageSource],
        boxes: Sequence[Sequence[Sequence[float]] | None] | None = None,
    ) -> EmbeddingResult:
        """Images (one global row each) and, with ``boxes``, one row per box."""
        return self.client.embed_images(list(images), boxes=boxes)
