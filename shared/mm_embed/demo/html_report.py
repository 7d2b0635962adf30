"""The demo's HTML report: one self-contained file, no network, no script.

It holds the demo's pictures (inlined) with their boxes drawn over them, the hybrid
query's three rankings side by side with each hit's ranks and matched sparse terms, the
text -> image and text -> box hits as thumbnails, the nDCG chart and the summary. A
``Content-Security-Policy`` forbids every fetch but inline images and styles.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .. import __version__
from ..explore.html import (
    ICON_LINK,
    STYLE,
    ImageHitView,
    Overlay,
    esc,
    figure,
    image_card,
    image_view,
    text_card,
)
from ..explore.rankings import RankedText
from .chart import ndcg_chart
from .pictures import PICTURES, Picture
from .report import DemoReport, summary_rows

__all__ = ["render_html_report", "write_html_report"]

_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
_MODE_TITLES = {"dense": "dense ranking", "sparse": "sparse ranking", "hybrid": "fused (RRF)"}


def write_html_report(report: DemoReport, path: str) -> str:
    """Write the report to ``path`` (folders created); returns its absolute path."""
    out = Path(path).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_html_report(report), encoding="utf-8")
    return str(out)


def render_html_report(report: DemoReport) -> str:
    """The report as one HTML document."""
    pictures = {p.id: p for p in PICTURES}
    image_hits = [_hit_view(row, pictures) for row in report.image_hits]
    box_hits = [_hit_view(row, pictures) for row in report.box_hits]
    best_box = box_hits[0] if box_hits else None
    shown = len(PICTURES) + sum(h.view is not None for h in (*image_hits, *box_hits))
    body = "".join(
        [
            _header(report, shown, len(image_hits) + len(box_hits)),
            "<main>",
            _rankings(report),
            _thumbs("text-to-image", "Text → image", report.image_query, image_hits, "image"),
            _thumbs("text-to-box", "Text → box (region)", report.box_query, box_hits, "box"),
            _gallery(best_box),
            _ndcg(report),
            _summary(report),
            "</main>",
        ]
    )
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"{ICON_LINK}<title>mm-embed demo report</title><style>{STYLE}</style></head>"
        f'<body data-image-count="{shown}">{body}</body></html>\n'
    )


def _hit_view(row: Mapping[str, Any], pictures: Mapping[str, Picture]) -> ImageHitView:
    picture = pictures.get(str(row.get("image")))
    box_index = row.get("box_index")
    label = ""
    if picture is not None and box_index is not None and box_index < len(picture.box_labels):
        label = picture.box_labels[box_index]
    return ImageHitView(
        hit_id=str(row["id"]),
        image_id=str(row.get("image")),
        score=float(row["score"]),
        view=image_view(picture.png) if picture is not None else None,
        caption=picture.caption if picture is not None else "",
        box_index=box_index,
        box=row.get("box"),
        box_label=label,
    )


def _header(report: DemoReport, images: int, hits: int) -> str:
    providers = "".join(
        f"<li><strong>{esc(name)}</strong> {esc(where)}</li>"
        for name, where in report.providers.items()
    )
    note = (
        '<p class="note">The emulator\'s vectors are deterministic stand-ins, not real '
        "semantics: run with real credentials for the providers' rankings.</p>"
        if report.uses_emulator
        else ""
    )
    return (
        f'<header><h1>mm-embed demo</h1><ul class="muted">{providers}</ul>{note}'
        f'<p class="promise">This report shows <strong id="image-count">{images}</strong> '
        f"pictures: the {len(PICTURES)} indexed ones and {hits} search hits.</p></header>"
    )


def _rankings(report: DemoReport) -> str:
    modes = list(report.rankings)
    columns = []
    for mode, rows in report.rankings.items():
        cards = "".join(
            text_card(
                RankedText(
                    id=str(row["id"]),
                    text=str(row.get("text", "")),
                    ranks=row.get("ranks") or {mode: rank},
                    scores={mode: float(row["score"])},
                    matched_terms=tuple(row.get("matched_terms") or ()),
                ),
                modes,
                score_of=mode,
            )
            for rank, row in enumerate(rows, 1)
        )
        columns.append(
            f'<section class="ranking" data-mode="{esc(mode)}">'
            f'<h3>{esc(_MODE_TITLES.get(mode, mode))}</h3><ol class="cards">{cards}</ol></section>'
        )
    return (
        f'<section id="hybrid"><h2>Hybrid text query: “{esc(report.hybrid_query)}”</h2>'
        '<p class="note">Each hit shows its rank in every list and the query terms its '
        "sparse vector shares with the query's (the sparse score's reason).</p>"
        f'<div class="columns">{"".join(columns)}</div></section>'
    )


def _thumbs(anchor: str, title: str, query: str, hits: list[ImageHitView], kind: str) -> str:
    cards = "".join(image_card(hit, kind=kind) for hit in hits)
    return (
        f'<section id="{anchor}"><h2>{esc(title)}: “{esc(query)}”</h2>'
        f'<ol class="thumbs">{cards}</ol></section>'
    )


def _gallery(best_box: ImageHitView | None) -> str:
    items = []
    for picture in PICTURES:
        overlays = [
            Overlay(
                box,
                label,
                match=best_box is not None
                and best_box.image_id == picture.id
                and best_box.box_index == index,
            )
            for index, (box, label) in enumerate(
                zip(picture.boxes or [], picture.box_labels, strict=True)
            )
        ]
        items.append(
            f'<li class="card" data-kind="picture" data-image="{esc(picture.id)}">'
            f"{figure(image_view(picture.png), overlays, alt=picture.caption)}"
            f'<p class="caption">{esc(picture.id)}: {esc(picture.caption)}</p></li>'
        )
    return (
        '<section id="pictures"><h2>The indexed pictures and their boxes</h2>'
        '<p class="note">Dashed: the boxes embedded for region search; solid: the best '
        f'box for the box query.</p><ol class="thumbs">{"".join(items)}</ol></section>'
    )


def _ndcg(report: DemoReport) -> str:
    means = "".join(
        f'<tr><th scope="row">{esc(mode)}</th><td class="num">{value:.4f}</td></tr>'
        for mode, value in report.ndcg_at_10.items()
    )
    return (
        '<section id="ndcg"><h2>nDCG@10 on the bundled labelled set</h2>'
        f"{ndcg_chart(report.ndcg_per_query)}"
        f"<table><thead><tr><th>mode</th><th>mean nDCG@10</th></tr></thead>{means}</table>"
        "</section>"
    )


def _summary(report: DemoReport) -> str:
    rows = "".join(
        f'<tr><th scope="row">{esc(label)}</th><td>{esc(text)}</td></tr>'
        for label, text in summary_rows(report.summary)
    )
    return (
        f'<section id="summary"><h2>Summary</h2><table>{rows}</table>'
        f'<p class="note">mm-embed {esc(__version__)}</p></section>'
    )
