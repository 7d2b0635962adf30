"""360 FG-CLIP: the service's limits and constants, as data (no logic).

Source: the provider's page (``FG-CLIP Embedding API``) as restated in the project's
wire spec. A new model name or limit is a change here and nowhere else.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_MODEL",
    "EMBEDDING_TYPES",
    "HEADERS",
    "IMAGE_FORMATS",
    "KNOWN_MODELS",
    "LOGIT_BIAS",
    "LOGIT_SCALE",
    "MAX_BODY_BYTES",
    "MAX_ITEMS",
    "MAX_TEXT_TOKENS",
    "PATH",
    "SHORT_TEXT_TOKENS",
    "TRUNCATE_MODES",
    "URL_SUFFIXES",
]

DEFAULT_BASE_URL = "https://api.research.360.cn"
PATH = "/models/interface"
#: Every request carries these (the page marks ``accept`` as required).
HEADERS = {"accept": "application/json", "Content-Type": "application/json"}

DEFAULT_MODEL = "fg-clip"
#: Models the page documents today; more "will come" (``strict_models=False`` sends others).
KNOWN_MODELS = frozenset({DEFAULT_MODEL})

#: Texts or images per request.
MAX_ITEMS = 32
#: Tokens per text; ``truncate="start"`` cuts longer texts, ``"none"`` refuses them.
MAX_TEXT_TOKENS = 196
#: Texts of at most this many tokens go to the short-text model, longer ones (up to
#: :data:`MAX_TEXT_TOKENS`) to the long-text model: scores across the boundary are not
#: strictly comparable.
SHORT_TEXT_TOKENS = 64
#: Not stated by the provider; bodies stay under 4 MB like Viking's (configurable).
MAX_BODY_BYTES = 4 * 1024 * 1024

EMBEDDING_TYPES = ("float", "int8", "uint8")
TRUNCATE_MODES = ("none", "start")

#: Image formats the service reads, by Pillow format name -> data URI subtype.
IMAGE_FORMATS = {"JPEG": "jpeg", "PNG": "png", "BMP": "bmp"}
#: An image URL must end in one of these (the whole URL: no query string after it).
URL_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")

#: The published text-image logit scale and bias: ``sigmoid(scale * cos + bias)``.
LOGIT_SCALE = 115.5843
LOGIT_BIAS = -16.75
