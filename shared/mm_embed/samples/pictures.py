"""Sample images the emulator serves under ``GET /samples/<name>.png``.

Drawn with Pillow from fixed coordinates, so they are identical on every run. Each
sample also lists the ``[x, y, w, h]`` box of each shape, for region (box) demos.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import cache

from PIL import Image, ImageDraw

__all__ = ["SAMPLES", "Sample", "render_png", "sample_png"]

_RGB = {
    "red": (220, 30, 30),
    "green": (30, 160, 50),
    "blue": (30, 60, 220),
    "yellow": (240, 220, 30),
    "purple": (130, 40, 170),
    "orange": (245, 140, 20),
    "pink": (245, 150, 190),
    "cyan": (30, 200, 210),
}
_SIZE = (256, 256)


@dataclass(frozen=True)
class Sample:
    """One sample picture: shapes as ``(colour, shape, [x, y, w, h])``."""

    name: str
    shapes: tuple[tuple[str, str, tuple[int, int, int, int]], ...]
    width: int = _SIZE[0]
    height: int = _SIZE[1]

    @property
    def description(self) -> str:
        return " and ".join(f"a {colour} {shape}" for colour, shape, _ in self.shapes)


SAMPLES: dict[str, Sample] = {
    s.name: s
    for s in (
        Sample("red-circle", (("red", "circle", (48, 48, 160, 160)),)),
        Sample("green-square", (("green", "square", (48, 48, 160, 160)),)),
        Sample("blue-triangle", (("blue", "triangle", (48, 48, 160, 160)),)),
        Sample("yellow-circle", (("yellow", "circle", (48, 48, 160, 160)),)),
        Sample("purple-square", (("purple", "square", (48, 48, 160, 160)),)),
        Sample("orange-triangle", (("orange", "triangle", (48, 48, 160, 160)),)),
        Sample(
            "red-circle-blue-square",
            (("red", "circle", (16, 72, 104, 104)), ("blue", "square", (136, 72, 104, 104))),
        ),
    )
}


def _draw(sample: Sample) -> Image.Image:
    image = Image.new("RGB", (sample.width, sample.height), (245, 245, 245))
    pen = ImageDraw.Draw(image)
    for colour, shape, (x, y, w, h) in sample.shapes:
        fill = _RGB[colour]
        if shape == "circle":
            pen.ellipse((x, y, x + w - 1, y + h - 1), fill=fill)
        elif shape == "square":
            pen.rectangle((x, y, x + w - 1, y + h - 1), fill=fill)
        else:
            pen.polygon([(x + w // 2, y), (x, y + h - 1), (x + w - 1, y + h - 1)], fill=fill)
    return image


def render_png(sample: Sample) -> bytes:
    """PNG bytes of any :class:`Sample` (colours from this module's palette)."""
    buffer = io.BytesIO()
    _draw(sample).save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


@cache
def sample_png(name: str) -> bytes:
    """PNG bytes of sample ``name`` (``KeyError`` when there is none)."""
    return render_png(SAMPLES[name])
