"""The nDCG@10 chart of the HTML report, as inline SVG (no plotting library needed)."""

from __future__ import annotations

from collections.abc import Mapping

from ..explore.html import esc

__all__ = ["ndcg_chart"]

COLOURS = {"dense": "#1565c0", "sparse": "#f9a825", "hybrid": "#c2185b"}
_BAR = 7
_GAP = 8
_LEFT, _TOP, _PLOT_H, _BOTTOM = 44, 16, 200, 64


def ndcg_chart(per_query: Mapping[str, Mapping[str, float]]) -> str:
    """Bars of nDCG@10 per query (one colour per retrieval mode) with a legend of means."""
    modes = list(per_query)
    queries = list(next(iter(per_query.values()), {}))
    group = len(modes) * _BAR + _GAP
    width = _LEFT + max(1, len(queries)) * group + 12
    height = _TOP + _PLOT_H + _BOTTOM
    parts = [
        f'<svg class="chart" role="img" aria-label="nDCG@10 per query and retrieval mode" '
        f'viewBox="0 0 {width} {height}" width="100%" style="max-width:{width * 1.4:.0f}px">'
    ]
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = _TOP + _PLOT_H * (1 - tick)
        parts.append(
            f'<line x1="{_LEFT}" x2="{width - 8}" y1="{y:.1f}" y2="{y:.1f}" stroke="#d8dde6"/>'
            f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{tick:g}</text>'
        )
    for qi, query in enumerate(queries):
        x0 = _LEFT + _GAP / 2 + qi * group
        for mi, mode in enumerate(modes):
            value = float(per_query[mode][query])
            h = _PLOT_H * max(0.0, min(1.0, value))
            parts.append(
                f'<rect x="{x0 + mi * _BAR:.1f}" y="{_TOP + _PLOT_H - h:.1f}" width="{_BAR - 1}" '
                f'height="{h:.1f}" fill="{COLOURS.get(mode, "#888")}">'
                f"<title>{esc(query)} {esc(mode)}: {value:.3f}</title></rect>"
            )
        cx = x0 + len(modes) * _BAR / 2
        parts.append(
            f'<text font-size="10" text-anchor="end" transform="translate({cx:.1f} '
            f'{_TOP + _PLOT_H + 10}) rotate(-60)">{esc(query)}</text>'
        )
    parts.append(_legend(per_query, _TOP + _PLOT_H + _BOTTOM - 10))
    parts.append("</svg>")
    return "".join(parts)


def _legend(per_query: Mapping[str, Mapping[str, float]], y: float) -> str:
    items = []
    for i, (mode, values) in enumerate(per_query.items()):
        mean = sum(values.values()) / max(1, len(values))
        x = _LEFT + i * 150
        items.append(
            f'<rect x="{x}" y="{y - 9}" width="10" height="10" fill="{COLOURS.get(mode, "#888")}"/>'
            f'<text x="{x + 14}" y="{y}" font-size="11">{esc(mode)} (mean {mean:.3f})</text>'
        )
    return "".join(items)
