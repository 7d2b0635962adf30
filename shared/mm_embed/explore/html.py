"""HTML pieces shared by the demo's report and the explorer page.

Every value that comes from a document, a query or a store payload goes through
:func:`esc` (text and attributes alike), so a document holding ``<script>`` is shown as
text. Pictures are inlined as ``data:`` URIs (no network) and boxes are drawn by an SVG
laid exactly over the picture, in the picture's own pixel coordinates.
"""

from __future__ import annotations

import base64
import binascii
import html
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from .rankings import RankedText

__all__ = [
    "ICON_LINK",
    "STYLE",
    "ImageHitView",
    "ImageView",
    "Overlay",
    "esc",
    "figure",
    "image_card",
    "image_view",
    "image_view_from_uri",
    "text_card",
]

#: An empty icon, so the browser asks no server for ``/favicon.ico``.
ICON_LINK = '<link rel="icon" href="data:,">'
_DATA_URI = re.compile(r"data:image/(png|jpeg|gif|webp);base64,([A-Za-z0-9+/]+={0,2})")
#: Thumbnails larger than this (bytes, encoded) are not decoded.
MAX_THUMBNAIL_BYTES = 4 * 1024 * 1024
_MODE_LABELS = {"dense": "dense", "sparse": "sparse", "hybrid": "fused"}

STYLE = """
:root { --ink: #1d2430; --muted: #5b6575; --line: #d8dde6; --card: #fff; --bg: #f4f6f9;
  --accent: #c2185b; --box: #1565c0; --chip: #eef1f6; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
  color: var(--ink); background: var(--bg); }
header, main { max-width: 1240px; margin: 0 auto; padding: 16px 24px; }
header h1 { margin: 8px 0 4px; font-size: 26px; }
h2 { font-size: 19px; margin: 28px 0 10px; }
h3 { font-size: 15px; margin: 0 0 8px; color: var(--muted); text-transform: uppercase;
  letter-spacing: .04em; }
.muted, .note { color: var(--muted); }
.note { font-size: 13px; }
.columns { display: grid; grid-template-columns: repeat(auto-fit, minmax(300px, 1fr));
  gap: 14px; }
.cards { list-style: none; margin: 0; padding: 0; display: grid; gap: 10px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px;
  padding: 10px 12px; }
.card .head { display: flex; justify-content: space-between; gap: 8px; font-size: 13px; }
.card .id { font-weight: 600; font-family: ui-monospace, monospace; }
.card .score { color: var(--muted); font-variant-numeric: tabular-nums; }
.card .text { margin: 6px 0; overflow-wrap: anywhere; }
.chips { display: flex; flex-wrap: wrap; gap: 4px; margin: 4px 0 0; padding: 0;
  list-style: none; font-size: 12px; }
.chip { background: var(--chip); border-radius: 999px; padding: 1px 8px; }
.chip.term { background: #fde7ef; color: #8a1040; }
.chip.absent { color: var(--muted); }
.thumbs { display: grid; grid-template-columns: repeat(auto-fill, minmax(180px, 1fr));
  gap: 12px; list-style: none; margin: 0; padding: 0; }
.shot { position: relative; width: 100%; margin: 0; line-height: 0;
  background: #fff; border-radius: 6px; overflow: hidden; }
.shot img { display: block; width: 100%; height: 100%; }
.shot svg.overlay { position: absolute; inset: 0; width: 100%; height: 100%; }
.shot .box { fill: none; stroke: var(--box); stroke-width: 2; stroke-dasharray: 5 3; }
.shot .box.match { stroke: var(--accent); stroke-width: 3.5; stroke-dasharray: none; }
.placeholder { display: grid; place-items: center; line-height: 1.4; color: var(--muted);
  font-size: 12px; border: 1px dashed var(--line); }
figcaption, .caption { font-size: 12px; color: var(--muted); margin-top: 6px; }
table { border-collapse: collapse; background: var(--card); }
th, td { border: 1px solid var(--line); padding: 5px 10px; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
form { display: flex; flex-wrap: wrap; align-items: center; gap: 8px; margin: 8px 0; }
label { font-weight: 600; }
input[type=search] { flex: 1 1 320px; font: inherit; padding: 7px 10px;
  border: 1px solid var(--line); border-radius: 8px; }
button { font: inherit; padding: 7px 14px; border-radius: 8px; border: 1px solid #1565c0;
  background: #1565c0; color: #fff; cursor: pointer; }
.error { color: #b00020; font-weight: 600; }
"""


def esc(value: object) -> str:
    """``value`` as HTML text, safe in element content and quoted attributes."""
    return html.escape(str(value), quote=True)


@dataclass(frozen=True)
class ImageView:
    """A picture ready to inline: its ``data:`` URI and pixel size."""

    src: str
    width: int
    height: int


@dataclass(frozen=True)
class Overlay:
    """A box ``[x, y, w, h]`` (picture pixels) to draw; ``match`` marks a search hit."""

    box: Sequence[float]
    label: str = ""
    match: bool = False


@dataclass(frozen=True)
class ImageHitView:
    """An image or box search hit as an image card shows it."""

    hit_id: str
    image_id: str
    score: float
    view: ImageView | None
    caption: str = ""
    box_index: int | None = None
    box: Sequence[float] | None = None
    box_label: str = ""


def image_view(data: bytes) -> ImageView | None:
    """An :class:`ImageView` of encoded image bytes (``None`` if they are no image)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height, kind = image.width, image.height, (image.format or "").lower()
    except (UnidentifiedImageError, OSError, ValueError):
        return None
    if kind not in ("png", "jpeg", "gif", "webp"):
        return None
    return ImageView(
        f"data:image/{kind};base64,{base64.b64encode(data).decode('ascii')}", width, height
    )


def image_view_from_uri(uri: object) -> ImageView | None:
    """An :class:`ImageView` of a stored ``data:image/...;base64,...`` thumbnail, or
    ``None`` when ``uri`` is anything else (never a link to follow)."""
    if not isinstance(uri, str) or len(uri) > MAX_THUMBNAIL_BYTES:
        return None
    match = _DATA_URI.fullmatch(uri)
    if match is None:
        return None
    try:
        return image_view(base64.b64decode(match.group(2), validate=True))
    except (binascii.Error, ValueError):
        return None


def figure(view: ImageView | None, overlays: Iterable[Overlay], *, alt: str) -> str:
    """The picture with each overlay's box drawn over it (or a placeholder frame)."""
    boxes = list(overlays)
    if view is None:
        listed = "; ".join(f"{esc(o.label)} {esc(_coords(o.box))}" for o in boxes)
        return f'<div class="shot placeholder" role="img" aria-label="{esc(alt)}">picture not stored<br>{listed}</div>'
    rects = "".join(
        f'<rect class="box{" match" if o.match else ""}" x="{o.box[0]:g}" y="{o.box[1]:g}" '
        f'width="{o.box[2]:g}" height="{o.box[3]:g}" vector-effect="non-scaling-stroke">'
        f"<title>{esc(o.label)} {esc(_coords(o.box))}</title></rect>"
        for o in boxes
        if len(o.box) == 4
    )
    svg = (
        f'<svg class="overlay" viewBox="0 0 {view.width} {view.height}" '
        f'preserveAspectRatio="none" aria-hidden="true">{rects}</svg>'
        if rects
        else ""
    )
    return (
        f'<div class="shot" style="aspect-ratio: {view.width} / {view.height}">'
        f'<img src="{view.src}" width="{view.width}" height="{view.height}" alt="{esc(alt)}">'
        f"{svg}</div>"
    )


def _coords(box: Sequence[float]) -> str:
    return "[" + ", ".join(f"{v:g}" for v in box) + "]"


def _rank_chips(ranks: Mapping[str, int], modes: Sequence[str]) -> str:
    chips = []
    for mode in modes:
        label = _MODE_LABELS.get(mode, mode)
        rank = ranks.get(mode)
        if rank is None:
            chips.append(f'<li class="chip rank absent" data-mode="{esc(mode)}">{label} —</li>')
        else:
            chips.append(f'<li class="chip rank" data-mode="{esc(mode)}">{label} #{rank}</li>')
    return f'<ul class="chips" aria-label="ranks">{"".join(chips)}</ul>'


def _term_chips(terms: Sequence[str], sparse: bool) -> str:
    if not sparse:
        return ""
    if not terms:
        return '<p class="note">no query term in its sparse vector</p>'
    chips = "".join(f'<li class="chip term">{esc(t)}</li>' for t in terms)
    return f'<ul class="chips terms" aria-label="matched sparse terms">{chips}</ul>'


def text_card(hit: RankedText, modes: Sequence[str], *, score_of: str, max_chars: int = 280) -> str:
    """A card for a text hit: id, the ``score_of`` ranking's score (else its first), the
    text, its rank in every ranking of ``modes`` and the query terms its sparse vector
    matched."""
    text = " ".join(hit.text.split())
    if len(text) > max_chars:
        text = text[: max_chars - 1] + "…"
    mode = score_of if score_of in hit.scores else next(iter(hit.scores), None)
    shown = "" if mode is None else f"{_MODE_LABELS.get(mode, mode)} {hit.scores[mode]:.3f}"
    return (
        f'<li class="card" data-kind="text" data-id="{esc(hit.id)}">'
        f'<div class="head"><span class="id">{esc(hit.id)}</span>'
        f'<span class="score">{shown}</span></div>'
        f'<p class="text">{esc(text)}</p>'
        f"{_rank_chips(hit.ranks, modes)}{_term_chips(hit.matched_terms, 'sparse' in modes)}</li>"
    )


def image_card(hit: ImageHitView, *, kind: str) -> str:
    """A card for an image (``kind="image"``) or box (``kind="box"``) hit, with the
    matching box drawn over the picture."""
    overlays = []
    if hit.box is not None:
        overlays.append(Overlay(hit.box, hit.box_label, match=True))
    where = "" if hit.box_index is None else f" · box {hit.box_index} {_coords(hit.box or [])}"
    label = f"{hit.box_label} " if hit.box_label else ""
    return (
        f'<li class="card" data-kind="{esc(kind)}" data-id="{esc(hit.hit_id)}" '
        f'data-image="{esc(hit.image_id)}">'
        f"{figure(hit.view, overlays, alt=hit.caption or hit.image_id)}"
        f'<div class="head"><span class="id">{esc(hit.image_id)}</span>'
        f'<span class="score">{hit.score:.3f}</span></div>'
        f'<p class="caption">{esc(label)}{esc(where)}</p></li>'
    )
