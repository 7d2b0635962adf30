"""360 FG-CLIP: texts, images, region (box) features and local text features in one
vector space (float32, int8 or uint8).

* :class:`FGClipClient` / :class:`AsyncFGClipClient`: the clients.
* :func:`probability`: a text-image cosine as the provider's match probability.
* :mod:`.catalogue`: the service's limits as data; :mod:`.protocol`: bodies and replies.
"""

from .catalogue import DEFAULT_MODEL, EMBEDDING_TYPES, KNOWN_MODELS, MAX_ITEMS, MAX_TEXT_TOKENS
from .client import AsyncFGClipClient, Boxes, FGClipClient
from .protocol import probability

__all__ = [
    "DEFAULT_MODEL",
    "EMBEDDING_TYPES",
    "KNOWN_MODELS",
    "MAX_ITEMS",
    "MAX_TEXT_TOKENS",
    "AsyncFGClipClient",
    "Boxes",
    "FGClipClient",
    "probability",
]
