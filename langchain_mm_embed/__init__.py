"""LangChain adapters for mm-embed: 360 FG-CLIP and Volcengine VikingDB embeddings.

* :class:`FGClipEmbeddings`: texts, images and region (box) features in one space.
* :class:`VikingEmbeddings`: Viking dense vectors for texts, images, text-image pairs
  and full-modal sequences.
* :class:`VikingSparseEmbeddings`: Viking sparse vectors for ``langchain_qdrant`` hybrid
  search (``SparseVector`` is ``langchain_qdrant.SparseVector`` when installed).

Install with ``pip install "mm-embed[langchain]"`` (add ``qdrant`` for Qdrant hybrid
search). The sparse module is imported on first use: ``langchain_qdrant`` is slow to
import and optional.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .fgclip import FGClipEmbeddings
from .viking import VikingEmbeddings

if TYPE_CHECKING:
    from .sparse import SparseVector, VikingSparseEmbeddings

__all__ = ["FGClipEmbeddings", "SparseVector", "VikingEmbeddings", "VikingSparseEmbeddings"]

_LAZY = {"SparseVector", "VikingSparseEmbeddings"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from . import sparse

        return getattr(sparse, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _LAZY)
