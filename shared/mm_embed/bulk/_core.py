"""The core internals bulk embedding uses, imported in this one place.

Everything else in :mod:`mm_embed.bulk` imports the core's public API (``mm_embed``,
``mm_embed.errors``, ``mm_embed.config``) or this module; when the core's modules move,
only these imports change.
"""

from __future__ import annotations

from ..budgets import Quota
from ..inputs import ImageSource
from ..inputs import Item as VikingItem
from ..providers.fgclip.catalogue import DEFAULT_MODEL as FGCLIP_MODEL
from ..providers.viking.catalogue import (
    DEFAULT_IMAGES_PER_SECOND as VIKING_IMAGES_PER_SECOND,
)
from ..providers.viking.protocol import (
    IMAGE_TOKEN_ESTIMATE,
    estimate_tokens,
)
from ..providers.viking.protocol import resolve_request as resolve_viking_request
from ..transport import TransportStats

__all__ = [
    "FGCLIP_MODEL",
    "IMAGE_TOKEN_ESTIMATE",
    "VIKING_IMAGES_PER_SECOND",
    "ImageSource",
    "Quota",
    "TransportStats",
    "VikingItem",
    "estimate_tokens",
    "resolve_viking_request",
]
