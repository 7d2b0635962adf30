"""mm-embed core: multimodal, region and sparse embeddings from 360 FG-CLIP and
Volcengine VikingDB embedding v2.

Start with :class:`FGClipClient` / :class:`VikingClient` (or their async twins); every
call returns an :class:`EmbeddingResult`; every error is an :class:`MMEmbedError`.
Settings and environment variables: :mod:`mm_embed.config`; shared quotas:
:mod:`mm_embed.budgets`; hybrid retrieval: :mod:`mm_embed.hybrid`; corpus jobs:
:mod:`mm_embed.bulk`; the local emulator: :mod:`mm_embed.emulator`.
"""

from ._version import __version__
from .errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ClientClosedError,
    ConfigurationError,
    InputError,
    InternalServerError,
    MMEmbedError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseFormatError,
)
from .inputs import FullModalItem, ImageItem, TextImageItem, TextItem, VideoItem
from .providers.fgclip import AsyncFGClipClient, FGClipClient
from .providers.fgclip import probability as fgclip_probability
from .providers.viking import MODELS as VIKING_MODELS
from .providers.viking import AsyncVikingClient, VikingClient
from .results import EmbeddingResult, ImageInfo, ResultMeta, SparseVector, Usage, sparse_index
from .retry import RetryPolicy

__all__ = [
    "VIKING_MODELS",
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncFGClipClient",
    "AsyncVikingClient",
    "AuthenticationError",
    "BadRequestError",
    "ClientClosedError",
    "ConfigurationError",
    "EmbeddingResult",
    "FGClipClient",
    "FullModalItem",
    "ImageInfo",
    "ImageItem",
    "InputError",
    "InternalServerError",
    "MMEmbedError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ResponseFormatError",
    "ResultMeta",
    "RetryPolicy",
    "SparseVector",
    "TextImageItem",
    "TextItem",
    "Usage",
    "VideoItem",
    "VikingClient",
    "__version__",
    "fgclip_probability",
    "sparse_index",
]
