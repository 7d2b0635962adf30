"""Reading the images and videos a request points at: inline bytes, loopback URLs, TOS.

The emulator never touches the network beyond loopback: a URL whose host is not a
loopback name or address is reported as unreachable without any DNS lookup or
connection. Its own ``/samples/*.png`` are served from memory.
"""

from __future__ import annotations

import io
import ipaddress
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from PIL import Image

from .samples import SAMPLES, sample_png

__all__ = [
    "DecodedImage",
    "MediaError",
    "MediaFetcher",
    "decode_image",
    "is_ip_literal",
    "is_loopback_host",
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


def is_ip_literal(host: str) -> bool:
    """True when ``host`` is an IPv4 or IPv6 address rather than a name."""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def is_loopback_host(host: str) -> bool:
    """Loopback by its literal text only: ``localhost``, ``127.0.0.0/8`` or ``::1``."""
    host = host.strip("[]").lower()
    if host in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class MediaFetcher:
    """Resolves loopback URLs and ``tos://`` references to bytes."""

    def __init__(self, *, timeout_s: float, tos_dir: Path | None) -> None:
        self._timeout_s = timeout_s
        self._tos_dir = tos_dir.resolve() if tos_dir is not None else None
        #: Set once the server knows its port, so it can serve its own samples directly.
        self.own_port: int | None = None

    async def fetch_url(self, url: str) -> bytes:
        """The bytes at an ``http(s)`` URL on loopback; :class:`MediaError` otherwise."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise MediaError("invalid", "malformed url") from None
        host = parts.hostname or ""
        if parts.scheme not in ("http", "https") or not host:
            raise MediaError("invalid", "malformed url")
        if not is_loopback_host(host):
            raise MediaError("unreachable", f"failed to download {url}: host unreachable")
        match = _SAMPLE_PATH.match(parts.path)
        default_port = 443 if parts.scheme == "https" else 80
        if (
            match
            and parts.scheme == "http"
            and (port or default_port) == self.own_port
            and match.group(1) in SAMPLES
        ):
            return sample_png(match.group(1))
        try:
            async with httpx.AsyncClient(timeout=self._timeout_s, trust_env=False) as client:
                response = await client.get(url)
        except httpx.HTTPError as exc:
            raise MediaError(
                "unreachable", f"failed to download {url}: {type(exc).__name__}"
            ) from None
        if response.status_code != 200:
            raise MediaError(
                "unreachable", f"failed to download {url}: HTTP {response.status_code}"
            )
        if len(response.content) > MAX_FETCH_BYTES:
            raise MediaError("invalid", f"{url} is larger than {MAX_FETCH_BYTES} bytes")
        return response.content

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
