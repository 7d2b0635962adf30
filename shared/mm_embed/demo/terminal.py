"""The demo's terminal report (what ``mm-embed demo`` prints without ``--json``)."""

from __future__ import annotations

from typing import TextIO

from ..explore.rankings import MODES
from .report import TOP, DemoReport, summary_rows

__all__ = ["print_report"]

_COLUMN = 34


def _short(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def print_report(report: DemoReport, out: TextIO) -> None:
    """Write the report as the demo's blocks: providers, the three queries, nDCG, the
    summary and the paths of the files written."""
    w = out.write
    for name, where in report.providers.items():
        w(f"{name:<7} {where}\n")
    if report.uses_emulator:
        w("note: emulator vectors are deterministic stand-ins, not real semantics\n")
    _print_rankings(report, out)

    w(f"\n== Text -> image query: {report.image_query!r} ==\n")
    for rank, row in enumerate(report.image_hits, 1):
        w(f"  {rank}. {row['image']:<40} score {row['score']:.3f}\n")

    w(f"\n== Text -> box (region) query: {report.box_query!r} ==\n")
    for rank, row in enumerate(report.box_hits, 1):
        w(
            f"  {rank}. {row['image']:<40} box {row.get('box_index')} {row.get('box')}  score {row['score']:.3f}\n"
        )

    w("\n== nDCG@10 on the bundled labelled set ==\n")
    for mode, value in report.ndcg_at_10.items():
        w(f"  {mode:<7} {value:.4f}\n")
    _print_summary(report, out)
    if report.plot:
        w(f"\nplot written to {report.plot}\n")
    if report.html:
        w(f"html report written to {report.html}\n")


def _print_rankings(report: DemoReport, out: TextIO) -> None:
    w = out.write
    w(f"\n== Hybrid text query: {report.hybrid_query!r} (top {TOP}) ==\n")
    w("  ".join(f"{m + ' ranking':<{_COLUMN}}" for m in ("dense", "sparse", "hybrid (RRF)")) + "\n")
    for rank in range(TOP):
        cells = []
        for mode in MODES:
            rows = report.rankings.get(mode, [])
            cells.append(
                f"{rank + 1}. {rows[rank]['id']} {rows[rank]['score']:.3f}"
                if rank < len(rows)
                else ""
            )
        w("  ".join(f"{c:<{_COLUMN}}" for c in cells) + "\n")
    top = report.rankings.get("hybrid", [])
    if top:
        w(f"best hybrid hit: {_short(top[0].get('text', ''), 100)}\n")


def _print_summary(report: DemoReport, out: TextIO) -> None:
    out.write("\n== Summary ==\n")
    for label, text in summary_rows(report.summary):
        out.write(f"  {label:<7} {text}\n")
