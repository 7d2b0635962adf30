"""Provider-neutral inputs: typed items, and loading and validating texts, images,
videos and boxes.

Everything here runs before a request is built, so a bad input raises
:class:`~mm_embed.errors.InputError` naming the field, the item's index and the limit,
and nothing is sent. Local files are read with bounds (regular files only, at most
:attr:`ImageLimits.max_file_bytes`); images are decoded only after their pixel count is
checked against :attr:`ImageLimits.max_pixels` (a decompression bomb is refused from
its header). Remote references (URLs, ``tos://``) are checked by form only. Nothing
here knows a wire format: the provider packages turn prepared media into their wire
strings.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import os
import stat
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Literal, TypeAlias

from PIL import Image as PILImage
from PIL import UnidentifiedImageError

from .config import DEFAULTS
from .errors import InputError

__all__ = [
    "MIN_DOWNSCALE",
    "Box",
    "FullModalItem",
    "ImageItem",
    "ImageLimits",
    "ImageSource",
    "Item",
    "MediaSource",
    "PreparedImage",
    "PreparedMedia",
    "TextImageItem",
    "TextItem",
    "VideoItem",
    "check_text",
    "fit_image",
    "prepare_image",
    "prepare_video",
    "reencode_unless",
    "validate_boxes",
]

#: Anything that can name or hold an image.
ImageSource: TypeAlias = (
    "str | bytes | bytearray | os.PathLike[str] | PILImage.Image | IO[bytes] | PreparedImage"
)
#: Anything that can name or hold a video.
MediaSource: TypeAlias = "str | bytes | bytearray | os.PathLike[str] | IO[bytes] | PreparedMedia"
Box = Sequence[float]

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov")
VIDEO_MAX_BYTES = 50 * 1024 * 1024
#: Never scale an image below this fraction of its width and height: the Viking page
#: found quality drops noticeably below 0.30-0.35.
MIN_DOWNSCALE = 0.30


# --------------------------------------------------------------------------- typed items


@dataclass(frozen=True)
class TextItem:
    """A text (a plain ``str`` is the same)."""

    text: str


@dataclass(frozen=True)
class ImageItem:
    """An image."""

    image: ImageSource


@dataclass(frozen=True)
class TextImageItem:
    """A text and an image encoded jointly."""

    text: str
    image: ImageSource


@dataclass(frozen=True)
class VideoItem:
    """A video inside a full-modal sequence; ``fps`` in 0.2..5.0 (server default 1)."""

    video: MediaSource
    fps: float | None = None


@dataclass(frozen=True)
class FullModalItem:
    """A sequence of texts, images and videos embedded as one vector."""

    parts: Sequence[str | TextItem | ImageItem | VideoItem]


#: Any input of a multimodal ``embed`` call.
Item: TypeAlias = "str | TextItem | ImageItem | TextImageItem | FullModalItem"


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
class ImageLimits:
    """Bounds applied wherever an image is read or decoded."""

    #: Images with more pixels are refused from their header, before decoding.
    max_pixels: int = DEFAULTS.max_image_pixels
    #: Local files (and inline bytes) larger than this are refused unread.
    max_file_bytes: int = DEFAULTS.max_image_file_bytes


DEFAULT_LIMITS = ImageLimits()


@dataclass(frozen=True)
class PreparedImage:
    """An image made ready for a provider.

    ``kind`` is ``"url"`` (http/https, fetched by the provider), ``"tos"`` (a Volcengine
    TOS object) or ``"inline"`` (bytes we hold). Inline images carry their decoded
    ``format`` (Pillow's name), ``width`` and ``height``; remote ones do not.
    """

    kind: Literal["url", "tos", "inline"]
    url: str | None = None
    data: bytes | None = None
    format: str | None = None
    width: int | None = None
    height: int | None = None

    @property
    def size(self) -> tuple[int, int] | None:
        """``(width, height)`` when known locally."""
        if self.width is None or self.height is None:
            return None
        return self.width, self.height


def _decode_base64(payload: str, *, field: str, index: int) -> bytes:
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InputError(f"invalid base64 data ({exc})", field=field, index=index) from None


def _too_big(size: int, cap: int, *, what: str, field: str, index: int) -> InputError:
    shown = f"{cap} bytes" + (f" ({cap // (1024 * 1024)} MB)" if cap % (1024 * 1024) == 0 else "")
    return InputError(f"{what} is {size} bytes", field=field, index=index, limit=shown)


def _read_path(path: Path, cap: int, *, field: str, index: int) -> bytes:
    shown = repr(str(path))
    try:
        info = path.stat()
    except FileNotFoundError:
        raise InputError(f"file not found: {shown}", field=field, index=index) from None
    except OSError as exc:
        raise InputError(f"cannot read {shown}: {exc.strerror}", field=field, index=index) from None
    if not stat.S_ISREG(info.st_mode):
        raise InputError(
            f"{shown} is not a regular file (devices, pipes and directories are not read)",
            field=field,
            index=index,
        )
    if info.st_size > cap:
        raise _too_big(info.st_size, cap, what=f"file {shown}", field=field, index=index)
    try:
        with path.open("rb") as handle:
            data = handle.read(cap + 1)
    except OSError as exc:
        raise InputError(f"cannot read {shown}: {exc.strerror}", field=field, index=index) from None
    if len(data) > cap:  # grew after stat
        raise _too_big(len(data), cap, what=f"file {shown}", field=field, index=index)
    return data


def _read_local(source: object, cap: int, *, field: str, index: int, kind: str = "image") -> bytes:
    """Bytes of a path, a bytes object or a binary file object, at most ``cap``."""
    if isinstance(source, (bytes, bytearray)):
        if len(source) > cap:
            raise _too_big(len(source), cap, what="inline data", field=field, index=index)
        return bytes(source)
    if isinstance(source, (str, os.PathLike)):
        return _read_path(Path(source), cap, field=field, index=index)
    read = getattr(source, "read", None)
    if callable(read):
        data = read(cap + 1)
        if not isinstance(data, (bytes, bytearray)):
            raise InputError("file object must be opened in binary mode", field=field, index=index)
        if len(data) > cap:
            raise _too_big(len(data), cap, what="file object", field=field, index=index)
        return bytes(data)
    raise InputError(
        f"unsupported {kind} type {type(source).__name__}; expected a path, bytes, "
        + ("PIL.Image, " if kind == "image" else "")
        + "binary file object, URL or data URI",
        field=field,
        index=index,
    )


def _inspect(data: bytes, limits: ImageLimits, *, field: str, index: int) -> PreparedImage:
    """Check that ``data`` is a whole image within the pixel cap, decoding it once."""
    if not data:
        raise InputError("image is empty (0 bytes)", field=field, index=index)
    try:
        with PILImage.open(io.BytesIO(data)) as img:
            fmt = img.format or ""
            width, height = img.size
            if width * height > limits.max_pixels:
                raise InputError(
                    f"image is {width}x{height} = {width * height} pixels, refused before "
                    "decoding (a decompression bomb?)",
                    field=field,
                    index=index,
                    limit=f"{limits.max_pixels} pixels",
                )
            img.load()  # decodes every pixel: catches truncated files
    except UnidentifiedImageError:
        raise InputError("bytes are not a readable image", field=field, index=index) from None
    except PILImage.DecompressionBombError as exc:
        raise InputError(
            f"image refused as a decompression bomb ({exc})",
            field=field,
            index=index,
            limit=f"{limits.max_pixels} pixels",
        ) from None
    except (OSError, SyntaxError, ValueError, OverflowError, MemoryError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(
            f"image is damaged or truncated ({exc})", field=field, index=index
        ) from None
    return PreparedImage(kind="inline", data=data, format=fmt, width=width, height=height)


def _encode(img: PILImage.Image, fmt: str = "PNG", quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    if fmt == "JPEG" and img.mode not in ("RGB", "L", "CMYK"):
        img = img.convert("RGB")
    elif img.mode not in ("RGB", "RGBA", "L", "LA", "P", "I", "1"):
        img = img.convert("RGBA" if "A" in img.getbands() else "RGB")
    img.save(buffer, format=fmt, **({"quality": quality} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def _remote(source: str, *, field: str, index: int) -> PreparedImage | None:
    lowered = source[:16].lower()
    if lowered.startswith(("http://", "https://")):
        return PreparedImage(kind="url", url=source)
    if lowered.startswith("tos://"):
        if len(source) <= len("tos://") or "/" not in source[len("tos://") :]:
            raise InputError("tos:// link must be tos://{bucket}/{key}", field=field, index=index)
        return PreparedImage(kind="tos", url=source)
    return None


def _inline_text(source: str, *, field: str, index: int) -> bytes | None:
    """The bytes of a ``data:image/...;base64,`` or ``base64://`` string, else ``None``."""
    lowered = source[:16].lower()
    if lowered.startswith("data:"):
        header, sep, payload = source.partition(",")
        head = header.lower()
        if not sep or not head.startswith("data:image/") or not head.endswith(";base64"):
            raise InputError(
                "data URI must look like data:image/<format>;base64,<data>",
                field=field,
                index=index,
            )
        return _decode_base64(payload, field=field, index=index)
    if lowered.startswith("base64://"):
        return _decode_base64(source[len("base64://") :], field=field, index=index)
    if "://" in source[:12]:
        scheme = source.split("://", 1)[0]
        raise InputError(f"unsupported URL scheme {scheme!r}", field=field, index=index)
    return None


def prepare_image(
    source: ImageSource | ImageItem,
    *,
    field: str = "images",
    index: int = 0,
    limits: ImageLimits = DEFAULT_LIMITS,
) -> PreparedImage:
    """Load and check one image input.

    Accepts a filesystem path (``str`` or ``PathLike``), ``bytes``, a ``PIL.Image``, a
    binary file object, an ``http(s)://`` URL, a ``data:image/...;base64,`` URI, a
    ``base64://`` string, a ``tos://`` object or an already :class:`PreparedImage`.
    Local images are decoded once (after the pixel cap) to check them and read their
    size.
    """
    if isinstance(source, ImageItem):
        source = source.image
    if isinstance(source, PreparedImage):
        return source
    if isinstance(source, PILImage.Image):
        if source.width * source.height > limits.max_pixels:
            raise InputError(
                f"image is {source.width}x{source.height} pixels",
                field=field,
                index=index,
                limit=f"{limits.max_pixels} pixels",
            )
        return _inspect(_encode(source), limits, field=field, index=index)
    if isinstance(source, str):
        remote = _remote(source, field=field, index=index)
        if remote is not None:
            return remote
        inline = _inline_text(source, field=field, index=index)
        if inline is not None:
            if len(inline) > limits.max_file_bytes:
                raise _too_big(
                    len(inline),
                    limits.max_file_bytes,
                    what="inline image",
                    field=field,
                    index=index,
                )
            return _inspect(inline, limits, field=field, index=index)
    data = _read_local(source, limits.max_file_bytes, field=field, index=index)
    return _inspect(data, limits, field=field, index=index)


def reencode_unless(prepared: PreparedImage, formats: Sequence[str]) -> PreparedImage:
    """An inline image in one of ``formats`` (Pillow names) as it is; any other format
    re-encoded as PNG (lossless). Remote images are returned unchanged."""
    if prepared.kind != "inline" or prepared.format in formats:
        return prepared
    assert prepared.data is not None
    with PILImage.open(io.BytesIO(prepared.data)) as img:
        data = _encode(img)
    return replace(prepared, data=data, format="PNG")


def _b64_len(raw: int) -> int:
    return 4 * ((raw + 2) // 3)


def fit_image(
    prepared: PreparedImage,
    max_bytes: int,
    *,
    field: str,
    index: int,
    base64_size: bool = False,
    reason: str = "the request body limit",
) -> PreparedImage:
    """Make an inline image at most ``max_bytes`` (its base64 form when ``base64_size``).

    A JPEG is first re-encoded at lower quality; then width and height are scaled by
    the same factor, never below :data:`MIN_DOWNSCALE` (0.30) of the original. A
    :class:`UserWarning` names the input index and the final size. Raises
    :class:`InputError` when even 0.30 does not fit.
    """
    measure = _b64_len if base64_size else (lambda n: n)
    if prepared.kind != "inline" or measure(len(prepared.data or b"")) <= max_bytes:
        return prepared
    assert prepared.data is not None and prepared.width and prepared.height
    with PILImage.open(io.BytesIO(prepared.data)) as original:
        original.load()
        fmt = "JPEG" if original.format == "JPEG" else "PNG"
        factor, size, data = 1.0, original.size, prepared.data
        if fmt == "JPEG":
            data = _encode(original, fmt, quality=80)
        # At most ~12 rounds: each step shrinks by >= 10% until the 0.30 floor.
        while measure(len(data)) > max_bytes and factor > MIN_DOWNSCALE + 1e-9:
            ratio = max_bytes / measure(len(data))
            factor = max(MIN_DOWNSCALE, min(factor * 0.9, math.sqrt(ratio) * factor * 0.95))
            size = (max(1, round(original.width * factor)), max(1, round(original.height * factor)))
            data = _encode(original.resize(size, PILImage.Resampling.LANCZOS), fmt, quality=85)
    if measure(len(data)) > max_bytes:
        raise InputError(
            f"image is too large for {reason} even at {MIN_DOWNSCALE:.2f} of its width and height",
            field=field,
            index=index,
            limit=f"{max_bytes} {'base64 ' if base64_size else ''}bytes",
        )
    warnings.warn(
        f"{field}[{index}]: image re-encoded"
        + (f" and downscaled to {factor:.2f} of its size" if factor < 1.0 else "")
        + f" ({prepared.width}x{prepared.height} -> {size[0]}x{size[1]}, {len(data)} bytes) "
        f"to fit {reason}",
        UserWarning,
        stacklevel=3,
    )
    return PreparedImage(kind="inline", data=data, format=fmt, width=size[0], height=size[1])


# --------------------------------------------------------------------------- boxes


def _box_values(box: Sequence[object]) -> tuple[float, ...] | None:
    """The numbers of a box as floats (overflow as infinity), or ``None`` for a non-number."""
    values: list[float] = []
    for value in box:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        try:
            values.append(float(value))
        except OverflowError:  # an int past the float range, e.g. 10**400
            values.append(math.inf)
    return tuple(values)


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
        values = _box_values(box)
        if values is None:
            raise bad("box values must be numbers")
        x, y, w, h = values
        if not all(math.isfinite(v) for v in values):
            raise bad("box values must be finite numbers (no NaN, infinity or overflow)")
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
    """A video made ready for a provider: a URL, a ``tos://`` object or inline bytes."""

    kind: Literal["url", "tos", "inline"]
    url: str | None = None
    data: bytes | None = None


def video_container(data: bytes) -> str | None:
    """``"mp4"`` (MP4/MOV: an ``ftyp`` box first) or ``"avi"`` (``RIFF....AVI ``), else ``None``."""
    if len(data) >= 12 and data[4:8] == b"ftyp":
        return "mp4"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"AVI ":
        return "avi"
    return None


def prepare_video(source: MediaSource, *, field: str, index: int) -> PreparedMedia:
    """A video: a URL, ``tos://`` object, ``base64://`` string, path (mp4/avi/mov) or bytes,
    at most 50 MB; inline videos must be an MP4/MOV or AVI container."""
    if isinstance(source, PreparedMedia):
        return source
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
    data = _read_local(source, VIDEO_MAX_BYTES, field=field, index=index, kind="video")
    return _checked_video(data, field=field, index=index)


def _checked_video(data: bytes, *, field: str, index: int) -> PreparedMedia:
    if not data:
        raise InputError("video is empty (0 bytes)", field=field, index=index)
    if len(data) > VIDEO_MAX_BYTES:
        raise _too_big(len(data), VIDEO_MAX_BYTES, what="video", field=field, index=index)
    if video_container(data) is None:
        raise InputError(
            "inline video is not an MP4/MOV or AVI file (no 'ftyp' or 'RIFF...AVI ' header)",
            field=field,
            index=index,
            limit="mp4|avi|mov",
        )
    return PreparedMedia(kind="inline", data=data)
