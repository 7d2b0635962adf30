"""The core internals bulk embedding uses, imported in this one place.

Everything else in :mod:`mm_embed.bulk` imports the core's public API (``mm_embed``,
``mm_embed.errors``, ``mm_embed.config``) or this module; when the core's modules move,
only these imports change.
"""

from __future__ import annotations

from ..inputs import ImageSource, VikingItem
from ..protocol.fgclip import MODEL as FGCLIP_MODEL
from ..protocol.viking import (
    DEFAULT_IMAGES_PER_SECOND as VIKING_IMAGES_PER_SECOND,
)
from ..protocol.viking import (
    DEFAULT_TOKENS_PER_MINUTE as VIKING_TOKENS_PER_MINUTE,
)
from ..protocol.viking import (
    IMAGE_TOKEN_ESTIMATE,
    estimate_tokens,
)
from ..protocol.viking import resolve_request as resolve_viking_request
from ..ratelimit import RateLimiter
from ..transport import TransportStats

__all__ = [
    "FGCLIP_MODEL",
    "IMAGE_TOKEN_ESTIMATE",
    "VIKING_IMAGES_PER_SECOND",
    "VIKING_TOKENS_PER_MINUTE",
    "ImageSource",
    "RateLimiter",
    "TransportStats",
    "VikingItem",
    "estimate_tokens",
    "resolve_viking_request",
]
