"""Images too large to decode safely are rejected with a reason, never a crash; the cap
(``max_image_pixels``, ``--max-image-pixels``) is checked from the header, before any
pixel is decoded."""

from __future__ import annotations

import base64
import io
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest
from PIL import Image

from mm_embed import EmbeddingResult, FGClipClient, InputError
from mm_embed.bulk import BulkItem, RejectCode, embed_stream
from mm_embed.bulk.cli import embed_main
from mm_embed.bulk.providers import call_client
from mm_embed.config import DEFAULTS
from mm_embed.emulator import Emulator
from tests.integration._helpers import cli_env

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


def fgclip(emu: Emulator) -> FGClipClient:
    return FGClipClient(emu.api_key, base_url=emu.url)


def png_bytes(color: str = "red", size: int = 24) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buffer, format="PNG")
    return buffer.getvalue()


def image_directory(root: Path) -> Path:
    root.mkdir()
    for i, color in enumerate(["red", "green", "blue"]):
        (root / f"{i}.png").write_bytes(png_bytes(color))
    return root


def read_rejects(path: Path) -> dict[str, dict[str, object]]:
    rejects = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    return {str(r["id"]): r for r in rejects}


@pytest.mark.timeout(120)
def test_a_decompression_bomb_in_an_image_directory_is_a_reject(tmp_path: Path) -> None:
    images = image_directory(tmp_path / "images")
    write_bilevel_png(images / "1-bomb.png", 30_000, 30_000)  # over Pillow's own cap
    write_bilevel_png(images / "2-big.png", 9_000, 8_000)  # 72 M: under Pillow's, over ours
    out = tmp_path / "o.parquet"
    command = [
        sys.executable, "-m", "mm_embed.bulk", "--provider", "fgclip",
        "--input", str(images), "--output", str(out), "--no-progress",
    ]  # fmt: skip
    with Emulator() as emu:
        done = subprocess.run(
            command, env=cli_env(emu), capture_output=True, text=True, timeout=100
        )
    assert done.returncode == 1, done.stderr  # complete, with rejects
    assert "Traceback" not in done.stderr and "complete" in done.stderr
    assert pq.read_table(out).column("id").to_pylist() == ["0.png", "1.png", "2.png"]
    rejects = read_rejects(tmp_path / "o.parquet.rejects.jsonl")
    assert set(rejects) == {"1-bomb.png", "2-big.png"}
    for reject in rejects.values():
        assert reject["code"] == RejectCode.IMAGE_TOO_LARGE and reject["field"] == "image"
        assert f"{DEFAULTS.max_image_pixels:,}" in str(reject["message"])
    assert "9000 x 8000" in str(rejects["2-big.png"]["message"])


def test_the_cap_is_an_option_of_the_command(emulator_env: Emulator, tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    (images / "small.png").write_bytes(png_bytes(size=24))  # 576 pixels
    (images / "large.png").write_bytes(png_bytes(size=40))  # 1,600 pixels
    out = tmp_path / "o.jsonl"
    common = ["--provider", "fgclip", "--input", str(images), "--no-progress"]
    assert embed_main([*common, "--output", str(out), "--max-image-pixels", "1000"]) == 1
    assert [orjson.loads(line)["id"] for line in out.read_bytes().splitlines()] == ["small.png"]
    reject = read_rejects(tmp_path / "o.jsonl.rejects.jsonl")["large.png"]
    assert reject["code"] == RejectCode.IMAGE_TOO_LARGE and "1,000" in str(reject["message"])
    assert embed_main([*common, "--output", str(tmp_path / "all.jsonl")]) == 0


class _Unseekable(io.RawIOBase):
    """A stream that can only be read once (the engine cannot look at it first)."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        chunk = self._data.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def test_every_kind_of_image_source_is_checked(emulator: Emulator, tmp_path: Path) -> None:
    bomb = write_bilevel_png(tmp_path / "bomb.png", 30_000, 30_000).read_bytes()
    uri = "data:image/png;base64," + base64.b64encode(bomb).decode()
    items = [
        BulkItem("path", image=str(tmp_path / "bomb.png")),
        BulkItem("bytes", image=bomb),
        BulkItem("data-uri", image=uri),
        BulkItem("stream", image=io.BufferedReader(_Unseekable(bomb))),
        BulkItem("fine", image=png_bytes()),
    ]
    with fgclip(emulator) as client:
        results = list(embed_stream(client, items))
    assert [r.ok for r in results] == [False, False, False, False, True]
    for result in results[:4]:
        assert result.reject is not None and result.reject.code == RejectCode.IMAGE_TOO_LARGE
        assert result.reject.field == "image" and "max_image_pixels" in result.reject.message


def test_a_client_that_meets_a_bomb_raises_an_input_error() -> None:
    # The net under the header check: Pillow's refusal inside a client call becomes the
    # InputError the engine isolates and rejects, never an error that ends the run.
    def decode() -> EmbeddingResult:
        raise Image.DecompressionBombError("Image size (900000000 pixels) exceeds limit")

    with pytest.raises(InputError, match="too large to decode safely") as info:
        call_client(decode)
    assert info.value.field == "images"
