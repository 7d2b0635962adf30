"""The demo's PNG: nDCG@10 per query for dense, sparse and hybrid retrieval."""

from __future__ import annotations

import sys
from pathlib import Path

from .report import DemoReport

__all__ = ["write_plot"]


def write_plot(report: DemoReport, path: str) -> str | None:
    """Write the bar chart to ``path``; returns its absolute path, or ``None`` (with a
    note on stderr) when matplotlib (mm-embed[plot]) is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.stderr.write("matplotlib is not installed (mm-embed[plot]): no plot written\n")
        return None
    import numpy as np

    per_mode = report.ndcg_per_query
    query_ids = list(next(iter(per_mode.values()), {}))
    fig, ax = plt.subplots(figsize=(11, 4.8))
    x = np.arange(len(query_ids))
    width = 0.27
    for offset, (mode, by_query) in zip((-width, 0.0, width), per_mode.items(), strict=True):
        values = [by_query[q] for q in query_ids]
        mean = sum(values) / len(values)
        ax.bar(x + offset, values, width, label=f"{mode} (mean {mean:.3f})")
    ax.set_xticks(x, query_ids, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("nDCG@10")
    ax.set_ylim(0, 1.05)
    ax.set_title("mm-embed demo: dense vs sparse vs hybrid (RRF) retrieval per query")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3, fontsize=8, frameon=False)
    fig.tight_layout()
    out = Path(path).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return str(out)
