"""The pixel cap of a bulk run: an image with more pixels than ``max_image_pixels`` is
rejected (``image_too_large``) before anything decodes it.

The size comes from the image's header (``PIL.Image.open`` reads no pixel data); an
image past Pillow's own hard limit (twice ``PIL.Image.MAX_IMAGE_PIXELS``) is refused by
``open`` itself, which is caught here too. Local files, bytes (streams are read into
bytes by the engine), data / ``base64://`` URIs and ``PIL`` images are checked; remote
URLs are fetched and decoded by the provider, not here. Anything else wrong with an image is left to the client, which
refuses it with an ``InputError`` (a reject, ``invalid_input``).
"""

from __future__ import annotations

import base64
import binascii
import io
import os
from typing import IO

from PIL import Image

from ._core import ImageSource
from .items import is_local_path

__all__ = ["oversized_image"]


def oversized_image(image: ImageSource | None, max_pixels: int) -> str | None:
    """Why ``image`` is too large to decode (a reject message), or ``None``. Never raises."""
    if image is None:
        return None
    if isinstance(image, Image.Image):
        return _judge(image.size, max_pixels)
    try:
        stream = _open_source(image)
        if stream is None:
            return None
        with stream, Image.open(stream) as opened:
            return _judge(opened.size, max_pixels)
    except Image.DecompressionBombError:
        limit = 2 * (Image.MAX_IMAGE_PIXELS or 0)
        return (
            f"image has more than {limit:,} pixels, more than the max_image_pixels limit "
            f"of {max_pixels:,} (--max-image-pixels); it was not decoded"
        )
    except Exception:  # unreadable here: the client says why, as a reject
        return None


def _judge(size: tuple[int, int], max_pixels: int) -> str | None:
    width, height = size
    if width * height <= max_pixels:
        return None
    return (
        f"image is {width} x {height} = {width * height:,} pixels, more than the "
        f"max_image_pixels limit of {max_pixels:,} (--max-image-pixels); it was not decoded"
    )


def _open_source(image: ImageSource) -> IO[bytes] | None:
    """A binary stream of the image's bytes, or ``None`` if the image is not local."""
    if isinstance(image, (bytes, bytearray)):
        return io.BytesIO(image)
    if isinstance(image, (str, os.PathLike)) and is_local_path(image):
        return open(os.fspath(image), "rb")  # closed by the caller's with
    if isinstance(image, str):
        return _inline(image)
    return None


def _inline(uri: str) -> IO[bytes] | None:
    lowered = uri[:16].lower()
    if lowered.startswith("data:"):
        payload = uri.partition(",")[2]
    elif lowered.startswith("base64://"):
        payload = uri[len("base64://") :]
    else:
        return None
    try:
        return io.BytesIO(base64.b64decode(payload, validate=True))
    except (binascii.Error, ValueError):
        return None
