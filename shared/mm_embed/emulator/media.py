"""Reading the images and videos a request points at: inline bytes, URLs, TOS.

URLs are fetched only from an allow-list (see :class:`MediaFetcher`): by default the
emulator's own ``/samples/*.png``, served from memory, and nothing else.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from PIL import Image

from ..samples.pictures import SAMPLES, sample_png
from .hosts import is_loopback_host, parse_allow_entry

__all__ = [
    "MAX_FETCH_BYTES",
    "DecodedImage",
    "FetchRefused",
    "MediaError",
    "MediaFetcher",
    "decode_image",
    "is_video_container",
]

MAX_FETCH_BYTES = 20 * 1024 * 1024
_BIT_DEPTH = {
    "1": 1,
    "L": 8,
    "P": 8,
    "RGB": 24,
    "RGBA": 32,
    "CMYK": 32,
    "YCbCr": 24,
    "LA": 16,
    "I;16": 16,
    "I": 32,
    "F": 32,
}
_SAMPLE_PATH = re.compile(r"^/samples/([A-Za-z0-9_-]+)\.png$")


class MediaError(Exception):
    """A media reference that cannot be turned into bytes / an image.

    ``kind`` is ``"invalid"`` (bad encoding, not an image) or ``"unreachable"``
    (cannot be downloaded / found).
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class DecodedImage:
    """A decoded image and the metadata FG-CLIP reports for it."""

    image: Image.Image
    width: int
    height: int
    format: str
    bit_depth: int


def decode_image(data: bytes, formats: frozenset[str] | None = None) -> DecodedImage:
    """Decode ``data`` fully; ``formats`` (Pillow names such as ``"PNG"``) restricts it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            image.load()
    except Exception as exc:  # Pillow raises many types for undecodable data.
        raise MediaError("invalid", f"cannot decode image ({type(exc).__name__})") from None
    fmt = (image.format or "").upper()
    if formats is not None and fmt not in formats:
        raise MediaError("invalid", f"unsupported image format {fmt or 'unknown'}")
    return DecodedImage(image, image.width, image.height, fmt, _BIT_DEPTH.get(image.mode, 8))


def is_video_container(data: bytes) -> bool:
    """MP4 / MOV (an ``ftyp`` box first: bytes 4..8 are ``ftyp``) or AVI (``RIFF``, a
    size, ``AVI ``): the containers the Viking page lists."""
    return data[4:8] == b"ftyp" or (data[:4] == b"RIFF" and data[8:12] == b"AVI ")


class FetchRefused(MediaError):
    """A URL that was not fetched, whatever the reason (one message for all of them)."""

    def __init__(self) -> None:
        super().__init__("unreachable", "could not be downloaded")


class MediaFetcher:
    """Fetches image and video URLs from the allow-list; reads ``tos://`` objects.

    Allowed: the emulator's own ``/samples/<name>.png`` under any loopback name (served
    from memory, no request made) and the ``HOST[:PORT]`` entries of ``allow``, matched
    on the URL's literal host (no DNS lookup decides anything). Redirects are not
    followed. Every failure, from "not allowed" to "not an image", is the same
    :class:`FetchRefused`, so the replies tell nothing about what listens where.
    """

    def __init__(
        self,
        *,
        timeout_s: float,
        tos_dir: Path | None,
        allow: tuple[str, ...] = (),
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._timeout_s = timeout_s
        self._tos_dir = tos_dir.resolve() if tos_dir is not None else None
        self._allow = tuple(parse_allow_entry(entry) for entry in allow)
        #: Only for tests that must fake what loopback cannot produce (a DNS failure).
        self._transport = transport
        #: Set once the server knows its port, so it can serve its own samples directly.
        self.own_port: int | None = None

    async def fetch_url(self, url: str, max_bytes: int = MAX_FETCH_BYTES) -> bytes:
        """The bytes at an allowed ``http(s)`` URL; :class:`FetchRefused` otherwise."""
        try:
            parts = urlsplit(url)
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise FetchRefused() from None
        host = (parts.hostname or "").lower()
        if parts.scheme not in ("http", "https") or not host:
            raise FetchRefused()
        if is_loopback_host(host) and port == self.own_port:
            match = _SAMPLE_PATH.match(parts.path)
            if parts.scheme == "http" and match and match.group(1) in SAMPLES:
                return sample_png(match.group(1))
            raise FetchRefused()
        if not any(entry.allows(host, port) for entry in self._allow):
            raise FetchRefused()
        try:
            return await self._download(url, max_bytes)
        except Exception:  # DNS, refused, timeout, TLS, protocol, blocked socket...
            raise FetchRefused() from None

    async def _download(self, url: str, max_bytes: int) -> bytes:
        client = httpx.AsyncClient(
            timeout=self._timeout_s, trust_env=False, transport=self._transport
        )
        async with client, client.stream("GET", url) as response:
            if response.status_code != 200:
                raise FetchRefused()
            data = bytearray()
            async for chunk in response.aiter_bytes():
                data += chunk
                if len(data) > max_bytes:
                    raise FetchRefused()
        return bytes(data)

    def read_tos(self, uri: str) -> bytes:
        """``tos://bucket/key`` read from ``<tos_dir>/bucket/key``."""
        rest = uri[len("tos://") :]
        bucket, _, key = rest.partition("/")
        if not bucket or not key:
            raise MediaError("invalid", f"malformed tos uri {uri}")
        if self._tos_dir is None:
            raise MediaError("unreachable", f"tos object not found: {uri}")
        root = (self._tos_dir / bucket).resolve()
        path = (root / key).resolve()
        # Keys stay inside their bucket's folder: no "..", no symlinks out of it.
        if root.parent != self._tos_dir or not path.is_relative_to(root) or not path.is_file():
            raise MediaError("unreachable", f"tos object not found: {uri}")
        return path.read_bytes()
