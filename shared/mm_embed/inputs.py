"""Input normalisation and validation: images, boxes, videos and typed Viking items.

Everything here runs before a request is built, so a bad input raises
:class:`~mm_embed.errors.InputError` naming the field, the item's index and the limit,
and nothing is sent. Only local files are read; remote URLs are checked by form only.
"""

from __future__ import annotations

import base64
import binascii
import io
import ipaddress
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal, TypeAlias
from urllib.parse import urlsplit

from PIL import Image as PILImage
from PIL import UnidentifiedImageError

from .errors import InputError

__all__ = [
    "Box",
    "FullModalItem",
    "ImageItem",
    "ImageSource",
    "MediaSource",
    "PreparedImage",
    "PreparedMedia",
    "TextImageItem",
    "TextItem",
    "VideoItem",
    "VikingItem",
    "check_text",
    "downscale_to_fit",
    "prepare_image",
    "prepare_video",
    "validate_boxes",
]

#: Anything that can name or hold an image.
ImageSource: TypeAlias = "str | bytes | bytearray | os.PathLike[str] | PILImage.Image | IO[bytes]"
#: Anything that can name or hold a video.
MediaSource: TypeAlias = "str | bytes | bytearray | os.PathLike[str] | IO[bytes]"
Box = Sequence[float]

#: Image formats FG-CLIP takes (its URL rule: jpg, jpeg, png, bmp).
FGCLIP_FORMATS = {"JPEG": "jpeg", "PNG": "png", "BMP": "bmp"}
FGCLIP_URL_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov")
VIDEO_MAX_BYTES = 50 * 1024 * 1024
#: The provider found quality drops below 0.30 of the original width and height.
MIN_DOWNSCALE = 0.30


# --------------------------------------------------------------------------- typed items


@dataclass(frozen=True)
class TextItem:
    """A text, ``data_type="text"`` (a plain ``str`` is the same)."""

    text: str


@dataclass(frozen=True)
class ImageItem:
    """An image, ``data_type="image"``."""

    image: ImageSource


@dataclass(frozen=True)
class TextImageItem:
    """A text and an image encoded jointly, ``data_type="text-image"``."""

    text: str
    image: ImageSource


@dataclass(frozen=True)
class VideoItem:
    """A video inside a full-modal sequence; ``fps`` in 0.2..5.0 (server default 1)."""

    video: MediaSource
    fps: float | None = None


@dataclass(frozen=True)
class FullModalItem:
    """A sequence of texts, images and videos embedded as one vector,
    ``data_type="full_modal_seq"`` (doubao-embedding-vision 250615 only; sent alone)."""

    parts: Sequence[str | TextItem | ImageItem | VideoItem]


VikingItem: TypeAlias = "str | TextItem | ImageItem | TextImageItem | FullModalItem"


# --------------------------------------------------------------------------- texts


def check_text(value: object, *, field: str, index: int | None) -> str:
    """A non-empty ``str`` that can be sent as UTF-8, or an :class:`InputError`."""
    if not isinstance(value, str):
        raise InputError(f"expected a str, got {type(value).__name__}", field=field, index=index)
    if not value.strip():
        raise InputError("text is empty", field=field, index=index)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(
            f"text is not valid Unicode: lone surrogate {value[exc.start]!r} at position "
            f"{exc.start} (cannot be encoded as UTF-8)",
            field=field,
            index=index,
        ) from None
    return value


# --------------------------------------------------------------------------- images


@dataclass(frozen=True)
class PreparedImage:
    """An image made ready for the wire.

    ``kind`` is ``"url"`` (http/https, fetched by the provider), ``"tos"`` (a Volcengine
    TOS object) or ``"inline"`` (bytes we hold, sent base64-encoded). Inline images carry
    their decoded ``format``, ``width`` and ``height``; remote ones do not.
    """

    kind: Literal["url", "tos", "inline"]
    url: str | None = None
    data: bytes | None = None
    format: str | None = None
    width: int | None = None
    height: int | None = None

    @property
    def size(self) -> tuple[int, int] | None:
        if self.width is None or self.height is None:
            return None
        return self.width, self.height

    def fgclip_wire(self, *, field: str, index: int) -> str:
        """The string FG-CLIP takes: the URL, or ``data:image/<fmt>;base64,<b64>``."""
        if self.kind == "url":
            assert self.url is not None
            check_fgclip_url(self.url, field=field, index=index)
            return self.url
        if self.kind == "tos":
            raise InputError(
                "FG-CLIP does not read tos:// objects; pass a URL, a file or bytes",
                field=field,
                index=index,
            )
        assert self.data is not None and self.format is not None
        fmt = FGCLIP_FORMATS[self.format]
        return f"data:image/{fmt};base64,{base64.b64encode(self.data).decode('ascii')}"

    def viking_wire(self, *, field: str, index: int, allow_http: bool, model: str) -> str:
        """The MediaData string Viking takes: ``tos://``, ``http(s)://`` or ``base64://``."""
        if self.kind == "url":
            assert self.url is not None
            if not allow_http:
                raise InputError(
                    f"model {model!r} does not take http(s) media links; only "
                    "doubao-embedding-vision does. Pass a file, bytes or a tos:// object",
                    field=field,
                    index=index,
                )
            return self.url
        if self.kind == "tos":
            assert self.url is not None
            return self.url
        assert self.data is not None
        return "base64://" + base64.b64encode(self.data).decode("ascii")


def check_fgclip_url(url: str, *, field: str, index: int) -> None:
    """FG-CLIP's URL rule: http(s), a domain-name host (not an IP), a jpg/jpeg/png/bmp path."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise InputError(f"unsupported URL scheme {parts.scheme!r}", field=field, index=index)
    host = parts.hostname or ""
    if not host:
        raise InputError("URL has no host", field=field, index=index)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        raise InputError(
            f"URL host {host!r} is an IP address; FG-CLIP takes domain names only",
            field=field,
            index=index,
        )
    if not parts.path.lower().endswith(FGCLIP_URL_SUFFIXES):
        raise InputError(
            "URL path must end in jpg, jpeg, png or bmp",
            field=field,
            index=index,
            limit="|".join(s.lstrip(".") for s in FGCLIP_URL_SUFFIXES),
        )


def _decode_base64(payload: str, *, field: str, index: int) -> bytes:
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InputError(f"invalid base64 data ({exc})", field=field, index=index) from None


def _read_local(source: ImageSource | MediaSource, *, field: str, index: int) -> bytes:
    if isinstance(source, (bytes, bytearray)):
        return bytes(source)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise InputError(f"file not found: {str(path)!r}", field=field, index=index) from None
        except OSError as exc:
            raise InputError(
                f"cannot read {str(path)!r}: {exc.strerror}", field=field, index=index
            ) from None
    if hasattr(source, "read"):
        data = source.read()
        if not isinstance(data, (bytes, bytearray)):
            raise InputError("file object must be opened in binary mode", field=field, index=index)
        return bytes(data)
    raise InputError(
        f"unsupported image type {type(source).__name__}; expected a path, bytes, "
        "PIL.Image, binary file object, URL or data URI",
        field=field,
        index=index,
    )


def _inspect(data: bytes, *, field: str, index: int) -> PreparedImage:
    if not data:
        raise InputError("image is empty (0 bytes)", field=field, index=index)
    try:
        with PILImage.open(io.BytesIO(data)) as img:
            fmt = img.format or ""
            width, height = img.size
            img.load()  # decodes every pixel: catches truncated files
    except UnidentifiedImageError:
        raise InputError("bytes are not a readable image", field=field, index=index) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(
            f"image is damaged or truncated ({exc})", field=field, index=index
        ) from None
    return PreparedImage(kind="inline", data=data, format=fmt, width=width, height=height)


def _encode_png(img: PILImage.Image) -> bytes:
    buffer = io.BytesIO()
    if img.mode not in ("RGB", "RGBA", "L", "LA", "P", "I", "1"):
        img = img.convert("RGBA" if "A" in img.getbands() else "RGB")
    img.save(buffer, format="PNG")
    return buffer.getvalue()


def prepare_image(source: ImageSource, *, field: str = "images", index: int = 0) -> PreparedImage:
    """Normalise one image input.

    Accepts a filesystem path (``str`` or ``PathLike``), ``bytes``, a ``PIL.Image``, a
    binary file object, an ``http(s)://`` URL, a ``data:image/...;base64,`` URI, a
    ``base64://`` string or a ``tos://`` object. Local images are decoded once to check
    them and read their size; formats other than JPEG, PNG and BMP are re-encoded as PNG.
    """
    if isinstance(source, ImageItem):
        source = source.image
    if isinstance(source, PILImage.Image):
        return _inspect(_encode_png(source), field=field, index=index)
    if isinstance(source, str):
        lowered = source[:16].lower()
        if lowered.startswith(("http://", "https://")):
            return PreparedImage(kind="url", url=source)
        if lowered.startswith("tos://"):
            if len(source) <= len("tos://") or "/" not in source[len("tos://") :]:
                raise InputError(
                    "tos:// link must be tos://{bucket}/{key}", field=field, index=index
                )
            return PreparedImage(kind="tos", url=source)
        if lowered.startswith("data:"):
            header, sep, payload = source.partition(",")
            if (
                not sep
                or not header.lower().startswith("data:image/")
                or not header.lower().endswith(";base64")
            ):
                raise InputError(
                    "data URI must look like data:image/<format>;base64,<data>",
                    field=field,
                    index=index,
                )
            return _normalise(
                _inspect(
                    _decode_base64(payload, field=field, index=index), field=field, index=index
                )
            )
        if lowered.startswith("base64://"):
            data = _decode_base64(source[len("base64://") :], field=field, index=index)
            return _normalise(_inspect(data, field=field, index=index))
        if "://" in source[:12]:
            scheme = source.split("://", 1)[0]
            raise InputError(f"unsupported URL scheme {scheme!r}", field=field, index=index)
    return _normalise(
        _inspect(_read_local(source, field=field, index=index), field=field, index=index)
    )


def _normalise(prepared: PreparedImage) -> PreparedImage:
    if prepared.format in FGCLIP_FORMATS:
        return prepared
    assert prepared.data is not None
    with PILImage.open(io.BytesIO(prepared.data)) as img:
        data = _encode_png(img)
    return PreparedImage(
        kind="inline", data=data, format="PNG", width=prepared.width, height=prepared.height
    )


def downscale_to_fit(
    prepared: PreparedImage, max_encoded_bytes: int, *, field: str, index: int
) -> PreparedImage:
    """Shrink an inline image until its base64 form fits ``max_encoded_bytes``.

    Width and height are scaled by the same factor, never below 0.30 of the original
    (the provider's measured quality limit); a :class:`UserWarning` says what was done.
    Raises :class:`InputError` when even 0.30 does not fit.
    """
    assert prepared.data is not None and prepared.width and prepared.height
    if _b64_len(len(prepared.data)) <= max_encoded_bytes:
        return prepared
    with PILImage.open(io.BytesIO(prepared.data)) as original:
        original.load()
        factor = 1.0
        while factor > MIN_DOWNSCALE + 1e-9:
            # Area scales with factor**2; aim straight at the size, then step down.
            ratio = max_encoded_bytes / _b64_len(len(prepared.data))
            factor = max(MIN_DOWNSCALE, min(factor * 0.9, math.sqrt(ratio) * factor * 0.95))
            size = (max(1, round(original.width * factor)), max(1, round(original.height * factor)))
            resized = original.resize(size, PILImage.Resampling.LANCZOS)
            buffer = io.BytesIO()
            fmt = "JPEG" if original.format == "JPEG" else "PNG"
            resized.save(buffer, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
            data = buffer.getvalue()
            if _b64_len(len(data)) <= max_encoded_bytes:
                warnings.warn(
                    f"{field}[{index}]: image downscaled to {factor:.2f} of its size "
                    f"({original.width}x{original.height} -> {size[0]}x{size[1]}) to fit the "
                    f"request body limit",
                    UserWarning,
                    stacklevel=3,
                )
                return PreparedImage(
                    kind="inline", data=data, format=fmt, width=size[0], height=size[1]
                )
            prepared = PreparedImage(
                kind="inline", data=data, format=fmt, width=size[0], height=size[1]
            )
    raise InputError(
        "image is too large for one request even at 0.30 of its width and height",
        field=field,
        index=index,
        limit=f"{max_encoded_bytes} base64 bytes",
    )


def _b64_len(raw: int) -> int:
    return 4 * ((raw + 2) // 3)


# --------------------------------------------------------------------------- boxes


def validate_boxes(
    boxes: object, *, image_size: tuple[int, int] | None, field: str, index: int
) -> list[list[float]]:
    """Check the boxes of one image: each ``[x, y, w, h]`` with finite numbers,
    ``x >= 0, y >= 0, w > 0, h > 0`` and, when the image size is known locally,
    ``x + w <= W, y + h <= H``."""
    if not isinstance(boxes, Sequence) or isinstance(boxes, (str, bytes)):
        raise InputError(
            "boxes of an image must be a list of [x, y, w, h]", field=field, index=index
        )
    checked: list[list[float]] = []
    for j, box in enumerate(boxes):
        where = f"{field}[{index}][{j}]"

        def bad(message: str, limit: str | None = None, where: str = where) -> InputError:
            return InputError(message, field=field, index=index, location=where, limit=limit)

        if not isinstance(box, Sequence) or isinstance(box, (str, bytes)) or len(box) != 4:
            raise bad("a box is [x, y, w, h]: 4 numbers")
        try:
            x, y, w, h = (float(v) for v in box)
        except (TypeError, ValueError):
            raise bad("box values must be numbers") from None
        if any(isinstance(v, bool) for v in box):
            raise bad("box values must be numbers")
        if not all(math.isfinite(v) for v in (x, y, w, h)):
            raise bad("box values must be finite (no NaN or infinity)")
        if x < 0 or y < 0:
            raise bad(f"box corner ({x}, {y}) is negative", "x >= 0, y >= 0")
        if w <= 0 or h <= 0:
            raise bad(f"box size {w}x{h} is not positive", "w > 0, h > 0")
        if image_size is not None:
            width, height = image_size
            if x + w > width or y + h > height:
                raise bad(
                    f"box [{x}, {y}, {w}, {h}] leaves the {width}x{height} image",
                    "x + w <= W, y + h <= H",
                )
        checked.append([x, y, w, h])
    return checked


# --------------------------------------------------------------------------- videos


@dataclass(frozen=True)
class PreparedMedia:
    """A video made ready for Viking's MediaData rules."""

    kind: Literal["url", "tos", "inline"]
    url: str | None = None
    data: bytes | None = None

    def viking_wire(self) -> str:
        if self.kind in ("url", "tos"):
            assert self.url is not None
            return self.url
        assert self.data is not None
        return "base64://" + base64.b64encode(self.data).decode("ascii")


def prepare_video(source: MediaSource, *, field: str, index: int) -> PreparedMedia:
    """A video: a URL, ``tos://`` object, ``base64://`` string, path (mp4/avi/mov) or bytes,
    at most 50 MB."""
    if isinstance(source, str):
        lowered = source[:16].lower()
        if lowered.startswith(("http://", "https://")):
            return PreparedMedia(kind="url", url=source)
        if lowered.startswith("tos://"):
            return PreparedMedia(kind="tos", url=source)
        if lowered.startswith("base64://"):
            data = _decode_base64(source[len("base64://") :], field=field, index=index)
            return _checked_video(data, field=field, index=index)
        if "://" in source[:12]:
            raise InputError(
                f"unsupported URL scheme {source.split('://', 1)[0]!r}", field=field, index=index
            )
    if isinstance(source, (str, os.PathLike)) and not str(source).lower().endswith(VIDEO_SUFFIXES):
        raise InputError(
            "video must be an MP4, AVI or MOV file", field=field, index=index, limit="mp4|avi|mov"
        )
    return _checked_video(_read_local(source, field=field, index=index), field=field, index=index)


def _checked_video(data: bytes, *, field: str, index: int) -> PreparedMedia:
    if not data:
        raise InputError("video is empty (0 bytes)", field=field, index=index)
    if len(data) > VIDEO_MAX_BYTES:
        raise InputError(
            f"video is {len(data)} bytes",
            field=field,
            index=index,
            limit=f"{VIDEO_MAX_BYTES} bytes (50 MB)",
        )
    return PreparedMedia(kind="inline", data=data)
