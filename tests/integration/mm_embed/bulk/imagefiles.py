"""Image files for the image-safety tests, built without holding the image in memory."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

_ROWS_PER_CALL = 64


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def write_bilevel_png(path: Path, width: int, height: int) -> Path:
    """A black 1-bit PNG of ``width`` x ``height`` pixels.

    The rows are compressed as they are produced (all zero: zlib packs them about
    1000:1), so a 30000 x 30000 "decompression bomb" is a ~110 KB file built in well
    under a second, and nothing of image size is ever allocated here.
    """
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed pixels
    compressor = zlib.compressobj(9)
    full, rest = divmod(height, _ROWS_PER_CALL)
    parts = [compressor.compress(row * _ROWS_PER_CALL) for _ in range(full)]
    parts += [compressor.compress(row * rest), compressor.flush()]
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1 bit, greyscale
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", b"".join(parts))
        + _chunk(b"IEND", b"")
    )
    return path
