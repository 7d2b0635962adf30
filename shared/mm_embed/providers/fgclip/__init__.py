"""360 FG-CLIP: texts, images, region (box) features and local text features in one
vector space (float32, int8 or uint8).

* :class:`FGClipClient` / :class:`AsyncFGClipClient`: the clients.
* :func:`probability`: a text-image cosine as the provider's match probability.
* :mod:`.catalogue`: the service's limits as data; :mod:`.protocol`: bodies and replies.
"""

from .catalogue import KNOWN_MODELS
from .client import AsyncFGClipClient, Boxes, FGClipClient
from .protocol import probability

__all__ = [
    "KNOWN_MODELS",
    "AsyncFGClipClient",
    "Boxes",
    "FGClipClient",
    "probability",
]
