"""Volcengine VikingDB embedding v2: dense and sparse vectors for texts, images,
text-image pairs and full-modal (text + image + video) sequences, HMAC-signed.

* :class:`VikingClient` / :class:`AsyncVikingClient`: the clients.
* :data:`MODELS`: the model catalogue (:class:`ModelSpec` per model, versions,
  dimensions, modalities, default quotas).
* :mod:`.protocol`: bodies and replies, sans-I/O.
"""

from .catalogue import MODELS, ModelSpec, ModelVersion
from .client import AsyncVikingClient, VikingClient

__all__ = [
    "MODELS",
    "AsyncVikingClient",
    "ModelSpec",
    "ModelVersion",
    "VikingClient",
]
