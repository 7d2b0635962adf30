"""The demo's pictures: twelve shape drawings generated with Pillow, boxes on some.

They are drawn from fixed coordinates (identical on every run); a picture with several
shapes carries one ``[x, y, w, h]`` box per shape, for region search.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from ..samples.pictures import SAMPLES, Sample, render_png

__all__ = ["PICTURES", "Picture", "thumbnail"]


@dataclass(frozen=True)
class Picture:
    """One demo picture: its id, caption, PNG bytes and per-shape boxes (maybe none)."""

    id: str
    caption: str
    png: bytes
    boxes: list[list[float]] | None
    #: ``(colour, shape)`` of each box, in box order.
    box_labels: list[str]


def _picture(sample: Sample) -> Picture:
    several = len(sample.shapes) > 1
    return Picture(
        id=sample.name,
        caption=sample.description,
        png=render_png(sample),
        boxes=[[float(v) for v in box] for _, _, box in sample.shapes] if several else None,
        box_labels=[f"{colour} {shape}" for colour, shape, _ in sample.shapes] if several else [],
    )


_EXTRA = (
    Sample("cyan-circle", (("cyan", "circle", (64, 64, 128, 128)),)),
    Sample("pink-square", (("pink", "square", (40, 40, 176, 176)),)),
    Sample(
        "green-circle-yellow-triangle",
        (("green", "circle", (8, 8, 112, 112)), ("yellow", "triangle", (136, 136, 112, 112))),
    ),
    Sample(
        "purple-triangle-orange-square",
        (("purple", "triangle", (16, 40, 100, 100)), ("orange", "square", (140, 120, 100, 100))),
    ),
    Sample(
        "blue-circle-pink-triangle-green-square",
        (
            ("blue", "circle", (8, 8, 90, 90)),
            ("pink", "triangle", (150, 20, 90, 90)),
            ("green", "square", (80, 150, 96, 96)),
        ),
    ),
)

PICTURES: tuple[Picture, ...] = tuple(_picture(s) for s in (*SAMPLES.values(), *_EXTRA))


def thumbnail(picture: Picture) -> str:
    """The picture as a ``data:image/png;base64,...`` URI (they are 256 x 256 px, ~1.5 kB),
    stored with each record so a reader of the store can show it."""
    return "data:image/png;base64," + base64.b64encode(picture.png).decode("ascii")
