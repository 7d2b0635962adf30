"""mm-embed core: multimodal, region and sparse embeddings from 360 FG-CLIP and
Volcengine VikingDB embedding v2.

Start with :class:`FGClipClient` / :class:`VikingClient` (or their async twins); every
call returns an :class:`EmbeddingResult`; every error is an :class:`MMEmbedError`.
"""

from .auth import BearerAuth, VikingTokenAuth, VolcengineSignatureAuth
from .clients import AsyncFGClipClient, AsyncVikingClient, FGClipClient, VikingClient
from .errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
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
from .protocol.viking import MODELS as VIKING_MODELS
from .results import EmbeddingResult, ImageInfo, SparseVector, Usage, sparse_index
from .retry import RetryPolicy

__version__ = "0.1.0"

__all__ = [
    "VIKING_MODELS",
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncFGClipClient",
    "AsyncVikingClient",
    "AuthenticationError",
    "BadRequestError",
    "BearerAuth",
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
    "RetryPolicy",
    "SparseVector",
    "TextImageItem",
    "TextItem",
    "Usage",
    "VideoItem",
    "VikingClient",
    "VikingTokenAuth",
    "VolcengineSignatureAuth",
    "__version__",
    "sparse_index",
]
