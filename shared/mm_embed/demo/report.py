"""What the demo found: the one record every output (terminal, JSON, PNG, HTML) renders,
and the demo's fixed set-up (model, collections, queries)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..explore.errors import SetupError

__all__ = [
    "BOX_QUERY",
    "HYBRID_QUERY",
    "IMAGE_COLLECTION",
    "IMAGE_QUERY",
    "TEXT_COLLECTION",
    "TEXT_MODEL",
    "TOP",
    "DemoError",
    "DemoReport",
    "summary_rows",
]

TEXT_MODEL = "bge-m3"
TEXT_COLLECTION = "mm_embed_demo_texts"
IMAGE_COLLECTION = "mm_embed_demo_images"
HYBRID_QUERY = "how do I undo a bad kubectl rollout"
IMAGE_QUERY = "a red circle"
BOX_QUERY = "a green square"
#: Hits shown per query.
TOP = 5
#: nDCG is measured at this depth.
NDCG_DEPTH = 10

#: Something the user must fix (port, store path, credentials); exit code 2.
DemoError = SetupError


@dataclass
class DemoReport:
    """Everything the demo found, as printed (and as ``--json`` writes it).

    ``rankings[mode]`` rows hold ``id``, ``score``, ``text``, ``ranks`` (the hit's
    1-based rank in each of the dense, sparse and hybrid lists that hold it) and
    ``matched_terms`` (query terms its sparse vector shares with the query's);
    ``ndcg_per_query[mode][query_id]`` is what ``ndcg_at_10`` averages.
    """

    providers: dict[str, str] = field(default_factory=dict)
    hybrid_query: str = HYBRID_QUERY
    rankings: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    image_query: str = IMAGE_QUERY
    image_hits: list[dict[str, Any]] = field(default_factory=list)
    box_query: str = BOX_QUERY
    box_hits: list[dict[str, Any]] = field(default_factory=list)
    ndcg_at_10: dict[str, float] = field(default_factory=dict)
    ndcg_per_query: dict[str, dict[str, float]] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    plot: str | None = None
    html: str | None = None

    @property
    def uses_emulator(self) -> bool:
        return any("emulator" in where for where in self.providers.values())


def summary_rows(s: dict[str, Any]) -> list[tuple[str, str]]:
    """The summary as ``(label, text)`` rows: items, calls, tokens, time."""
    return [
        (
            "items",
            f"{s['texts']} texts, {s['images']} images, {s['boxes']} boxes, {s['queries']} queries",
        ),
        (
            "calls",
            f"viking {s['viking_calls']}, fg-clip {s['fgclip_calls']} (retries {s['retries']})",
        ),
        (
            "tokens",
            f"viking {s['viking_tokens']}, fg-clip {s['fgclip_tokens']} "
            f"(+{s['fgclip_images_billed']} images)",
        ),
        (
            "time",
            f"texts {s['index_texts_s']} s, images {s['index_images_s']} s, total {s['total_s']} s",
        ),
    ]
